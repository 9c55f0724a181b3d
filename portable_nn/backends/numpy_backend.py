"""NumPy: the reference backend; arrays live on the host CPU, host transfer is the identity."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

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
    package = "numpy"
    namespace_module = "array_api_compat.numpy"
    aliases = ("np",)
    dlpack_module = "numpy"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_numpy_namespace(module))

    def device_str(self, device: Any) -> str:
        return "cpu"

    def device_getter(self) -> Callable[[Any], Any]:
        return _cpu  # NumPy arrays are always on the CPU: skip array_api_compat.device's type checks

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return host
