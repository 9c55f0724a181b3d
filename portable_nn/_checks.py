"""Validation shared by the functional API and the layers: typed errors naming expected vs given."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from ._backend import backend_name, device_of, device_str, dtype_name, namespace_of
from .errors import ArgumentError, ArgumentTypeError, DeviceError, DTypeError, NamespaceError, ShapeError

__all__ = [
    "check_array",
    "check_features",
    "check_floating",
    "check_like",
    "check_lr",
    "check_same_device",
    "check_same_dtype",
    "namespace_of_arg",
    "shape_str",
]


def shape_str(shape: Any) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def namespace_of_arg(what: str, value: Any) -> ModuleType:
    """The namespace of argument ``value``; a NamespaceError naming ``what`` if it is no array."""
    try:
        return namespace_of(value)
    except NamespaceError as exc:
        raise NamespaceError(f"{what}: {exc} (pass arrays, not Python lists)") from None


def check_array(x: Any, what: str, xp: ModuleType, device: Any, dtype: Any = None) -> None:
    """Raise unless ``x`` is an array of namespace ``xp`` on ``device`` with dtype ``dtype`` (None: any dtype)."""
    got = namespace_of(x)
    if got is not xp:
        raise NamespaceError(f"{what}: expected a {backend_name(xp)} array, got a {backend_name(got)} array")
    if dtype is not None and x.dtype != dtype:
        raise DTypeError(
            f"{what}: expected dtype {dtype_name(xp, dtype)}, got {dtype_name(xp, x.dtype)} "
            "(portable_nn never casts silently; convert with xp.astype first)"
        )
    got_device = device_of(x)
    if got_device != device:
        raise DeviceError(
            f"{what}: expected an array on device {device_str(xp, device)!r}, "
            f"got one on {device_str(xp, got_device)!r} (move it with to_device first)"
        )


def check_like(x: Any, what: str, like: Any, xp: ModuleType, device: Any, dtype: Any) -> None:
    """:func:`check_array`, and ``x`` must have the shape of ``like`` (e.g. a gradient and its parameter)."""
    check_array(x, what, xp, device, dtype)
    if tuple(x.shape) != tuple(like.shape):
        raise ShapeError(f"{what}: expected shape {shape_str(like.shape)}, got {shape_str(x.shape)}")


def check_same_dtype(xp: ModuleType, what: str, expected: Any, given: Any) -> None:
    """Raise unless two dtypes are equal and floating."""
    if given != expected:
        raise DTypeError(f"{what}: expected dtype {dtype_name(xp, expected)}, got {dtype_name(xp, given)}")


def check_same_device(xp: ModuleType, what: str, expected: Any, x: Any) -> None:
    """Raise unless array ``x`` lives on device ``expected``.

    A traced JAX array (inside ``jax.jit``) has no device (None): it passes, so the check
    stays traceable; the concrete call is checked before tracing.
    """
    given = device_of(x)
    if expected is not None and given is not None and given != expected:
        raise DeviceError(
            f"{what}: expected an array on device {device_str(xp, expected)!r} like weight, "
            f"got one on {device_str(xp, given)!r} (move it with to_device first)"
        )


def check_lr(lr: Any) -> float:
    """``lr`` as a float; raise unless it is a finite, non-negative real number."""
    if isinstance(lr, bool) or (not isinstance(lr, (int, float)) and not hasattr(lr, "__float__")):
        raise ArgumentTypeError(f"lr must be a real number, got {type(lr).__name__}")
    value = float(lr)
    if not math.isfinite(value) or value < 0:
        raise ArgumentError(f"lr must be finite and >= 0, got {lr!r}")
    return value


def check_features(x: Any, in_features: int, what: str = "input") -> None:
    """Raise unless ``x`` is at least 1-D with ``in_features`` in its last axis."""
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ShapeError(
            f"{what}: expected shape (*, {in_features}) (last axis = in_features), got {shape_str(x.shape)}"
        )


def check_floating(x: Any, what: str) -> ModuleType:
    """The namespace of ``x``; raise unless ``x`` is an array of a real floating dtype."""
    xp = namespace_of(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise DTypeError(f"{what}: expected a real floating array, got dtype {dtype_name(xp, x.dtype)}")
    return xp
