"""The one table of backend adapters, and lookups by name, by namespace module and by array.

Three kinds of adapters, looked up in this order: the built-in ones (:data:`ADAPTERS`: tested on every
CI run, or where a GPU is present), the bundled third-party tier (:data:`THIRD_PARTY`: marray, ndonnx,
pydata/sparse, cubed) and those registered by :func:`register` or through the ``portable_nn.backends``
entry-point group. Any other namespace that ``array_api_compat.array_namespace`` accepts, or whose
arrays carry ``__array_namespace__``, gets a :class:`~portable_nn.backends.generic_backend.GenericAdapter`
on first sight. Lookups by namespace and by array are cached (per module name, per array type):
they run on every forward call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

import array_api_compat

from ..errors import ArgumentError, ArgumentTypeError, NamespaceError, UnknownBackendError
from .array_api_strict_backend import ArrayApiStrictAdapter
from .base import BackendAdapter
from .cubed_backend import CubedAdapter
from .cupy_backend import CupyAdapter
from .dask_backend import DaskAdapter
from .generic_backend import GenericAdapter, looks_like_namespace
from .jax_backend import JaxAdapter
from .marray_backend import MarrayAdapter
from .ndonnx_backend import NdonnxAdapter
from .numpy_backend import NumpyAdapter
from .sparse_backend import SparseAdapter
from .torch_backend import TorchAdapter

__all__ = [
    "ADAPTERS",
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "THIRD_PARTY",
    "adapter_for_array",
    "adapter_for_namespace",
    "all_adapters",
    "get_adapter",
    "register",
]

#: The entry-point group a package names its adapter in (``[project.entry-points."portable_nn.backends"]``).
ENTRY_POINT_GROUP = "portable_nn.backends"

#: The built-in backends, in the order reports list them (tier ``"ci"``, CuPy ``"gpu"``).
ADAPTERS: tuple[BackendAdapter, ...] = (
    NumpyAdapter(),
    TorchAdapter(),
    CupyAdapter(),
    JaxAdapter(),
    ArrayApiStrictAdapter(),
    DaskAdapter(),
)
BACKENDS: tuple[str, ...] = tuple(adapter.name for adapter in ADAPTERS)
#: Adapters of other packages' namespaces that portable_nn ships and tests on a focused conformance subset.
THIRD_PARTY: tuple[BackendAdapter, ...] = (MarrayAdapter(), NdonnxAdapter(), SparseAdapter(), CubedAdapter())

_by_name: dict[str, BackendAdapter] = {}
_added: list[BackendAdapter] = []  # third-party tier, then registered, in registration order
_generic: dict[str, GenericAdapter] = {}  # built on first sight of an unknown namespace, by module name
_by_module_name: dict[str, BackendAdapter] = {}
_by_array_type: dict[type, BackendAdapter] = {}
_entry_points_loaded = False


def _names(adapter: BackendAdapter) -> tuple[str, ...]:
    return (adapter.name, *adapter.aliases)


def _index(adapter: BackendAdapter) -> None:
    for name in _names(adapter):
        _by_name.setdefault(name, adapter)
    _by_name[adapter.name] = adapter


for _adapter in ADAPTERS:
    _index(_adapter)


def register(adapter: BackendAdapter, *, replace: bool = False) -> BackendAdapter:
    """Make ``adapter`` the one portable_nn uses for its namespace and name; returns it.

    Registered adapters are asked before the generic one, so a package registers one where the
    standard's answers are not enough: fast paths, a :meth:`~BackendAdapter.materialize` hook for a
    lazy namespace, its own host transfer (:meth:`~BackendAdapter.to_host`) or device names. A package
    can ship it through the ``portable_nn.backends`` entry-point group instead (loaded on the first
    lookup that needs it). Lookups cached for the namespace are forgotten.

    Parameters
    ----------
    adapter : BackendAdapter
        An instance of a :class:`BackendAdapter` subclass with ``name``, ``package`` and
        ``namespace_module`` set and ``is_namespace`` defined.
    replace : bool, default False
        Replace a registered (or bundled third-party) adapter of the same name or alias. A built-in
        adapter (numpy, torch, cupy, jax, array_api_strict, dask) is never replaced.

    Returns
    -------
    BackendAdapter
        ``adapter``.

    Raises
    ------
    ArgumentTypeError
        ``adapter`` is not a BackendAdapter instance (e.g. the class itself).
    ArgumentError
        A name or alias is a built-in backend's, or another adapter's without ``replace=True``.

    Examples
    --------
    >>> import array_api_strict
    >>> from portable_nn.backends import BackendAdapter, register
    >>> class Strict2(BackendAdapter):
    ...     name, package, namespace_module = "numpy", "array_api_strict", "array_api_strict"
    >>> register(Strict2())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    portable_nn.errors.ArgumentError: cannot register backend 'numpy': it is built in (the numpy adapter is never ...
    """
    if not isinstance(adapter, BackendAdapter):
        raise ArgumentTypeError(f"register a BackendAdapter instance, got {adapter!r}")
    for attribute in ("name", "package", "namespace_module"):
        if not isinstance(getattr(adapter, attribute, None), str) or not getattr(adapter, attribute):
            raise ArgumentError(f"adapter {type(adapter).__qualname__}: {attribute} must be a non-empty string")
    for name in _names(adapter):
        existing = _by_name.get(name)
        if existing is None or existing is adapter:
            continue
        if existing in ADAPTERS:
            raise ArgumentError(
                f"cannot register backend {name!r}: it is built in (the {existing.name} adapter is never replaced)"
            )
        if not replace:
            raise ArgumentError(
                f"backend {name!r} is already registered ({existing!r}); pass replace=True to replace it"
            )
    for old in [a for a in _added if a is not adapter and set(_names(a)) & set(_names(adapter))]:
        _added.remove(old)
        for name in _names(old):
            if _by_name.get(name) is old:
                del _by_name[name]
    if adapter not in _added:
        _added.append(adapter)
    _index(adapter)
    _forget_lookups()
    return adapter


def _forget_lookups() -> None:
    _by_module_name.clear()
    _by_array_type.clear()
    facade = sys.modules.get(__name__.rsplit(".", 2)[0] + "._backend")  # absent while portable_nn imports
    forget = getattr(facade, "forget_types", None)
    if forget is not None:
        forget()


for _adapter in THIRD_PARTY:
    register(_adapter)


def all_adapters() -> tuple[BackendAdapter, ...]:
    """Every adapter known by name: the built-in ones, the third-party tier, then the registered ones.

    >>> names = [a.name for a in all_adapters()]
    >>> names[0], "ndonnx" in names
    ('numpy', True)
    """
    _load_entry_points()
    return ADAPTERS + tuple(_added)


def _load_entry_points() -> None:
    """Register the adapters of the ``portable_nn.backends`` entry-point group, once.

    An entry point names a BackendAdapter subclass or instance. One that fails to import or to
    register is reported by a warning (a broken package must not break every lookup) and skipped.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
            register(loaded() if isinstance(loaded, type) else loaded)
        except Exception as exc:
            warnings.warn(
                f"portable_nn: backend entry point {point.name!r} ({point.value}) was not registered: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )


def get_adapter(name: str) -> BackendAdapter:
    """The adapter of a backend name or alias (``"numpy"``, ``"np"``, ``"jnp"``, ``"strict"``...).

    Besides the known adapters' names, the name of an importable module that is an array API
    namespace (``"array_api_strict"``, ``"ndonnx"``...) gives that namespace's adapter.

    >>> get_adapter("jnp").name
    'jax'
    """
    adapter = _by_name.get(name)
    if adapter is None:
        _load_entry_points()
        adapter = _by_name.get(name) or _generic.get(name) or _module_adapter(name)
    if adapter is None:
        known = [a.name for a in all_adapters()]
        raise UnknownBackendError(f"unknown backend {name!r}; known backends: {known}")
    return adapter


def _module_adapter(name: str) -> BackendAdapter | None:
    """The adapter of the importable module ``name`` if it is an array namespace (None otherwise)."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        return None
    try:
        if importlib.util.find_spec(name.split(".")[0]) is None:
            return None
        module = importlib.import_module(name)
    except (ImportError, ValueError):
        return None
    if not looks_like_namespace(module):
        return None
    try:
        return adapter_for_namespace(module)
    except UnknownBackendError:
        return None


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
        for candidate in all_adapters():
            if candidate.recognises(module):
                _by_module_name[name] = candidate
                return candidate
        if looks_like_namespace(module):
            generic = _generic.get(name)
            if generic is None:
                generic = _generic[name] = GenericAdapter(module)
            _by_module_name[name] = generic
            return generic
    raise UnknownBackendError(
        f"{module!r} is not a supported array namespace (it lacks asarray or __array_namespace_info__); "
        f"known backends: {list(BACKENDS)}"
    )


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
            raise NamespaceError(
                f"{kind.__module__}.{kind.__qualname__} is not an array API array "
                "(array_api_compat.array_namespace refuses it and it has no __array_namespace__)"
            ) from exc
        try:
            adapter = adapter_for_namespace(xp)
        except UnknownBackendError:
            raise NamespaceError(
                f"arrays of namespace {getattr(xp, '__name__', xp)!r} are not supported: it lacks asarray or "
                f"__array_namespace_info__ (array API 2023.12); known: {list(BACKENDS)}"
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
