"""Elementwise regression losses: ``MSELoss``, ``L1Loss``, ``SmoothL1Loss`` and ``HuberLoss``.

Each compares ``pred`` and ``target`` of one shape elementwise, as ``torch.nn``'s losses of the
same names with the same options and defaults (unlike PyTorch, ``target`` must have ``pred``'s
shape: no silent broadcasting). ``d = pred - target``:

=================  ==========================================  ==================================
loss               per element                                 d/d pred
=================  ==========================================  ==================================
MSELoss            d²                                          2 d
L1Loss             \\|d\\|                                       sign(d)
SmoothL1Loss(β)    0.5 d²/β if \\|d\\| < β else \\|d\\| - 0.5 β      d/β if \\|d\\| <= β else sign(d)
HuberLoss(δ)       0.5 d² if \\|d\\| < δ else δ (\\|d\\| - 0.5 δ)     d if \\|d\\| <= δ else δ sign(d)
=================  ==========================================  ==================================
"""

from __future__ import annotations

from types import ModuleType

from .._arrays import as_array
from .._backend import device_of, namespace_of
from .._checks import check_array, check_floating, check_real, shape_str
from ..errors import ShapeError
from ..nn.grad_mode import CHECKED, Call
from ..typing import Array
from ._base import Loss, element_count, full_mean, scaled

__all__ = ["HuberLoss", "L1Loss", "MSELoss", "SmoothL1Loss"]


class _Elementwise(Loss):
    """Base of the elementwise losses: checks, the pointwise term (``_pointwise``) and the reduction."""

    def _pointwise(self, xp: ModuleType, diff: Array) -> tuple[Array, Array]:  # pragma: no cover - abstract
        """``(loss, dloss/ddiff)`` per element."""
        raise NotImplementedError

    def __call__(self, pred: Array, target: Array, *, grad_output: Array | None = None) -> tuple[Array, Array]:
        """``(loss, grad)``: see :class:`~portable_nn.losses.Loss` for the reductions and ``grad_output``.

        Shapes: ``pred`` and ``target`` any equal shape (0-d and empty included), same backend,
        device and real floating dtype; ``grad`` has ``pred``'s shape. The mean over an empty
        array is NaN, as in PyTorch.
        """
        return self._compute(pred, target, CHECKED, grad_output)

    def _compute(self, pred: Array, target: Array, call: Call, grad_output: Array | None = None) -> tuple[Array, Array]:
        """``__call__``, the arguments checked only with ``call.validate`` (UNCHECKED: ``train_step``'s validated
        signature, see :func:`portable_nn.training.functional_model.loss_and_grads_fn`)."""
        if not call.validate:
            xp = namespace_of(pred)
        else:
            xp = check_floating(pred, "pred")
            check_array(target, "target", xp, device_of(pred), pred.dtype)
            if tuple(target.shape) != tuple(pred.shape):
                raise ShapeError(
                    f"target: expected pred's shape {shape_str(pred.shape)}, got {shape_str(target.shape)}"
                )
        upstream = None if grad_output is None else self._upstream(xp, grad_output, pred, tuple(pred.shape))
        loss, grad = self._pointwise(xp, pred - target)
        reduction = self.reduction
        if reduction == "mean":
            count = element_count(xp, loss)
            total = full_mean(xp, xp.sum(loss), count)
            grad = scaled(grad, count)
        elif reduction == "sum":
            total = as_array(xp, xp.sum(loss))
        else:
            total = loss
            if upstream is not None:
                grad = grad * upstream
        if pred.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays
            return as_array(xp, total), as_array(xp, grad)
        return total, grad


class MSELoss(_Elementwise):
    """Squared error ``(pred - target)²``, averaged by default: ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How per-element losses combine (see :class:`~portable_nn.losses.Loss`).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = MSELoss()(xp.asarray([1.0, 2.0]), xp.asarray([0.0, 0.0]))
    >>> float(loss), grad.tolist()
    (2.5, [1.0, 2.0])
    """

    def _pointwise(self, xp: ModuleType, diff: Array) -> tuple[Array, Array]:
        return diff * diff, diff * 2


class L1Loss(_Elementwise):
    """Absolute error ``|pred - target|``: ``torch.nn.L1Loss`` (gradient ``sign(d)``, 0 where ``d == 0``).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How per-element losses combine (see :class:`~portable_nn.losses.Loss`).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = L1Loss()(xp.asarray([0.5, -3.0]), xp.asarray([0.0, 0.0]))
    >>> float(loss), grad.tolist()
    (1.75, [0.5, -0.5])
    """

    def _pointwise(self, xp: ModuleType, diff: Array) -> tuple[Array, Array]:
        return xp.abs(diff), xp.sign(diff)


class SmoothL1Loss(_Elementwise):
    """Quadratic below ``beta``, linear above: ``torch.nn.SmoothL1Loss`` (``beta=0`` is :class:`L1Loss`).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How per-element losses combine.
    beta : float
        The threshold, ``>= 0`` (default 1.0); an ``ArgumentError`` otherwise.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = SmoothL1Loss(reduction="none")(xp.asarray([0.5, -3.0]), xp.asarray([0.0, 0.0]))
    >>> loss.tolist(), grad.tolist()
    ([0.125, 2.5], [0.5, -1.0])
    """

    _options = {"beta": 1.0}  # noqa: RUF012

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.beta = check_real("beta", beta, low=0.0)

    def _pointwise(self, xp: ModuleType, diff: Array) -> tuple[Array, Array]:
        magnitude = xp.abs(diff)
        if self.beta == 0.0:
            return magnitude, xp.sign(diff)
        beta = self.beta
        loss = xp.where(magnitude < beta, diff * diff * (0.5 / beta), magnitude - 0.5 * beta)
        return loss, xp.where(magnitude <= beta, diff / beta, xp.sign(diff))


class HuberLoss(_Elementwise):
    """Quadratic below ``delta``, ``delta``-scaled linear above: ``torch.nn.HuberLoss``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}
        How per-element losses combine.
    delta : float
        The threshold, ``> 0`` (default 1.0); an ``ArgumentError`` otherwise.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = HuberLoss(reduction="none", delta=2.0)(xp.asarray([0.5, -3.0]), xp.asarray([0.0, 0.0]))
    >>> loss.tolist(), grad.tolist()
    ([0.125, 4.0], [0.5, -2.0])
    """

    _options = {"delta": 1.0}  # noqa: RUF012

    def __init__(self, *, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = check_real("delta", delta, low=0.0, low_open=True)

    def _pointwise(self, xp: ModuleType, diff: Array) -> tuple[Array, Array]:
        magnitude, delta = xp.abs(diff), self.delta
        loss = xp.where(magnitude < delta, diff * diff * 0.5, (magnitude - 0.5 * delta) * delta)
        return loss, xp.where(magnitude <= delta, diff, xp.sign(diff) * delta)
