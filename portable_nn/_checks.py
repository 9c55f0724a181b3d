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
    "check_real",
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
    # None: a traced JAX array (inside jax.jit or jax.vmap) has no device; either side traced passes
    if got_device is not None and device is not None and got_device != device:
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


def check_real(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in the interval ``low``..``high``; the one number validator of portable_nn.

    Accepts Python ints and floats and 0-d arrays of any backend (``float()`` works on them);
    ``bool``, strings, non-0-d arrays and other objects are an ``ArgumentTypeError``; values
    that overflow a float (``10**400``), non-finite values and values outside the interval
    (closed unless ``low_open``/``high_open``) are an ``ArgumentError`` naming ``name``.

    >>> check_real("momentum", 0.9, low=0.0, high=1.0)
    0.9
    """
    numeric = isinstance(value, (int, float)) or hasattr(value, "__float__")
    if isinstance(value, (bool, str, bytes)) or not numeric:
        raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__}")
    shape = getattr(value, "shape", ())
    if not isinstance(value, (int, float)) and tuple(shape) != ():
        raise ArgumentTypeError(f"{name} must be a real number or a 0-d array, got shape {shape_str(shape)}")
    try:
        number = float(value)
    except OverflowError:
        raise ArgumentError(f"{name} must be a finite number, got {value!r} (too large for a float)") from None
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__} ({exc})") from None
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ArgumentError(f"{name} must be a finite number in {interval}, got {value!r}")
    return number


def check_lr(lr: Any) -> float:
    """``lr`` as a float; raise unless it is a finite, non-negative real number (or a 0-d array of one)."""
    return check_real("lr", lr, low=0.0)


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
