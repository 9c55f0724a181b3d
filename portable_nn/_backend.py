"""The facade the library calls for namespaces, devices, dtypes and host transfer; backends live in adapters.

Everything else in portable_nn calls the array API standard on the namespace this module
hands out. What differs between backends lives in one adapter per backend
(:mod:`portable_nn.backends`), registered in one table; the functions here are backend-neutral
and delegate to the adapter of the namespace or array at hand. Backend names are ``"numpy" |
"torch" | "cupy" | "jax" | "array_api_strict" | "dask"``; portable device strings are ``"cpu"``,
``"cpu:N"``, ``"cuda"``, ``"cuda:N"`` (plus array-api-strict's own device names such as
``"device1"``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._trusted import traced_device
from .backends import ADAPTERS, BACKENDS, FLOAT_DTYPES, BackendAdapter
from .backends.base import host_array
from .backends.registry import adapter_for_array, adapter_for_namespace, get_adapter
from .backends.torch_backend import is_torch_module, torch_linear
from .errors import BackendUnavailableError, DeviceError, DTypeError, NamespaceError

__all__ = [
    "is_traced",
    "BACKENDS",
    "FLOAT_DTYPES",
    "available_devices",
    "backend_name",
    "convert",
    "device_matrix",
    "device_of",
    "device_str",
    "dtype_name",
    "from_host",
    "has_values",
    "installed_backends",
    "is_lazy",
    "is_torch_module",
    "materialize",
    "namespace_of",
    "resolve_device",
    "resolve_dtype",
    "resolve_namespace",
    "scalar_like",
    "supported_dtypes",
    "supported_on",
    "synchronize",
    "target_placement",
    "to_host",
    "torch_linear",
    "zeros_like",
]

# Per array type: the namespace, the device getter, whether it is lazy (hot path: one dict lookup each).
_namespace_by_type: dict[type, ModuleType] = {}
_device_getter_by_type: dict[type, Callable[[Any], Any]] = {}
_lazy_by_type: dict[type, bool] = {}


def _adapter(xp: ModuleType) -> BackendAdapter:
    return adapter_for_namespace(xp)


def _load(adapter: BackendAdapter) -> ModuleType:
    try:
        return adapter.namespace()
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f"{exc}; installed backends: {installed_backends()}") from exc.__cause__


# --------------------------------------------------------------------------- namespaces


def installed_backends() -> list[str]:
    """Names of the backends whose packages import on this machine."""
    return [adapter.name for adapter in ADAPTERS if adapter.installed()]


def resolve_namespace(spec: Any) -> ModuleType:
    """The array-API namespace for a backend name, a namespace module, or an array.

    >>> resolve_namespace("numpy").__name__
    'array_api_compat.numpy'
    """
    if isinstance(spec, str):
        return _load(get_adapter(spec))
    if isinstance(spec, ModuleType):
        return _load(adapter_for_namespace(spec))
    return namespace_of(spec)


def namespace_of(x: Any) -> ModuleType:
    """The compliant namespace of array ``x`` (cached per array type: ~50 ns after the first call)."""
    kind = type(x)
    xp = _namespace_by_type.get(kind)
    if xp is not None:
        return xp
    xp = _namespace_by_type[kind] = _load(adapter_for_array(x))
    return xp


_traced_by_type: dict[type, bool] = {}


def forget_types() -> None:
    """Forget the per-type caches (after :func:`portable_nn.backends.register` changes which adapter serves a type)."""
    for cache in (_namespace_by_type, _device_getter_by_type, _lazy_by_type, _traced_by_type):
        cache.clear()


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a compiler's stand-in for an array (a JAX tracer inside ``jax.jit``); False for anything else.

    Cached per type (one dict lookup after the first call of a type).
    """
    kind = type(x)
    traced = _traced_by_type.get(kind)
    if traced is None:
        try:
            traced = adapter_for_array(x).is_traced_type(kind)
        except NamespaceError:
            traced = False
        _traced_by_type[kind] = traced
    return traced


