"""array-api-strict: the standard's reference namespace, with several fake devices to test placement."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["ArrayApiStrictAdapter"]


def _device_attribute(x: Any) -> Any:
    return x.device


class ArrayApiStrictAdapter(BackendAdapter):
    """array-api-strict; devices ``"cpu"`` (its ``CPU_DEVICE``), ``"device1"``, ``"device2"``, ``"no_float64"``...

    Examples
    --------
    >>> sorted(ArrayApiStrictAdapter().available_devices())[:3]
    ['cpu', 'device1', 'device2']
    """

    name = "array_api_strict"
    tier = "ci"
    package = "array_api_strict"
    namespace_module = "array_api_strict"
    aliases = ("strict", "array-api-strict")
    dlpack_module = "array_api_strict"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_array_api_strict_namespace(module))

    def device_str(self, device: Any) -> str:
        text = str(device)  # array_api_strict.Device('device1')
        label = text.split("'")[1] if "'" in text else text
        return "cpu" if label == "CPU_DEVICE" else label

    def device_getter(self) -> Callable[[Any], Any]:
        return _device_attribute

    def move(self, x: Any, device: Any) -> Any:
        return x.to_device(device)

    def to_host(self, x: Any) -> np.ndarray:
        host = x.to_device(self.module("array_api_strict").Device("CPU_DEVICE"))
        return np.array(np.from_dlpack(host))
