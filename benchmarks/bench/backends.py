"""The one place the benchmarks reach into portable_nn's backend adapter.

The harness needs to name a backend, a device and a dtype from the command line and to put the same host
numbers on every backend exactly as the library would; portable_nn has no public API for that yet, so these
names are re-exported from ``portable_nn._backend`` here and nowhere else (one place to change if it moves).
"""

from __future__ import annotations

from portable_nn._backend import (
    available_devices,
    backend_name,
    device_str,
    from_host,
    installed_backends,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
    to_host,
)

KNOWN_BACKENDS: tuple[str, ...] = ("numpy", "torch", "jax", "cupy", "array_api_strict", "dask")
KNOWN_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

__all__ = [
    "KNOWN_BACKENDS",
    "KNOWN_DTYPES",
    "available_devices",
    "backend_name",
    "device_str",
    "from_host",
    "installed_backends",
    "resolve_device",
    "resolve_dtype",
    "resolve_namespace",
    "supported_dtypes",
    "to_host",
]
