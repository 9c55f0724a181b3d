"""Validating and converting a ``load_state_dict`` argument for :meth:`portable_nn.Module.load_state_dict`.

Every value is checked against the module's parameters (names, floating dtype, shape, no silent
cast) before anything changes, then copied onto each parameter's backend, device and dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._backend import FLOAT_DTYPES, convert, device_of, dtype_name, namespace_of
from ._checks import namespace_of_arg, shape_str
from .backends.arrays import plain_storage
from .errors import ArgumentTypeError, DTypeError, SerializationError, ShapeError

if TYPE_CHECKING:
    from .module import Module

__all__ = ["loadable_state"]

Array = Any

#: (given, expected) dtype pairs a cast cannot lose precision on.
_LOSSLESS = {
    ("float16", "float32"),
    ("float16", "float64"),
    ("bfloat16", "float32"),
    ("bfloat16", "float64"),
    ("float32", "float64"),
}


def loadable_state(module: Module, state: Mapping[str, Array], *, strict: bool, cast: bool) -> dict[str, Array]:
    """``state``'s values validated against ``module``'s parameters and converted onto their placement.

    Errors (nothing changes): not a mapping -> ``ArgumentTypeError``; with ``strict``, missing or
    unexpected names -> ``SerializationError``; a non-array -> ``NamespaceError``; a non-float
    dtype, or another float dtype without ``cast`` -> ``DTypeError``; another shape -> ``ShapeError``.
    """
    if not isinstance(state, Mapping):
        raise ArgumentTypeError(f"state must be a mapping of name -> array, got {type(state).__name__}")
    current = module.named_parameters()
    missing = [n for n in current if n not in state]
    unexpected = [n for n in state if n not in current]
    if strict and (missing or unexpected):
        raise SerializationError(
            f"state does not match {type(module).__name__}: missing keys {missing}, unexpected keys {unexpected}; "
            f"expected exactly {list(current)} (strict=False loads the common keys only)"
        )
    loaded = {}
    for name, value in state.items():
        if name not in current:
            continue
        target = current[name]
        value = plain_storage(value)  # np.memmap (joblib) is plain storage: copied; masked arrays stay refused
        source_xp = namespace_of_arg(name, value)
        given = dtype_name(source_xp, value.dtype)
        expected = dtype_name(namespace_of(target), target.dtype)
        if given not in FLOAT_DTYPES:
            raise DTypeError(f"{name}: expected a floating array ({expected}), got dtype {given}")
        if tuple(value.shape) != tuple(target.shape):
            raise ShapeError(f"{name}: expected shape {shape_str(target.shape)}, got {shape_str(value.shape)}")
        if given != expected and not cast:
            loss = "" if (given, expected) in _LOSSLESS else " (it would lose precision)"
            raise DTypeError(
                f"{name}: expected dtype {expected}, got {given}; portable_nn never casts silently{loss}: "
                "pass cast=True to convert"
            )
        loaded[name] = (value, target)
    return {
        name: convert(value, namespace_of(target), device_of(target), target.dtype, copy=True)
        for name, (value, target) in loaded.items()
    }
