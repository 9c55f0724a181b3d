"""The one backend-aware module: namespace resolution, devices, dtypes and host transfer.

Everything else in portable_nn calls the array API standard on the namespace this module
hands out. Backend names are ``"numpy" | "torch" | "cupy" | "jax" | "array_api_strict" |
"dask"``; portable device strings are ``"cpu"``, ``"cpu:N"``, ``"cuda"``, ``"cuda:N"`` (plus
array-api-strict's own device names such as ``"device1"``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat

from .errors import (
    BackendUnavailableError,
    DeviceError,
    DTypeError,
    NamespaceError,
    UnknownBackendError,
)

__all__ = [
    "BACKENDS",
    "FLOAT_DTYPES",
    "backend_name",
    "convert",
    "device_matrix",
    "device_of",
    "device_str",
    "dtype_name",
    "from_host",
    "is_lazy",
    "is_torch_module",
    "materialize",
    "namespace_of",
    "resolve_device",
    "resolve_dtype",
    "resolve_namespace",
    "supported_dtypes",
    "supported_on",
    "target_placement",
    "to_host",
    "torch_linear",
]

BACKENDS: tuple[str, ...] = ("numpy", "torch", "cupy", "jax", "array_api_strict", "dask")
FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

# Backend name -> (module that must import, compliant namespace module).
_NAMESPACE_MODULES: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "array_api_compat.numpy"),
    "torch": ("torch", "array_api_compat.torch"),
    "cupy": ("cupy", "array_api_compat.cupy"),
    "jax": ("jax", "jax.numpy"),
    "array_api_strict": ("array_api_strict", "array_api_strict"),
    "dask": ("dask.array", "array_api_compat.dask.array"),
}
# Every module name (raw or wrapped) a user may pass, mapped to its backend.
_MODULE_TO_BACKEND: dict[str, str] = {
    "numpy": "numpy",
    "array_api_compat.numpy": "numpy",
    "torch": "torch",
    "array_api_compat.torch": "torch",
    "cupy": "cupy",
    "array_api_compat.cupy": "cupy",
    "jax": "jax",
    "jax.numpy": "jax",
    "array_api_strict": "array_api_strict",
    "dask.array": "dask",
    "array_api_compat.dask.array": "dask",
}
_ALIASES: dict[str, str] = {
    "np": "numpy",
    "jax.numpy": "jax",
    "jnp": "jax",
    "strict": "array_api_strict",
    "array-api-strict": "array_api_strict",
    "dask.array": "dask",
}

_namespace_cache: dict[str, ModuleType] = {}
_namespace_by_type: dict[type, ModuleType] = {}
_device_getter_by_type: dict[type, Callable[[Any], Any]] = {}


# --------------------------------------------------------------------------- namespaces


def _load_backend(name: str) -> ModuleType:
    cached = _namespace_cache.get(name)
    if cached is not None:
        return cached
    package, namespace = _NAMESPACE_MODULES[name]
    try:
        importlib.import_module(package)
        xp = importlib.import_module(namespace)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {name!r} is not installed ({exc}); installed backends: {installed_backends()}"
        ) from exc
    _namespace_cache[name] = xp
    return xp


def installed_backends() -> list[str]:
    """Names of the backends whose packages import on this machine."""
    found = []
    for name in BACKENDS:
        if name in _namespace_cache or importlib.util.find_spec(_NAMESPACE_MODULES[name][0].split(".")[0]):
            found.append(name)
    return found


def resolve_namespace(spec: Any) -> ModuleType:
    """The array-API namespace for a backend name, a namespace module, or an array.

    >>> resolve_namespace("numpy").__name__
    'array_api_compat.numpy'
    """
    if isinstance(spec, str):
        name = _ALIASES.get(spec, spec)
        if name not in _NAMESPACE_MODULES:
            raise UnknownBackendError(f"unknown backend {spec!r}; known backends: {list(BACKENDS)}")
        return _load_backend(name)
    if isinstance(spec, ModuleType):
        name = _MODULE_TO_BACKEND.get(spec.__name__)
        if name is None:
            raise UnknownBackendError(
                f"module {spec.__name__!r} is not a supported array namespace; known backends: {list(BACKENDS)}"
            )
        return _load_backend(name)
    return namespace_of(spec)


def namespace_of(x: Any) -> ModuleType:
    """The compliant namespace of array ``x`` (cached per array type: ~50 ns after the first call)."""
    kind = type(x)
    xp = _namespace_by_type.get(kind)
    if xp is not None:
        return xp
    if isinstance(x, (bool, int, float, complex, list, tuple)) or not hasattr(x, "shape"):
        raise NamespaceError(f"expected an array, got {kind.__module__}.{kind.__qualname__}")
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError as exc:
        raise NamespaceError(f"{kind.__module__}.{kind.__qualname__} is not a supported array type") from exc
    name = _MODULE_TO_BACKEND.get(xp.__name__)
    if name is None:
        raise NamespaceError(f"arrays of namespace {xp.__name__!r} are not supported; known: {list(BACKENDS)}")
    xp = _load_backend(name)
    _namespace_by_type[kind] = xp
    return xp


def backend_name(xp: ModuleType) -> str:
    """The portable name (``"numpy"``, ``"torch"``, ...) of a namespace from :func:`resolve_namespace`."""
    try:
        return _MODULE_TO_BACKEND[xp.__name__]
    except (KeyError, AttributeError):
        raise UnknownBackendError(f"{xp!r} is not a supported array namespace") from None


def is_lazy(xp: ModuleType) -> bool:
    """Whether the backend builds graphs that only run on ``compute()`` (Dask)."""
    return backend_name(xp) == "dask"


_lazy_by_type: dict[type, bool] = {}


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
        lazy = _lazy_by_type[kind] = is_lazy(namespace_of(arrays[0]))
    if not lazy:
        return arrays
    single = [a if a.npartitions == 1 else a.rechunk(a.shape) for a in arrays]
    return tuple(_raw("dask").persist(*single))


# --------------------------------------------------------------------------- devices


def _raw(module: str) -> ModuleType:
    """The backend's own (unwrapped) module, e.g. ``torch`` or ``jax.numpy``."""
    return importlib.import_module(module)


