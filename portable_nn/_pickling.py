"""Pickle and deepcopy of modules and optimizers: arrays through host copies, namespaces by name.

A module holds its namespace (a Python module object, which pickle refuses), native device and
dtype objects (a JAX device cannot be pickled) and arrays of any backend. :func:`get_state` turns an
object's attributes into picklable values: every array becomes a :class:`HostArray` (a host NumPy
copy plus its backend name, portable device string and dtype name), every module object its name, a
module's own ``device``/``dtype`` their portable names. :func:`set_state` reverses it: arrays come
back on the same backend, device and dtype (a ``DeviceError`` when that device does not exist where
the pickle is loaded). ``copy.deepcopy`` goes through the same two functions, so a copy shares no
array with the original.

What is not state: the values the last forward kept for backward (a copy runs a new forward before
``backward``) and an optimizer's per-backend caches (rebuilt on the next step).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from numbers import Number
from types import ModuleType
from typing import Any

from ._backend import (
    backend_name,
    device_of,
    device_str,
    dtype_name,
    from_host,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    to_host,
)
from .backends.arrays import plain_storage
from .backends.base import FLOAT_DTYPES
from .errors import NamespaceError

__all__ = ["HostArray", "NamespaceName", "Placement", "get_state", "set_state"]

#: Attributes that hold what the last forward kept (module) or per-namespace caches (optimizer): not state.
_TRANSIENT = {
    "_saved": None,
    "_saved_params": None,
    "_nothing_saved_because": False,
    "_fast_cache": None,
    "_lazy_cache": None,
    "_checked": None,
    "_route_plans": None,
    "_parameter_slots": None,
}


@dataclass(frozen=True)
class NamespaceName:
    """A module object (an array namespace or any other module) by its import name."""

    name: str
    backend: str | None  # the portable backend name when the module is an array namespace

    def restore(self) -> ModuleType:
        if self.backend is not None:
            return resolve_namespace(self.backend)
        return importlib.import_module(self.name)


@dataclass(frozen=True)
class Placement:
    """A native device or dtype by its portable name, resolved on the backend of the same object's ``xp``."""

    kind: str  # "device" or "dtype"
    name: str


@dataclass(frozen=True)
class HostArray:
    """An array as a host NumPy copy with its backend, portable device string and dtype name."""

    backend: str
    device: str
    dtype: str
    values: Any  # a host numpy.ndarray

    @classmethod
    def of(cls, x: Any) -> HostArray:
        xp = namespace_of(x)
        return cls(backend_name(xp), device_str(xp, device_of(x)), dtype_name(xp, x.dtype), to_host(x))

    def restore(self) -> Any:
        xp = resolve_namespace(self.backend)
        device = resolve_device(xp, self.device)
        dtype = resolve_dtype(xp, self.dtype) if self.dtype in FLOAT_DTYPES else self.dtype  # e.g. "int64": by name
        return from_host(plain_storage(self.values), xp, device, dtype)


def _is_array(value: Any) -> bool:
    if isinstance(value, (Number, str, bytes)) or not hasattr(value, "shape"):
        return False
    try:
        namespace_of(value)
    except NamespaceError:
        return False
    return True


def _pack(value: Any) -> Any:
    """``value`` with arrays and module objects replaced by picklable stand-ins (inside dicts, lists, tuples)."""
    kind = type(value)
    if kind is dict:
        return {key: _pack(item) for key, item in value.items()}
    if kind is list:
        return [_pack(item) for item in value]
    if kind is tuple:
        return tuple(_pack(item) for item in value)
    if isinstance(value, ModuleType):
        try:
            backend: str | None = backend_name(resolve_namespace(value))
        except Exception:  # not an array namespace: an ordinary module, restored by import
            backend = None
        return NamespaceName(value.__name__, backend)
    if _is_array(value):
        return HostArray.of(value)
    return value


def _unpack(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _unpack(item) for key, item in value.items()}
    if kind is list:
        return [_unpack(item) for item in value]
    if kind is tuple:
        return tuple(_unpack(item) for item in value)
    if kind is HostArray or kind is NamespaceName:
        return value.restore()
    return value


def get_state(obj: Any) -> dict[str, Any]:
    """``obj``'s attributes as picklable values (for ``__getstate__``); ``obj`` is not changed."""
    attributes = dict(vars(obj))
    for name, empty in _TRANSIENT.items():
        if name in attributes:
            attributes[name] = empty
    xp = attributes.get("xp")
    if isinstance(xp, ModuleType):  # a placed module: its native device and dtype by portable name
        namespace = resolve_namespace(xp)
        if "device" in attributes:
            attributes["device"] = Placement("device", device_str(namespace, attributes["device"]))
        if "dtype" in attributes:
            attributes["dtype"] = Placement("dtype", dtype_name(namespace, attributes["dtype"]))
    if "_private" in attributes:  # an optimizer's buffers are copies after a round trip, but never donated early
        attributes["_private"] = False
    return {name: _pack(value) for name, value in attributes.items()}


def set_state(obj: Any, state: dict[str, Any]) -> None:
    """Restore attributes from :func:`get_state`'s dict (for ``__setstate__``), on the same placement."""
    attributes = {name: _unpack(value) for name, value in state.items()}
    xp = attributes.get("xp")
    if isinstance(xp, ModuleType):
        if isinstance(attributes.get("device"), Placement):
            attributes["device"] = resolve_device(xp, attributes["device"].name)
        if isinstance(attributes.get("dtype"), Placement):
            attributes["dtype"] = resolve_dtype(xp, attributes["dtype"].name)
    vars(obj).update(attributes)