def has_values(x: Any) -> bool:
    """Whether portable_nn may read ``x``'s values for a check: False for symbolic or lazy arrays without values
    (ndonnx inputs, the generic adapter's lazy namespaces), inside ``torch.compile`` and ``torch.func`` transforms.

    Value-dependent checks (the class range of a loss's targets) are skipped where this is False.
    """
    return adapter_for_array(x).has_values(x)


def backend_name(xp: ModuleType) -> str:
    """The portable name (``"numpy"``, ``"torch"``, ...) of a namespace from :func:`resolve_namespace`."""
    return adapter_for_namespace(xp).name


def is_lazy(xp: ModuleType) -> bool:
    """Whether the backend builds graphs that only run on ``compute()`` (Dask)."""
    return _adapter(xp).lazy


def materialize(*arrays: Any) -> tuple[Any, ...]:
    """The arrays (of one backend), stored rather than pending: the persist policy of lazy backends.

    Dask: each array is made one chunk and all are persisted in one call (shared work runs
    once), so a parameter's graph is its single stored chunk and does not grow with the
    number of steps. Other backends: the same objects (one cached type check). Persisting
    runs the pending work (on the distributed scheduler in the background); it never pulls
    values to the host.
    """
    if not arrays:
        return arrays
    kind = type(arrays[0])
    lazy = _lazy_by_type.get(kind)
    if lazy is None:
        lazy = _lazy_by_type[kind] = adapter_for_array(arrays[0]).lazy
    if not lazy:
        return arrays
    return adapter_for_array(arrays[0]).materialize(arrays)


def synchronize(xp: Any, device: Any = None, out: Any = None) -> Any:
    """Block until the work queued on ``device`` (or behind ``out``) has finished; returns ``out``.

    Asynchronous backends return before their work is done: time or read memory only after
    this. torch: ``torch.cuda.synchronize`` on a CUDA device (``out``'s device when ``device``
    is None; nothing on the CPU); JAX: ``block_until_ready(out)``; CuPy: the device's streams;
    NumPy, array-api-strict, Dask (which computes on demand): nothing to wait for.

    Parameters
    ----------
    xp : str, module or array
        The backend, as :func:`resolve_namespace` accepts it.
    device : str or native device, optional
        Portable string (``"cuda:0"``) or the backend's device object.
    out : array or pytree of arrays, optional
        Results to wait for.

    Examples
    --------
    >>> import numpy as np
    >>> synchronize("numpy", out=np.ones(2))
    array([1., 1.])
    """
    namespace = resolve_namespace(xp)
    native = None if device is None else resolve_device(namespace, device)
    _adapter(namespace).synchronize(native, out)
    return out


# --------------------------------------------------------------------------- devices


def device_of(x: Any) -> Any:
    """The device object of array ``x`` (cached per array type).

    A traced array (inside ``jax.jit``) has no device: None, except inside
    :class:`portable_nn._trusted.checked_trace`, where it reports the device of the arrays it stands for.
    """
    getter = _device_getter_by_type.get(type(x))
    if getter is None:
        getter = _device_getter_by_type[type(x)] = (
            _traced_device if is_traced(x) else adapter_for_array(x).device_getter()
        )
    return getter(x)


def _traced_device(x: Any) -> Any:
    return traced_device()


def device_str(xp: ModuleType, device: Any) -> str:
    """The portable string of a backend device object (``"cpu"``, ``"cuda:0"``, ``"device1"``...)."""
    return _adapter(xp).device_str(device)


def available_devices(xp: ModuleType) -> dict[str, Any]:
    """Portable device string -> native device, for every device of the backend usable here."""
    return _adapter(xp).available_devices()


