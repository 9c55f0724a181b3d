"""``Module``: the base of stateful layers — parameters, their gradients and plain SGD ``step``.

A module owns named parameter arrays (attributes) and, for each, a ``grad_<name>`` attribute
that backward accumulates into. Arrays are never mutated in place: every update rebinds
the attribute, so immutable JAX arrays work.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ._backend import backend_name, device_str, dtype_name
from ._checks import check_array, check_lr, shape_str
from .errors import CallOrderError, ShapeError

__all__ = ["Module"]

Array = Any


class Module:
    """Base class of layers. Subclasses set ``xp``, ``device``, ``dtype`` and ``_parameter_names``."""

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()

    def forward(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_output: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    # ---------------------------------------------------------------- parameters and grads

    def named_parameters(self) -> dict[str, Array]:
        """Name -> live parameter array (parameters that are ``None``, e.g. no bias, are left out)."""
        return {n: getattr(self, n) for n in self._parameter_names if getattr(self, n) is not None}

    def parameters(self) -> list[Array]:
        """The live parameter arrays, in declaration order."""
        return list(self.named_parameters().values())

    def named_grads(self) -> dict[str, Array | None]:
        """Name -> accumulated gradient (``None`` before any backward) for each parameter."""
        return {n: getattr(self, f"grad_{n}") for n in self.named_parameters()}

    def zero_grad(self) -> None:
        """Forget accumulated gradients (they become ``None``)."""
        for name in self._parameter_names:
            setattr(self, f"grad_{name}", None)

    def set_parameters(self, values: Mapping[str, Array]) -> None:
        """Rebind parameters to new arrays, all or nothing.

        Every value must be a ``self.xp`` array on ``self.device`` with ``self.dtype`` and the
        current shape; the names must be existing parameters. Nothing changes if one fails.
        """
        current = self.named_parameters()
        for name, value in values.items():
            if name not in current:
                raise KeyError(f"{type(self).__name__} has no parameter {name!r}; parameters: {list(current)}")
            check_array(value, name, self.xp, self.device, self.dtype)
            if tuple(value.shape) != tuple(current[name].shape):
                raise ShapeError(
                    f"{name}: expected shape {shape_str(current[name].shape)}, got {shape_str(value.shape)}"
                )
        for name, value in values.items():
            setattr(self, name, value)

    def step(self, lr: float = 0.01) -> None:
        """Plain gradient descent: ``p <- p - lr * grad_p`` for every parameter (grads are kept).

        Every new parameter is computed before any is rebound (all or nothing, never in place). They come
        from validated parameters and the gradients backward made, so they are not validated again.
        """
        lr = check_lr(lr)
        params = self.named_parameters()
        grads = {n: getattr(self, f"grad_{n}") for n in params}
        missing = [n for n, g in grads.items() if g is None]
        if missing:
            raise CallOrderError(f"step() needs gradients, but {missing} have none: call backward() first")
        updated = {}
        for name, grad in grads.items():
            new = grad * -lr  # == -(lr * grad) exactly, so new == p - lr * grad exactly
            new += params[name]  # standard in-place add on the fresh array (JAX/Dask rebind): one buffer
            updated[name] = new
        for name, value in updated.items():
            setattr(self, name, value)

    # ---------------------------------------------------------------- display

    def _placement(self) -> str:
        return (
            f"backend={backend_name(self.xp)}, device={device_str(self.xp, self.device)}, "
            f"dtype={dtype_name(self.xp, self.dtype)}"
        )
