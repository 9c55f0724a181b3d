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
    tier = "ci"
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
        it never pulls values to the host. Arrays that are all stored already (the outputs of an
        earlier persist, e.g. an optimizer's step handing its stored parameters to
        ``set_parameters``) come back as they are, without a call to the scheduler.
        """
        if _all_stored(arrays):
            return arrays
        single = [a if a.npartitions == 1 else a.rechunk(a.shape) for a in arrays]
        return tuple(self.module("dask").persist(*single))


def _all_stored(arrays: tuple[Any, ...]) -> bool:
    """Whether each array is one chunk held by the active scheduler: nothing for a persist to do.

    A distributed cluster (a ``Client`` is the scheduler) holds a ``Future``; local schedulers hold
    the NumPy value itself. A NumPy value under a cluster (e.g. from ``from_host``) is not stored:
    persisting ships it to the workers.
    """
    cluster: bool | None = None
    for a in arrays:
        graph = a.__dask_graph__()
        if a.npartitions != 1 or len(graph) != 1:
            return False
        (value,) = graph.values()
        if cluster is None:
            import dask.base

            cluster = type(getattr(dask.base.get_scheduler(), "__self__", None)).__name__ == "Client"
        held = type(value).__name__ == "Future" if cluster else isinstance(value, (np.ndarray, np.generic))
        if not held:
            return False
    return True