def resolve_device(xp: ModuleType, device: Any = None) -> Any:
    """The backend's device object for ``device`` (None = the backend's default device).

    Accepts portable strings (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"cpu:N"`` for JAX,
    ``"device1"`` for array-api-strict) and the backend's own device objects.
    """
    adapter = _adapter(xp)
    if device is None:
        return adapter.default_device()
    available = adapter.available_devices()
    if isinstance(device, str):
        key = adapter.device_key(device)
        if key in available:
            return available[key]
        raise DeviceError(f"device {device!r} is not available for {adapter.name}; available: {list(available)}")
    # A native device object: accept it if it is one of this backend's usable devices.
    for native in available.values():
        if native == device:
            return native
    if adapter.accepts_device(device):
        return device
    raise DeviceError(f"device {device!r} is not a usable {adapter.name} device; available: {list(available)}")


def device_matrix(name: str) -> list[tuple[str, str | None]]:
    """(portable device string, reason it cannot run or None) for a backend's known devices.

    Lists the usable devices and, for GPU-capable backends without a GPU here, a ``cuda``
    entry with the reason, so test matrices can show it as skipped instead of dropping it.
    """
    adapter = get_adapter(name)
    reason = adapter.unavailable_reason()
    if reason is not None:
        return [(adapter.home_device, reason)]
    devices: list[tuple[str, str | None]] = [(label, None) for label in adapter.available_devices()]
    if adapter.gpu_capable and not any(label.startswith("cuda") for label, _ in devices):
        devices.append(("cuda", f"{adapter.name}: no CUDA device on this machine"))
    return devices


# --------------------------------------------------------------------------- dtypes


def _table(xp: ModuleType) -> dict[str, Any]:
    return _adapter(xp).dtype_table()


def supported_dtypes(xp: ModuleType, device: Any = None) -> list[str]:
    """The floating dtype names usable on ``device`` (array-api-strict's ``no_float64`` lacks float64)."""
    return _adapter(xp).supported_dtypes(device)


def supported_on(xp: ModuleType, device: Any, dtype: Any) -> Any:
    """``dtype`` if ``device`` can hold it, else a DTypeError (e.g. float64 on a no-float64 device)."""
    adapter = _adapter(xp)
    name = dtype_name(xp, dtype)
    usable = adapter.supported_dtypes(device)
    if name not in usable:
        hint = adapter.missing_dtype_hint(name)
        raise DTypeError(f"{adapter.name} on {adapter.device_str(device)} has no {name}{hint}; supported: {usable}")
    return dtype


def resolve_dtype(xp: ModuleType, dtype: Any) -> Any:
    """The backend's dtype object for a name (``"float32"``...) or a native floating dtype."""
    table = _table(xp)
    if isinstance(dtype, str):
        if dtype in table:
            return table[dtype]
        raise DTypeError(f"dtype {dtype!r} is not supported by {backend_name(xp)}; supported: {list(table)}")
    for obj in table.values():
        try:
            if obj == dtype:
                return obj
        except TypeError:
            continue
    raise DTypeError(f"dtype {dtype!r} is not a floating dtype of {backend_name(xp)}; supported: {list(table)}")


def dtype_name(xp: ModuleType, dtype: Any) -> str:
    """The portable name of a backend dtype object (``"float32"``...); its repr if not floating."""
    for name, obj in _table(xp).items():
        if obj == dtype:
            return name
    return str(dtype).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- host transfer


def from_host(array: Any, xp: ModuleType, device: Any, dtype: Any) -> Any:
    """Move a host NumPy array onto ``xp``/``device`` as ``dtype`` (cast on the host when NumPy can).

    Casting on the host first makes the bytes identical on every backend for a given dtype.
    """
    target = dtype_name(xp, dtype)
    host_dtype = target if target != "bfloat16" else "float32"  # NumPy has no bfloat16: cast on the device
    out = _adapter(xp).from_host(host_array(array, host_dtype), device)
    return out if host_dtype == target else xp.astype(out, dtype)


def to_host(x: Any) -> Any:
    """A NumPy copy of array ``x`` from any backend/device (bfloat16 comes back as float32)."""
    return adapter_for_array(x).to_host(x)


