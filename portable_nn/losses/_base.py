"""What every loss shares: the ``reduction`` option, ``grad_output`` for ``"none"``, checks and the repr."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._arrays import as_array
from .._backend import device_of
from .._checks import check_array, check_floating, shape_str
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..nn.grad_mode import Call
from ..typing import Array

__all__ = ["REDUCTIONS", "Loss", "broadcastable", "check_option_array", "compute_of", "element_count", "scaled"]


#: The values ``reduction`` accepts, as in PyTorch.
REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """Base of the losses: ``loss, grad = loss_fn(input, target)``.

    ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``. ``loss`` is a 0-d array for
    ``"mean"``/``"sum"`` and the per-element losses for ``"none"``; ``grad`` always has
    ``input``'s shape and is the gradient of ``loss`` for ``"mean"``/``"sum"``. For ``"none"``
    there is no scalar to differentiate: ``grad`` is the gradient of ``sum(loss * grad_output)``,
    with ``grad_output`` (``loss``'s shape) defaulting to ones, i.e. of ``sum(loss)``.
    Losses hold only their options, so one instance serves any backend. Options are
    keyword-only (PyTorch's positional order passes through deprecated arguments), except a
    leading ``weight``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, optional
        How the per-element losses are combined (default ``"mean"``).

    Raises
    ------
    ArgumentTypeError
        If ``reduction`` is not a str.
    ArgumentError
        If ``reduction`` is not one of ``"mean"``, ``"sum"``, ``"none"``.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_nn as pnn
    >>> loss, grad = pnn.MSELoss(reduction="sum")(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    >>> float(loss), grad.tolist()
    (5.0, [2.0, 4.0])
    """

    #: Option name -> default, shown by ``repr`` (in order) when not the default, besides ``reduction``.
    _options: dict[str, Any] = {}  # noqa: RUF012 - read-only class table

    def __init__(self, *, reduction: str = "mean") -> None:
        if not isinstance(reduction, str):
            raise ArgumentTypeError(f"reduction must be a str, got {type(reduction).__name__}")
        if reduction not in REDUCTIONS:
            raise ArgumentError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction

    def _upstream(self, xp: ModuleType, grad_output: Array | None, like: Array, loss_shape: tuple[int, ...]) -> Any:
        """The checked ``grad_output`` (None: ones), or an ArgumentError unless reduction is ``"none"``."""
        if grad_output is None:
            return None
        if self.reduction != "none":
            raise ArgumentError(f"grad_output is only accepted with reduction='none', got reduction={self.reduction!r}")
        check_array(grad_output, "grad_output", xp, device_of(like), like.dtype)
        if tuple(grad_output.shape) != tuple(loss_shape):
            raise ShapeError(
                f"grad_output: expected the per-element loss's shape {shape_str(loss_shape)}, "
                f"got {shape_str(grad_output.shape)}"
            )
        return grad_output

    def __repr__(self) -> str:
        shown = [
            f"{name}={_show(getattr(self, name))}"
            for name, default in self._options.items()
            if not (getattr(self, name) is default or (default is not None and getattr(self, name) == default))
        ]
        if self.reduction != "mean":
            shown.append(f"reduction={self.reduction!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def compute_of(loss_fn: Any) -> Callable[[Array, Array, Call], tuple[Array, Array]] | None:
    """A built-in loss's ``_compute(prediction, target, call)``, or None: call ``loss_fn(prediction, target)``.

    ``_compute`` is ``__call__`` with its checks under an explicit ``call`` (``call.validate`` False:
    the caller validated this input signature). Where a :class:`Loss` subclass defines its own
    ``__call__`` without a ``_compute`` beside it, that ``__call__`` is what the user wrote: None.
    """
    if not isinstance(loss_fn, Loss):
        return None
    for klass in type(loss_fn).__mro__:
        if "__call__" in vars(klass):
            compute: Callable[[Array, Array, Call], tuple[Array, Array]] | None = (
                loss_fn._compute if "_compute" in vars(klass) else None  # type: ignore[attr-defined]
            )
            return compute
    return None


def _show(value: Any) -> str:
    if value is None or isinstance(value, (int, float, str)):
        return repr(value)
    return f"<array shape {shape_str(value.shape)}>"


def broadcastable(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``to`` (right-aligned, size 1 or equal)."""
    if len(shape) > len(to):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(to), strict=False))


def check_option_array(value: Any, what: str, like: Array) -> None:
    """Raise unless an option array (``weight``, ``pos_weight``) matches ``like``'s namespace, device and dtype."""
    xp = check_floating(like, "input")
    check_array(value, what, xp, device_of(like), like.dtype)


def element_count(xp: ModuleType, x: Array) -> int | Array:
    """The number of elements of ``x``: an int where its shape is known, else a 0-d array of ``x``'s dtype.

    A shape with ``None`` sizes (symbolic dimensions, e.g. ndonnx while exporting to ONNX) has no Python
    count: ``xp.sum(xp.ones_like(x))`` counts inside the graph instead.
    """
    shape = tuple(x.shape)
    if all(isinstance(d, int) for d in shape):
        return math.prod(shape)
    return xp.sum(xp.ones_like(x))


def scaled(grad: Array, count: int | Array) -> Array:
    """``grad / count`` for a mean (``grad`` unchanged when an int ``count`` is 0: nothing to scale)."""
    if isinstance(count, int):
        return grad * (1 / count) if count else grad
    return grad / count


def full_mean(xp: ModuleType, total: Array, count: int | Array) -> Array:
    """``total / count`` as a 0-d array; NaN when ``count`` is 0, like PyTorch's mean over nothing."""
    if not isinstance(count, int):  # a symbolic count: 0 / 0 is NaN by itself
        return as_array(xp, total / count)
    if count == 0:
        total = as_array(xp, total)  # NumPy's full reductions are scalars
        return xp.full((), float("nan"), dtype=total.dtype, device=device_of(total))
    return as_array(xp, total / count)