def device_of(x: Any) -> Any:
    """The device object of array ``x`` (cached per array type)."""
    getter = _device_getter_by_type.get(type(x))
    if getter is None:
        name = backend_name(namespace_of(x))
        if name in ("numpy", "dask"):
            getter = _cpu_constant
        elif name in ("torch", "cupy", "array_api_strict"):
            getter = _device_attribute
        else:
            getter = array_api_compat.device
        _device_getter_by_type[type(x)] = getter
    return getter(x)


def _cpu_constant(x: Any) -> str:
    return "cpu"


def _device_attribute(x: Any) -> Any:
    return x.device


def _jax_device_str(device: Any) -> str:
    platform = "cuda" if device.platform == "gpu" else device.platform
    if platform == "cpu" and device.id == 0:
        return "cpu"
    return f"{platform}:{device.id}"


def device_str(xp: ModuleType, device: Any) -> str:
    """The portable string of a backend device object (``"cpu"``, ``"cuda:0"``, ``"device1"``...)."""
    name = backend_name(xp)
    if name in ("numpy", "dask"):
        return "cpu"
    if name == "torch":
        return "cpu" if device.type == "cpu" else str(device)
    if name == "cupy":
        return f"cuda:{device.id}"
    if name == "jax":
        return _jax_device_str(device)
    text = str(device)  # array_api_strict.Device('device1')
    label = text.split("'")[1] if "'" in text else text
    return "cpu" if label == "CPU_DEVICE" else label


def _parse_index(text: str, prefix: str) -> int:
    if text == prefix:
        return 0
    try:
        return int(text[len(prefix) + 1 :])
    except ValueError:
        raise DeviceError(f"cannot parse device string {text!r}; expected {prefix!r} or '{prefix}:N'") from None


def _native_devices(name: str) -> list[Any]:
    """All devices of a backend that can run here, native objects."""
    if name in ("numpy", "dask"):
        return ["cpu"]
    if name == "torch":
        torch = _raw("torch")
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return found
    if name == "cupy":
        cupy = _raw("cupy")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # CUDARuntimeError without a driver
            count = 0
        return [cupy.cuda.Device(i) for i in range(count)]
    if name == "jax":
        jax = _raw("jax")
        found = list(jax.devices("cpu"))
        with contextlib.suppress(RuntimeError):  # no GPU platform
            found += list(jax.devices("gpu"))
        return found
    strict = _raw("array_api_strict")
    return list(strict.__array_namespace_info__().devices())