def zeros_like(x: Any) -> Any:
    """Zeros with ``x``'s shape, dtype and placement; on JAX built on the host and put there (compiles nothing)."""
    return adapter_for_array(x).zeros_like(namespace_of(x), x)


def scalar_like(value: Any, dtype: Any, like: Any) -> Any:
    """A 0-d array ``value`` of ``dtype`` on ``like``'s device; on JAX built on the host and put there (no compile)."""
    return adapter_for_array(like).scalar(namespace_of(like), value, dtype, device_of(like))


# --------------------------------------------------------------------------- cross-backend conversion


def target_placement(
    source_xp: ModuleType, source_device: Any, source_dtype: Any, xp: Any = None, device: Any = None, dtype: Any = None
) -> tuple[ModuleType, Any, Any]:
    """Where a move to ``xp``/``device``/``dtype`` lands; each ``None`` keeps the source's.

    A kept device is matched by its portable string (``"cpu"``, ``"cuda:0"``...) on the target
    backend, falling back to the target's default device when it has no such device (e.g.
    array-api-strict's ``"device1"`` or ``"cuda:0"`` moved to NumPy). A kept dtype must exist
    on the target: bfloat16 into NumPy is a DTypeError (pass ``dtype="float32"``, lossless).
    """
    target = source_xp if xp is None else resolve_namespace(xp)
    if device is None:
        available = available_devices(target)
        label = device_str(source_xp, source_device)
        device = available[label] if label in available else resolve_device(target)
    else:
        device = resolve_device(target, device)
    if dtype is None:
        name = dtype_name(source_xp, source_dtype)
        if name not in FLOAT_DTYPES:
            raise DTypeError(f"expected a floating array ({', '.join(FLOAT_DTYPES)}), got dtype {name}")
        if name not in _table(target):
            raise DTypeError(
                f"{backend_name(target)} has no {name}; pass dtype= to cast explicitly "
                f"(e.g. dtype='float32', lossless from bfloat16)"
            )
        dtype = name
    return target, device, supported_on(target, device, resolve_dtype(target, dtype))


def convert(x: Any, xp: Any = None, device: Any = None, dtype: Any = None, *, copy: bool = False) -> Any:
    """Array ``x`` of any supported backend/device as an ``xp`` array on ``device`` with ``dtype``.

    ``None`` keeps the source's backend, device (by portable string) or dtype, as in
    :func:`target_placement`. Tries DLPack first (zero-copy where backends share memory) and
    falls back to a host round trip (CUDA -> NumPy, bfloat16 -> NumPy, Dask). A given
    ``dtype`` is an explicit cast. ``copy=True`` guarantees the result shares no memory
    with ``x`` (torch tensors a user keeps training in place, NumPy arrays a user mutates).
    Python lists and scalars raise NamespaceError; integer arrays without ``dtype`` DTypeError.
    """
    source = namespace_of(x)
    target, device, dtype = target_placement(source, device_of(x), x.dtype, xp, device, dtype)
    source_adapter, target_adapter = _adapter(source), _adapter(target)
    x = source_adapter.detach(x)
    if source is target:
        out = x
    elif source_adapter.dlpack_module is None:
        out = None
    else:
        out = target_adapter.from_dlpack(x)
    fresh = False
    if out is None or target_adapter.dlpack_module is None:
        out, fresh = from_host(to_host(x), target, device, dtype), True
    else:
        if device_of(out) != device:
            out = target_adapter.move(out, device)
        if out.dtype != dtype:
            out, fresh = target.astype(out, dtype), True
    if copy and not fresh:
        out = target.asarray(out, copy=True)
    if device_of(out) != device or out.dtype != dtype:  # never hand back a silently different placement
        raise DeviceError(
            f"conversion to {target_adapter.name} on {device_str(target, device)} as {dtype_name(target, dtype)} "
            f"produced {device_str(target, device_of(out))} {dtype_name(target, out.dtype)}"
        )
    return out
