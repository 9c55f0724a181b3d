"""CuPy: CUDA devices only (``"cuda:N"``); host transfer through ``.get()``, device synchronization."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ..errors import DeviceError
from .base import BackendAdapter

__all__ = ["CupyAdapter"]


def _device_attribute(x: Any) -> Any:
    return x.device


class CupyAdapter(BackendAdapter):
    """CuPy through ``array_api_compat.cupy``; no devices (and ``cuda`` skipped in test matrices) without a GPU.

    Examples
    --------
    >>> CupyAdapter().home_device
    'cuda'
    """

    name = "cupy"
    tier = "gpu"
    package = "cupy"
    namespace_module = "array_api_compat.cupy"
    gpu_capable = True
    dlpack_module = "cupy"
    home_device = "cuda"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_cupy_namespace(module))

    def native_devices(self) -> list[Any]:
        try:
            return super().native_devices()
        except Exception:  # CUDARuntimeError without a driver
            return []

    def device_str(self, device: Any) -> str:
        return f"cuda:{device.id}"

    def default_device(self) -> Any:
        if not self.native_devices():
            raise DeviceError("cupy has no CUDA device on this machine")
        return self.module("cupy").cuda.Device()

    def device_getter(self) -> Callable[[Any], Any]:
        return _device_attribute

    def move(self, x: Any, device: Any) -> Any:
        with device:
            return self.module("cupy").asarray(x)

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        with device:
            return self.module("cupy").asarray(host)

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x.get())

    def synchronize(self, device: Any = None, out: Any = None) -> None:
        """Wait for every stream of ``device`` (``out``'s device, else the current device)."""
        if device is None:
            device = getattr(out, "device", None) or self.module("cupy").cuda.Device()
        device.synchronize()