def available_devices(xp: ModuleType) -> dict[str, Any]:
    """Portable device string -> native device, for every device of the backend usable here."""
    return {device_str(xp, d): d for d in _native_devices(backend_name(xp))}


def resolve_device(xp: ModuleType, device: Any = None) -> Any:
    """The backend's device object for ``device`` (None = the backend's default device).

    Accepts portable strings (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"cpu:N"`` for JAX,
    ``"device1"`` for array-api-strict) and the backend's own device objects.
    """
    name = backend_name(xp)
    available = available_devices(xp)
    if device is None:
        if name == "torch":
            return _raw("torch").get_default_device()
        if name == "cupy":
            if not available:
                raise DeviceError("cupy has no CUDA device on this machine")
            return _raw("cupy").cuda.Device()
        return next(iter(available.values()))
    if isinstance(device, str):
        key = device
        if device == "cuda" or (name == "jax" and device == "gpu"):
            key = "cuda:0"
        elif device == "CPU_DEVICE" or (device.startswith("cpu:") and _parse_index(device, "cpu") == 0):
            key = "cpu"
        if key in available:
            return available[key]
        raise DeviceError(f"device {device!r} is not available for {name}; available: {list(available)}")
    # A native device object: accept it if it is one of this backend's usable devices.
    for native in available.values():
        if native == device:
            return native
    if name == "torch" and isinstance(device, _raw("torch").device):
        return device  # e.g. "mps" or a custom backend torch knows about
    raise DeviceError(f"device {device!r} is not a usable {name} device; available: {list(available)}")


def device_matrix(name: str) -> list[tuple[str, str | None]]:
    """(portable device string, reason it cannot run or None) for a backend's known devices.

    Lists the usable devices and, for GPU-capable backends without a GPU here, a ``cuda``
    entry with the reason, so test matrices can show it as skipped instead of dropping it.
    """
    try:
        xp = resolve_namespace(name)
    except BackendUnavailableError:
        default = "cuda" if name == "cupy" else "cpu"
        return [(default, f"{name} is not installed")]
    devices = [(label, None) for label in available_devices(xp)]
    if name in ("torch", "cupy", "jax") and not any(label.startswith("cuda") for label, _ in devices):
        devices.append(("cuda", f"{name}: no CUDA device on this machine"))
    return devices


# --------------------------------------------------------------------------- dtypes


_DTYPE_FALLBACK_MODULES = {"torch": "torch", "jax": "jax.numpy", "dask": "numpy"}


def _dtype_table(name: str, xp: ModuleType) -> dict[str, Any]:
    table = {}
    for dtype in FLOAT_DTYPES:
        obj = getattr(xp, dtype, None)
        if obj is None and name in _DTYPE_FALLBACK_MODULES:  # e.g. bfloat16 is not in the compat namespace
            obj = getattr(_raw(_DTYPE_FALLBACK_MODULES[name]), dtype, None)
        if obj is not None:
            table[dtype] = _raw("numpy").dtype(obj) if name == "jax" else obj
    return table


_dtype_tables: dict[str, dict[str, Any]] = {}


def _table(xp: ModuleType) -> dict[str, Any]:
    name = backend_name(xp)
    table = _dtype_tables.get(name)
    if table is None:
        table = _dtype_tables[name] = _dtype_table(name, xp)
    return table


def supported_dtypes(xp: ModuleType, device: Any = None) -> list[str]:
    """The floating dtype names usable on ``device`` (array-api-strict's ``no_float64`` lacks float64)."""
    names = list(_table(xp))
    if device is not None:
        real = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
        names = [n for n in names if n in real or n in ("float16", "bfloat16")]
    return names


def supported_on(xp: ModuleType, device: Any, dtype: Any) -> Any:
    """``dtype`` if ``device`` can hold it, else a DTypeError (e.g. float64 on a no-float64 device)."""
    name = dtype_name(xp, dtype)
    usable = supported_dtypes(xp, device)
    if name not in usable:
        hint = " (enable it with JAX_ENABLE_X64=1)" if backend_name(xp) == "jax" and name == "float64" else ""
        raise DTypeError(f"{backend_name(xp)} on {device_str(xp, device)} has no {name}{hint}; supported: {usable}")
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
    np = _raw("numpy")
    name = backend_name(xp)
    target = dtype_name(xp, dtype)
    host_dtype = target if target != "bfloat16" else "float32"
    host = np.asarray(array, dtype=host_dtype, order="C")  # not ascontiguousarray: it makes 0-D arrays 1-D
    if name == "numpy":
        out = host
    elif name == "torch":
        out = _raw("torch").from_numpy(host).to(device=device)
    elif name == "jax":
        out = _raw("jax").device_put(host, device)
    elif name == "cupy":
        with device:
            out = _raw("cupy").asarray(host)
    elif name == "dask":
        out = _raw("dask.array").from_array(host, chunks=host.shape or ())
    else:
        out = xp.asarray(host, device=device)
    return out if host_dtype == target else xp.astype(out, dtype)


