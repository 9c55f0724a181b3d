"""``BCEWithLogitsLoss``: sigmoid and binary cross-entropy in one stable step, as ``torch.nn.BCEWithLogitsLoss``."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from .._arrays import as_array
from .._backend import device_of, namespace_of
from .._checks import check_array, check_floating, shape_str
from ..errors import NamespaceError, ShapeError
from ..nn.grad_mode import CHECKED, Call
from ..typing import Array
from ._base import Loss, broadcastable, element_count, full_mean, scaled
from ._classes import check_weight_option

__all__ = ["BCEWithLogitsLoss"]


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``target`` in ``[0, 1]``.

    Per element, with ``l = 1 + (pos_weight - 1) target`` and ``softplus(u) = log(1 + exp(u))``
    (computed as ``max(u, 0) + log(exp(-max(u, 0)) + exp(u - max(u, 0)))``, so it never overflows):
    ``loss = weight ((1 - target) logits + l softplus(-logits))`` and
    ``d loss / d logits = weight ((1 - target) - l sigmoid(-logits))``.

    Parameters
    ----------
    weight : array, optional
        Rescales each element; must broadcast to the logits' shape.
    reduction : {"mean", "sum", "none"}
        How per-element losses combine.
    pos_weight : array, optional
        Weight of the positive term, broadcast against the logits' shape (typically (C,) for
        logits (N, C)), e.g. ``negatives / positives`` per class.

    Notes
    -----
    ``logits`` any shape; ``target`` its shape, backend, device and dtype (no silent broadcasting);
    ``weight`` and ``pos_weight`` its backend, device and dtype.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = BCEWithLogitsLoss()(xp.asarray([0.0]), xp.asarray([1.0]))
    >>> round(float(loss), 4), grad.tolist()
    (0.6931, [-0.5])
    """

    _options = {"weight": None, "pos_weight": None}  # noqa: RUF012

    def __init__(
        self, weight: Array | None = None, *, reduction: str = "mean", pos_weight: Array | None = None
    ) -> None:
        super().__init__(reduction=reduction)
        self.weight = check_weight_option(weight)
        self.pos_weight = check_weight_option(pos_weight)

    def __call__(self, logits: Array, target: Array, *, grad_output: Array | None = None) -> tuple[Array, Array]:
        """``(loss, grad)`` with ``grad = dloss/dlogits`` (see :class:`~portable_nn.losses.Loss`)."""
        return self._compute(logits, target, CHECKED, grad_output)

    def _compute(
        self, logits: Array, target: Array, call: Call, grad_output: Array | None = None
    ) -> tuple[Array, Array]:
        """``__call__``, the arguments checked only with ``call.validate``."""
        if not call.validate:  # train_step validated this input signature
            xp, shape = namespace_of(logits), tuple(logits.shape)
            return self._finish(xp, logits, target, shape, self._upstream(xp, grad_output, logits, shape))
        xp = check_floating(logits, "logits")
        device, shape = device_of(logits), tuple(logits.shape)
        check_array(target, "target", xp, device, logits.dtype)
        if tuple(target.shape) != shape:
            raise ShapeError(f"target: expected the logits' shape {shape_str(shape)}, got {shape_str(target.shape)}")
        for what in ("weight", "pos_weight"):
            value = getattr(self, what)
            if value is None:
                continue
            try:
                check_array(value, what, xp, device, logits.dtype)
            except NamespaceError as exc:
                raise NamespaceError(f"{exc} ({what} must live where the logits do)") from None
            if not broadcastable(tuple(value.shape), shape):
                raise ShapeError(
                    f"{what}: expected a shape that broadcasts to the logits' {shape_str(shape)}, "
                    f"got {shape_str(value.shape)}"
                )
        return self._finish(xp, logits, target, shape, self._upstream(xp, grad_output, logits, shape))

    def _finish(
        self, xp: ModuleType, logits: Array, target: Array, shape: tuple[int, ...], upstream: Any
    ) -> tuple[Array, Array]:
        loss, grad = self._pointwise(xp, logits, target)
        if self.reduction == "mean":
            count = math.prod(shape) if all(isinstance(d, int) for d in shape) else element_count(xp, loss)
            total = full_mean(xp, xp.sum(loss), count)
            grad = scaled(grad, count)
        elif self.reduction == "sum":
            total = as_array(xp, xp.sum(loss))
        else:
            total = loss
            if upstream is not None:
                grad = grad * upstream
        if logits.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays
            return as_array(xp, total), as_array(xp, grad)
        return total, grad

    def _pointwise(self, xp: ModuleType, x: Array, target: Array) -> tuple[Array, Array]:
        negative = -x
        top = xp.maximum(negative, xp.zeros_like(x))
        softplus = top + xp.log(xp.exp(-top) + xp.exp(negative - top))  # softplus(-x)
        e = xp.exp(-xp.abs(x))
        sigmoid_negative = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x), stable both ways
        complement = 1 - target
        if self.pos_weight is None:
            loss, grad = complement * x + softplus, complement - sigmoid_negative
        else:
            log_weight = (self.pos_weight - 1) * target + 1
            loss, grad = complement * x + log_weight * softplus, complement - log_weight * sigmoid_negative
        if self.weight is not None:
            loss, grad = loss * self.weight, grad * self.weight
        return loss, grad
