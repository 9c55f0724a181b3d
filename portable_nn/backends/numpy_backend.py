"""NumPy: the reference backend; arrays live on the host CPU, host transfer is the identity."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["NumpyAdapter"]


def _cpu(x: Any) -> str:
    return "cpu"


class NumpyAdapter(BackendAdapter):
    """NumPy through ``array_api_compat.numpy``; its one device is ``"cpu"``.

    Examples
    --------
    >>> NumpyAdapter().available_devices()
    {'cpu': 'cpu'}
    """

    name = "numpy"
    tier = "ci"
    fast_paths: ClassVar[dict[str, str]] = {"ops": "numpy_ops", "optimizers": "numpy_optim", "scatter": "numpy_scatter"}
    package = "numpy"
    namespace_module = "array_api_compat.numpy"
    aliases = ("np",)
    dlpack_module = "numpy"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_numpy_namespace(module))

    def device_str(self, device: Any) -> str:
        return "cpu"

    def refused_type(self, kind: type) -> str | None:
        """NumPy subclasses change what operations mean (a masked array computes with its masked values,
        ``np.matrix`` makes ``*`` a matrix product): refused, never converted silently."""
        if issubclass(kind, np.ndarray) and kind is not np.ndarray:
            return (
                f"{kind.__module__}.{kind.__qualname__} is a subclass of numpy.ndarray, which portable_nn refuses "
                "(its operations differ from the array API's); convert explicitly, e.g. np.asarray(x) "
                "or x.filled(value) for a masked array"
            )
        return None

    def device_getter(self) -> Callable[[Any], Any]:
        return _cpu  # NumPy arrays are always on the CPU: skip array_api_compat.device's type checks

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return host

    def to_host(self, x: Any) -> np.ndarray:
        return np.array(x)