def to_host(x: Any) -> Any:
    """A NumPy copy of array ``x`` from any backend/device (bfloat16 comes back as float32)."""
    np = _raw("numpy")
    name = backend_name(namespace_of(x))
    if name == "torch":
        t = x.detach()
        if t.dtype == _raw("torch").bfloat16:
            t = t.float()
        return np.array(t.cpu().numpy())
    if name == "cupy":
        return x.get()
    if name == "dask":
        return to_host(np.asarray(x.compute()))
    if name == "array_api_strict":
        strict = _raw("array_api_strict")
        return np.array(np.from_dlpack(x.to_device(strict.Device("CPU_DEVICE"))))
    if name == "jax" and x.dtype == _raw("jax.numpy").bfloat16:
        x = x.astype("float32")
    return np.array(x)


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


def _move_within(xp: ModuleType, x: Any, device: Any) -> Any:
    """``x`` (already of backend ``xp``) on ``device``."""
    if device_of(x) == device:
        return x
    name = backend_name(xp)
    if name == "array_api_strict":
        return x.to_device(device)
    if name == "jax":
        return _raw("jax").device_put(x, device)
    if name == "cupy":
        with device:
            return _raw("cupy").asarray(x)
    return array_api_compat.to_device(x, device)


_DLPACK_IMPORTERS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "from_dlpack"),
    "torch": ("torch", "from_dlpack"),
    "jax": ("jax.numpy", "from_dlpack"),
    "cupy": ("cupy", "from_dlpack"),
    "array_api_strict": ("array_api_strict", "from_dlpack"),
}


def _via_dlpack(x: Any, target: str) -> Any | None:
    """``x`` imported zero-copy into backend ``target`` (on x's device), or None where DLPack cannot."""
    if target not in _DLPACK_IMPORTERS or backend_name(namespace_of(x)) == "dask":
        return None
    module, function = _DLPACK_IMPORTERS[target]
    try:
        return getattr(_raw(module), function)(x)
    except (BufferError, RuntimeError, TypeError, ValueError, AttributeError):
        return None  # e.g. CUDA -> NumPy, bfloat16 -> NumPy, a read-only NumPy buffer


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
    if backend_name(source) == "torch":
        x = x.detach()  # requires_grad tensors (nn.Parameter) cannot be exported
    name = backend_name(target)
    out = x if source is target else _via_dlpack(x, name)
    fresh = False
    if out is None or name == "dask":
        out, fresh = from_host(to_host(x), target, device, dtype), True
    else:
        out = _move_within(target, out, device)
        if out.dtype != dtype:
            out, fresh = target.astype(out, dtype), True
    if copy and not fresh:
        out = target.asarray(out, copy=True)
    if device_of(out) != device or out.dtype != dtype:  # never hand back a silently different placement
        raise DeviceError(
            f"conversion to {backend_name(target)} on {device_str(target, device)} as {dtype_name(target, dtype)} "
            f"produced {device_str(target, device_of(out))} {dtype_name(target, out.dtype)}"
        )
    return out


def is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (without importing torch: if it is not loaded, it is not one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def torch_linear(weight: Any, bias: Any | None) -> Any:
    """A ``torch.nn.Linear`` whose parameters are the torch tensors ``weight`` (out, in) and ``bias`` (out,).

    Built on the meta device first, so it neither allocates nor draws from torch's global RNG.
    """
    torch = _raw("torch")
    out_features, in_features = weight.shape
    module = torch.nn.Linear(in_features, out_features, bias=bias is not None, device="meta", dtype=weight.dtype)
    module.weight = torch.nn.Parameter(weight)
    if bias is not None:
        module.bias = torch.nn.Parameter(bias)
    return module
