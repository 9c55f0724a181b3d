"""Dask: lazy chunked arrays on the host; host transfer computes, :meth:`DaskAdapter.materialize` persists."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["DaskAdapter"]


def _cpu(x: Any) -> str:
    return "cpu"


class DaskAdapter(BackendAdapter):
    """Dask arrays through ``array_api_compat.dask.array``; lazy, one device ``"cpu"``, no DLPack.

    Examples
    --------
    >>> DaskAdapter().lazy
    True
    """

    name = "dask"
    package = "dask.array"
    namespace_module = "array_api_compat.dask.array"
    aliases = ("dask.array",)
    lazy = True

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_dask_namespace(module))

    def native_devices(self) -> list[Any]:
        # array-api-compat also lists DASK_DEVICE, a placeholder for chunks of non-NumPy arrays: not a place for data.
        return [d for d in super().native_devices() if d == "cpu"]

    def device_str(self, device: Any) -> str:
        return "cpu"

    def device_getter(self) -> Callable[[Any], Any]:
        return _cpu  # chunks are NumPy arrays: always on the CPU

    def _dtype_object(self, xp: ModuleType, name: str) -> Any:
        found = getattr(xp, name, None)
        return found if found is not None else getattr(np, name, None)

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return self.module("dask.array").from_array(host, chunks=host.shape or ())

    def to_host(self, x: Any) -> np.ndarray:
        return np.array(np.asarray(x.compute()))

    def materialize(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """Each array made one chunk and all persisted in one call (shared work runs once).

        A parameter's graph is then its single stored chunk and does not grow with the number of
        steps. Persisting runs the pending work (on the distributed scheduler in the background);
        it never pulls values to the host.
        """
        single = [a if a.npartitions == 1 else a.rechunk(a.shape) for a in arrays]
        return tuple(self.module("dask").persist(*single))
