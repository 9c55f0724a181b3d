"""JAX: CPU and GPU devices (``"cpu"``, ``"cpu:N"``, ``"cuda:N"``), float64 only with x64, asynchronous dispatch."""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["JaxAdapter"]


class JaxAdapter(BackendAdapter):
    """JAX through ``jax.numpy`` (compliant itself); dtypes are NumPy dtype objects.

    Examples
    --------
    >>> adapter = JaxAdapter()
    >>> adapter.device_key("gpu")
    'cuda:0'
    """

    name = "jax"
    tier = "ci"
    fast_paths: ClassVar[dict[str, str]] = {
        "step": "jax_step",
        "eval": "jax_eval",
        "cache": "jax_cache",
        "scatter": "jax_scatter",
    }
    package = "jax"
    namespace_module = "jax.numpy"
    module_names = ("jax",)
    aliases = ("jax.numpy", "jnp")
    gpu_capable = True
    dlpack_module = "jax.numpy"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_jax_namespace(module))

    def native_devices(self) -> list[Any]:
        # Not __array_namespace_info__().devices(): it lists only the default platform (GPU hides the CPUs).
        jax = self.module("jax")
        found = list(jax.devices("cpu"))
        with contextlib.suppress(RuntimeError):  # no GPU platform
            found += list(jax.devices("gpu"))
        return found

    def device_str(self, device: Any) -> str:
        platform = "cuda" if device.platform == "gpu" else device.platform
        if platform == "cpu" and device.id == 0:
            return "cpu"
        return f"{platform}:{device.id}"

    def device_key(self, text: str) -> str:
        return super().device_key("cuda" if text == "gpu" else text)

    def move(self, x: Any, device: Any) -> Any:
        return self.module("jax").device_put(x, device)

    def _dtype_object(self, xp: ModuleType, name: str) -> Any:
        found = getattr(xp, name, None)
        return None if found is None else np.dtype(found)  # jnp.float32 is a scalar type; arrays carry np.dtype

    def missing_dtype_hint(self, name: str) -> str:
        return " (enable it with JAX_ENABLE_X64=1)" if name == "float64" else ""

    def is_traced_type(self, kind: type) -> bool:
        import jax

        return issubclass(kind, jax.core.Tracer)

    def zeros_like(self, xp: ModuleType, x: Any) -> Any:
        """Host zeros put where ``x`` lives: ``jnp.zeros_like`` would compile one XLA program per shape and dtype."""
        if self.is_traced_type(type(x)):
            return xp.zeros_like(x)
        return self.module("jax").device_put(np.zeros(x.shape, x.dtype), x.sharding)

    def scalar(self, xp: ModuleType, value: Any, dtype: Any, device: Any) -> Any:
        """A host scalar put on ``device``: ``jnp.asarray(value, device=...)`` compiles a conversion and a copy."""
        if device is None:  # traced (inside jax.jit): a constant of the trace
            return xp.asarray(value, dtype=dtype)
        return self.module("jax").device_put(np.asarray(value, dtype=dtype), device)

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        return self.module("jax").device_put(host, device)

    def to_host(self, x: Any) -> np.ndarray:
        if x.dtype == self.module("jax.numpy").bfloat16:
            x = x.astype("float32")
        return np.array(x)

    def synchronize(self, device: Any = None, out: Any = None) -> None:
        """Block until ``out`` (an array or pytree of arrays) is computed; JAX has no per-device queue to drain."""
        if out is not None:
            self.module("jax").block_until_ready(out)
