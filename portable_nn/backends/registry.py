"""The one table of backend adapters, and lookups by name, by namespace module and by array.

Adding a backend is one adapter module and one entry in :data:`ADAPTERS` (see CONTRIBUTING.md).
Lookups by namespace and by array are cached (per module name, per array type): they run on
every forward call.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import array_api_compat

from ..errors import NamespaceError, UnknownBackendError
from .array_api_strict_backend import ArrayApiStrictAdapter
from .base import BackendAdapter
from .cupy_backend import CupyAdapter
from .dask_backend import DaskAdapter
from .jax_backend import JaxAdapter
from .numpy_backend import NumpyAdapter
from .torch_backend import TorchAdapter

__all__ = ["ADAPTERS", "BACKENDS", "adapter_for_array", "adapter_for_namespace", "get_adapter"]

#: Every backend portable_nn supports, in the order reports list them.
ADAPTERS: tuple[BackendAdapter, ...] = (
    NumpyAdapter(),
    TorchAdapter(),
    CupyAdapter(),
    JaxAdapter(),
    ArrayApiStrictAdapter(),
    DaskAdapter(),
)
BACKENDS: tuple[str, ...] = tuple(adapter.name for adapter in ADAPTERS)

_by_name: dict[str, BackendAdapter] = {adapter.name: adapter for adapter in ADAPTERS}
for _adapter in ADAPTERS:
    for _alias in _adapter.aliases:
        _by_name.setdefault(_alias, _adapter)
_by_module_name: dict[str, BackendAdapter] = {}
_by_array_type: dict[type, BackendAdapter] = {}


def get_adapter(name: str) -> BackendAdapter:
    """The adapter of a backend name or alias (``"numpy"``, ``"np"``, ``"jnp"``, ``"strict"``...).

    >>> get_adapter("jnp").name
    'jax'
    """
    adapter = _by_name.get(name)
    if adapter is None:
        raise UnknownBackendError(f"unknown backend {name!r}; known backends: {list(BACKENDS)}")
    return adapter


def adapter_for_namespace(module: ModuleType) -> BackendAdapter:
    """The adapter of a namespace module, raw (``torch``) or compliant (``array_api_compat.torch``).

    >>> import numpy
    >>> adapter_for_namespace(numpy).name
    'numpy'
    """
    name = getattr(module, "__name__", None)
    adapter = _by_module_name.get(name) if isinstance(name, str) else None
    if adapter is not None:
        return adapter
    if isinstance(module, ModuleType) and isinstance(name, str):
        for candidate in ADAPTERS:
            if candidate.recognises(module):
                _by_module_name[name] = candidate
                return candidate
    raise UnknownBackendError(f"{module!r} is not a supported array namespace; known backends: {list(BACKENDS)}")


def adapter_for_array(x: Any) -> BackendAdapter:
    """The adapter of array ``x`` (cached per array type); a NamespaceError for lists, scalars and unknown arrays.

    >>> import numpy
    >>> adapter_for_array(numpy.zeros(2)).name
    'numpy'
    """
    kind = type(x)
    adapter = _by_array_type.get(kind)
    if adapter is not None:
        return adapter
    if isinstance(x, (bool, int, float, complex, list, tuple)) or not hasattr(x, "shape"):
        raise NamespaceError(f"expected an array, got {kind.__module__}.{kind.__qualname__}")
    if _is_jax_array_type(kind):  # array_namespace would build jnp.empty(0): two XLA compilations
        adapter = get_adapter("jax")
    else:
        try:
            xp = array_api_compat.array_namespace(x)
        except TypeError as exc:
            raise NamespaceError(f"{kind.__module__}.{kind.__qualname__} is not a supported array type") from exc
        try:
            adapter = adapter_for_namespace(xp)
        except UnknownBackendError:
            raise NamespaceError(
                f"arrays of namespace {xp.__name__!r} are not supported; known: {list(BACKENDS)}"
            ) from None
    reason = adapter.refused_type(kind)
    if reason is not None:
        raise NamespaceError(reason)
    _by_array_type[kind] = adapter
    return adapter


def _is_jax_array_type(kind: type) -> bool:
    """Whether ``kind`` is a concrete ``jax.Array`` type (tracers are not: they take array_api_compat's path,
    whose ``jnp.empty(0)`` is traced, not compiled); never imports JAX."""
    jax = sys.modules.get("jax")
    array = getattr(jax, "Array", None)
    return isinstance(array, type) and issubclass(kind, array)
