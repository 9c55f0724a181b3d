"""cubed: lazy chunked arrays with bounded memory; :meth:`CubedAdapter.materialize` computes pending work.

Without a materialize hook each training step would add to every parameter's graph (and
recompute it): a step went from 0.31 s to 17.8 s over 12 steps. The hook computes the arrays in
one call and stores them as fresh one-chunk arrays, so a parameter's graph stays one node.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .base import BackendAdapter

__all__ = ["CubedAdapter"]


class CubedAdapter(BackendAdapter):
    """cubed through ``cubed.array_api`` (third-party tier); lazy, one device ``"cpu"``.

    Examples
    --------
    >>> adapter = CubedAdapter()
    >>> (stored,) = adapter.materialize((adapter.from_host(np.ones(2), "cpu") * 2,))
    >>> adapter.to_host(stored)
    array([2., 2.])
    """

    name = "cubed"
    package = "cubed"
    namespace_module = "cubed.array_api"
    tier = "third-party"
    lazy = True

    def is_namespace(self, module: ModuleType) -> bool:
        return getattr(module, "__name__", None) in ("cubed", "cubed.array_api")

    def device_str(self, device: Any) -> str:
        return "cpu"

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return self.namespace().asarray(host, device=device, chunks=host.shape or ())

    def to_host(self, x: Any) -> np.ndarray:
        return np.array(np.asarray(x.compute()))

    def materialize(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arrays computed in one call and stored again as one-chunk arrays (graphs do not grow)."""
        if all(getattr(a, "_pnn_stored", False) for a in arrays):
            return arrays
        values = self.module("cubed").compute(*arrays)
        stored = []
        for value in values:
            host = np.asarray(value)
            array = self.from_host(host, None)
            array._pnn_stored = True
            stored.append(array)
        return tuple(stored)
