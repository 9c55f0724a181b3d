"""Elementwise activations ``ReLU``, ``Tanh`` and ``Sigmoid``: forward, and backward from what forward kept.

They have no parameters and take their namespace, device and dtype from the input, so one
instance works on any backend. ``forward(x)`` keeps one array (ReLU: the input; Tanh and
Sigmoid: the output) for ``backward(grad_output)`` unless run under ``no_grad()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ._arrays import as_array
from ._backend import device_of, namespace_of
from ._checks import check_array, check_floating, shape_str
from ._trusted import is_trusted
from .errors import ArgumentError, ShapeError
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]

Array = Any


class _Activation(Module):
    """Base of the parameter-free elementwise activations (any shape, any real floating dtype)."""

    _parameter_names = ()

    def __init__(self) -> None:
        self._forget_kept()

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:  # pragma: no cover - abstract
        """``(y, kept)``: the output and the array backward needs."""
        raise NotImplementedError

    def _gradient(self, xp: ModuleType, grad_output: Array, kept: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Array) -> Array:
        """Apply the activation elementwise: any shape -> same shape, dtype and device."""
        y, kept = self.functional_forward({}, x)
        self.save_for_backward(kept)
        return y

    def backward(self, grad_output: Array) -> Array:
        """Given ``dL/dy`` (shape of the last output), return ``dL/dx``."""
        (kept,) = self.saved_for_backward()
        return self.functional_backward({}, kept, grad_output)[0]

    def functional_forward(self, params: Mapping[str, Array], x: Array) -> tuple[Array, Any]:
        """``(y, kept)``; pure (no parameters, ``params`` is ``{}``)."""
        xp = namespace_of(x) if is_trusted() else check_floating(x, "input")
        y, kept = self._apply(xp, x)
        if x.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays: hand back (and keep) arrays
            y, kept = as_array(xp, y), as_array(xp, kept)
        return y, kept

    def functional_backward(
        self, params: Mapping[str, Array], ctx: Any, grad_output: Array
    ) -> tuple[Array, dict[str, Array]]:
        """``(dL/dx, {})`` from the ``kept`` array of :meth:`functional_forward`; pure."""
        xp = namespace_of(ctx)
        if not is_trusted():
            check_array(grad_output, "grad_output", xp, device_of(ctx), ctx.dtype)
            if tuple(grad_output.shape) != tuple(ctx.shape):
                raise ShapeError(
                    f"grad_output: expected shape {shape_str(ctx.shape)} (the last output's), "
                    f"got {shape_str(grad_output.shape)}"
                )
        grad = self._gradient(xp, grad_output, ctx)
        return (as_array(xp, grad) if ctx.ndim == 0 else grad), {}

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> _Activation:
        """No parameters to move; drops the kept forward values, like :meth:`Module.to`. Returns ``self``."""
        self._forget_kept()
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---------------------------------------------------------------- architecture config

    def get_config(self) -> dict[str, Any]:
        """``{}``: an activation has no constructor arguments."""
        return {}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> _Activation:
        """A new activation (it takes its placement from its input; ``config`` must be ``{}``)."""
        if not isinstance(config, Mapping) or config:
            raise ArgumentError(f"{cls.__name__} takes no config, got {config!r}")
        return cls()


class ReLU(_Activation):
    """``y = max(x, 0)``; ``dL/dx = 0`` where ``x <= 0``, else ``dL/dy`` (NaN inputs pass it through). Keeps ``x``.

    Both choices are PyTorch's: the gradient at 0 is 0, and where ``x`` is NaN the gradient
    passes (``x = [nan, 1, -1]`` gives ``[g, g, 0]``).
    """

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        return xp.maximum(x, xp.zeros_like(x)), x

    def _gradient(self, xp: ModuleType, grad_output: Array, x: Array) -> Array:
        return xp.where(x <= 0, xp.zeros_like(grad_output), grad_output)


class Tanh(_Activation):
    """``y = tanh(x)``; ``dL/dx = dL/dy * (1 - y²)``. Keeps ``y``."""

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        y = xp.tanh(x)
        return y, y

    def _gradient(self, xp: ModuleType, grad_output: Array, y: Array) -> Array:
        slope = 1 - y * y  # fresh: scaled in place (JAX/Dask rebind)
        slope *= grad_output
        return slope


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))`` without overflow for large ``|x|``; ``dL/dx = dL/dy * y (1 - y)``. Keeps ``y``."""

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
        positive = 1 / (1 + e)  # sigmoid(|x|)
        y = xp.where(x >= 0, positive, e * positive)  # sigmoid(-|x|) = e / (1 + e)
        return y, y

    def _gradient(self, xp: ModuleType, grad_output: Array, y: Array) -> Array:
        slope = 1 - y  # fresh: scaled in place (JAX/Dask rebind)
        slope *= y
        slope *= grad_output
        return slope
