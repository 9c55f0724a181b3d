"""``CrossEntropyLoss`` and ``NLLLoss`` over a class axis, with PyTorch's options and defaults.

Inputs are ``(C,)`` (unbatched), ``(N, C)`` or ``(N, C, d1, ..., dk)``; class-index targets
have the input's shape without the class axis. ``weight`` (C,) rescales each class;
``ignore_index`` marks target positions that contribute nothing; with ``reduction="mean"`` the
sum is divided by the summed target weights of the positions kept (their count when there is
no ``weight``), so a batch whose targets are all ignored gives NaN, as in PyTorch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._arrays import as_array
from .._backend import device_of, has_values, is_traced, namespace_of
from .._checks import check_array, check_floating, check_real, shape_str
from ..backends.fast_paths import array_ops
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..nn.grad_mode import CHECKED, Call
from ..typing import Array
from ._base import Loss, full_mean, scaled
from ._classes import (
    Layout,
    check_class_weight,
    check_index_target,
    check_weight_option,
    class_labels,
    index_terms,
    is_floating,
    target_onehot,
    target_range_ignored,
)

__all__ = ["CrossEntropyLoss", "NLLLoss"]


def _check_ignore_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"ignore_index must be an int, got {type(value).__name__}")
    return value


def log_softmax_rows(xp: ModuleType, z: Array) -> Array:
    """``log(softmax(z))`` over axis 1 of ``z`` (rows, C), the max subtracted first (large logits do not overflow).

    A backend with a fused kernel uses it (:func:`portable_nn.backends.fast_paths.array_ops`); the same numbers
    within rounding.
    """
    fused = array_ops(z)
    if fused is not None:
        return fused.log_softmax(z)
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


class _ClassLoss(Loss):
    """Options and the reduction shared by the class-axis losses."""

    _options = {"weight": None, "ignore_index": -100}  # noqa: RUF012
    _layout: Layout | None = None  # the last unchecked call's (an attribute read, no call, on every step)
    #: the last unchecked call's fused kernel: ((array types, shape, target dtype), options, index_cross_entropy)
    _hot: tuple[Any, Any, Any] | None = None

    def __init__(self, weight: Array | None = None, *, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.weight = check_weight_option(weight)
        self.ignore_index = _check_ignore_index(ignore_index)

    def _prepare(
        self, x: Array, what: str, grad_output: Array | None, validate: bool
    ) -> tuple[ModuleType, Layout, Any]:
        if not validate:  # train_step validated this input signature
            cached = self._layout  # one per input shape
            if cached is None or cached.shape != x.shape:
                cached = self._layout = Layout(x, what)
            xp = namespace_of(x)
            return xp, cached, None if grad_output is None else self._upstream(xp, grad_output, x, cached.loss_shape)
        xp = check_floating(x, what)
        layout = Layout(x, what)
        if self.weight is not None:
            check_class_weight(xp, self.weight, x, layout.classes)
        return xp, layout, self._upstream(xp, grad_output, x, layout.loss_shape)

    def _index_onehot(self, xp: ModuleType, target: Array, layout: Layout, validate: bool) -> tuple[Array, bool]:
        """``(onehot, ignored)`` of class-index ``target`` (see :func:`target_onehot`), its values checked
        (:func:`target_range_ignored`; with ``validate`` also inside a checked abstract trace).

        ``arange(C)`` is built once per namespace, class count, dtype and device (not while traced:
        a traced array must not outlive its trace).
        """
        if is_traced(target):
            labels = class_labels(xp, target, layout.classes)
        else:
            key = (xp, layout.classes, target.dtype, device_of(target))
            cached = getattr(self, "_labels", None)
            if cached is not None and cached[0] == key:
                labels = cached[1]
            else:
                labels = class_labels(xp, target, layout.classes)
                if not is_traced(labels):  # built inside a user's jax.jit: it must not outlive the trace
                    self._labels = (key, labels)
        onehot = target_onehot(xp, target, layout, labels)
        return onehot, target_range_ignored(xp, target, layout, self.ignore_index, onehot, validate)

    def _empty(self, xp: ModuleType, layout: Layout, x: Array) -> tuple[Array, Array]:
        """An input with no positions: NaN mean, zero sum, empty per-position losses; a zero gradient.

        Built directly (Dask mishandles reductions over empty chunked axes).
        """
        place = {"dtype": x.dtype, "device": device_of(x)}
        if self.reduction == "mean":
            loss = xp.full((), float("nan"), **place)
        else:
            loss = xp.zeros(() if self.reduction == "sum" else layout.loss_shape, **place)
        return loss, xp.zeros(layout.shape, **place)

    def _reduce(
        self,
        xp: ModuleType,
        layout: Layout,
        loss: Array,
        grad: Array,
        denominator: Array | None,
        upstream: Array | None,
    ) -> tuple[Array, Array]:
        """Reduce ``loss`` (rows,) and scale ``grad`` (rows, C); ``denominator`` None means the row count."""
        if self.reduction == "mean":
            if denominator is None:
                count = layout.count(xp, loss)
                total = full_mean(xp, xp.sum(loss), count)
                grad = scaled(grad, count)
            else:
                empty = denominator == 0
                safe = xp.where(empty, xp.ones_like(denominator), denominator)
                nan = xp.full((), float("nan"), dtype=loss.dtype, device=device_of(loss))
                total = as_array(xp, xp.where(empty, nan, xp.sum(loss) / safe))
                grad = grad / safe
        elif self.reduction == "sum":
            total = as_array(xp, xp.sum(loss))
        else:
            total = xp.reshape(loss, layout.loss_dims)
            if upstream is not None:
                grad = grad * xp.reshape(upstream, (layout.rows, 1))
        return total, layout.from_rows(xp, grad)  # never 0-d: the input has a class axis


class CrossEntropyLoss(_ClassLoss):
    """Log-softmax over the class axis, then the negative log-likelihood: ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : array of shape (C,), optional
        Per-class weights, on the input's backend, device and dtype.
    ignore_index : int
        Class-index target value that contributes nothing (default -100). Probability targets
        accept only negative values (like PyTorch): an ``ArgumentError`` otherwise.
    reduction : {"mean", "sum", "none"}
        How per-position losses combine; "mean" divides by the kept positions' summed weights.
    label_smoothing : float
        In ``[0, 1]`` (default 0): the target becomes ``(1 - ε) target + ε / C`` (uniform mix).

    Notes
    -----
    ``logits`` (C,), (N, C) or (N, C, d1, ..., dk), real floating. ``target`` either integer
    class indices of shape (), (N,) or (N, d1, ..., dk) in ``[0, C)`` (or ``ignore_index``), or
    floating class probabilities of ``logits``'s shape and dtype. With ``p = softmax(logits)``
    (computed after subtracting the max, so large logits do not overflow) the gradient of one
    position is ``w[y] (p - onehot(y))`` for indices and ``p Σ w t - w t`` for probabilities.
    Index ranges are checked with one read-back of one count (every row of the one-hot
    matrix marks a class); only when it falls short, with the target's min and max (and a
    third read only when ``ignore_index`` lies between them).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> loss, grad = CrossEntropyLoss()(xp.asarray([[0.0, 0.0]]), xp.asarray([1]))
    >>> round(float(loss), 4), grad.tolist()
    (0.6931, [[0.5, -0.5]])
    """

    _options = {"weight": None, "ignore_index": -100, "label_smoothing": 0.0}  # noqa: RUF012

    def __init__(
        self,
        weight: Array | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, ignore_index=ignore_index, reduction=reduction)
        self.label_smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)

    def __call__(self, logits: Array, target: Array, *, grad_output: Array | None = None) -> tuple[Array, Array]:
        """``(loss, grad)`` with ``grad = dloss/dlogits`` (see the class notes and :class:`Loss`)."""
        return self._compute(logits, target, CHECKED, grad_output)

    def _compute(
        self, logits: Array, target: Array, call: Call, grad_output: Array | None = None
    ) -> tuple[Array, Array]:
        """``__call__``, the arguments checked only with ``call.validate`` (the targets' values whenever readable)."""
        validate = call.validate
        if not validate and grad_output is None:  # train_step's hot path: the last unchecked call's fused kernel
            hot = self._hot
            if (
                hot is not None
                and hot[0] == (type(logits), logits.shape, type(target), target.dtype)
                and hot[1] == (self.ignore_index, self.label_smoothing, self.reduction)
                and self.weight is None
            ):
                fused_hot: tuple[Array, Array] | None = hot[2](logits, target, self.reduction == "mean")
                if fused_hot is not None:
                    return fused_hot
        xp, layout, upstream = self._prepare(logits, "logits", grad_output, validate)
        if validate:
            check_array(target, "target", xp, device_of(logits))  # any dtype: indices or probabilities
        probabilities = is_floating(xp, target.dtype)
        if probabilities:
            if validate:
                self._check_probabilities(xp, logits, target)
        elif validate:
            check_index_target(xp, target, layout, self.ignore_index)
        if layout.rows == 0:
            return self._empty(xp, layout, logits)
        ops = None if probabilities else self._fused_ops(logits, layout)
        if ops is not None:
            fused: tuple[Array, Array] | None = ops.index_cross_entropy(logits, target, self.reduction == "mean")
            if fused is not None:  # every target a class: nothing ignored, nothing out of range
                if not validate and grad_output is None and ops.CONCRETE:  # kept for the next unchecked call
                    self._hot = (
                        (type(logits), logits.shape, type(target), target.dtype),
                        (self.ignore_index, self.label_smoothing, self.reduction),
                        ops.index_cross_entropy,
                    )
                return fused
        if not probabilities:
            onehot, ignored = self._index_onehot(xp, target, layout, validate)
        log_probs = log_softmax_rows(xp, layout.to_rows(xp, logits))
        probs = xp.exp(log_probs)
        if probabilities:
            loss, grad = self._soft(xp, layout, log_probs, probs, layout.to_rows(xp, target))
            return self._reduce(xp, layout, loss, grad, None, upstream)
        weight, eps, classes = self.weight, self.label_smoothing, layout.classes
        onehot, onehot_float, row_weight = index_terms(
            xp, target, layout, logits.dtype, weight, self.ignore_index, ignored, onehot
        )
        zero = xp.zeros_like(log_probs)
        if row_weight is None and eps == 0.0 and self.reduction != "none":
            # The common case: one full reduction, and the gradient built in the fresh ``probs``.
            total = -xp.sum(xp.where(onehot, log_probs, zero))
            probs -= onehot_float
            if self.reduction == "sum":
                return as_array(xp, total), layout.from_rows(xp, probs)
            count = layout.count(xp, probs)
            if isinstance(count, int):
                probs *= 1 / count  # in place: probs is this call's own buffer
            else:
                probs = probs / count
            return full_mean(xp, total, count), layout.from_rows(xp, probs)
        loss = -xp.sum(xp.where(onehot, log_probs, zero), axis=1)
        grad = probs - onehot_float
        if row_weight is not None:
            loss, grad = loss * row_weight, grad * xp.reshape(row_weight, (layout.rows, 1))
        if eps > 0.0:
            if weight is None:
                smooth, smooth_grad = -xp.sum(log_probs, axis=1), probs * classes - 1
            else:
                row = xp.reshape(weight, (1, classes))
                smooth, smooth_grad = -xp.sum(log_probs * row, axis=1), probs * xp.sum(weight) - row
            if ignored:
                kept = xp.reshape(target, (layout.rows, 1)) != self.ignore_index
                smooth = xp.where(xp.reshape(kept, (layout.rows,)), smooth, xp.zeros_like(smooth))
                smooth_grad = xp.where(kept, smooth_grad, zero)
            loss = loss * (1 - eps) + smooth * (eps / classes)
            grad = grad * (1 - eps) + smooth_grad * (eps / classes)
        denominator = None if row_weight is None else xp.sum(row_weight)
        return self._reduce(xp, layout, loss, grad, denominator, upstream)

    def _fused_ops(self, logits: Array, layout: Layout) -> Any:
        """The backend's primitives (:func:`~portable_nn.backends.fast_paths.array_ops`) if their fused index
        cross-entropy computes this call (2-D logits, a mean or sum of plain terms: no class weights, smoothing
        or class-valued ``ignore_index``; values to read, not traced), else None."""
        if (
            logits.ndim != 2
            or self.weight is not None
            or self.label_smoothing != 0.0
            or self.reduction == "none"
            or 0 <= self.ignore_index < layout.classes
        ):
            return None
        ops = array_ops(logits)
        if ops is None or ops.index_cross_entropy is None:
            return None
        if not ops.CONCRETE and (is_traced(logits) or not has_values(logits)):  # the fused path reads the targets
            return None
        return ops

    def _check_probabilities(self, xp: ModuleType, logits: Array, target: Array) -> None:
        if self.ignore_index >= 0:
            raise ArgumentError(
                f"ignore_index={self.ignore_index} is not supported with class-probability (floating) targets "
                "(like PyTorch: leave it at a negative value)"
            )
        if target.dtype != logits.dtype:
            raise DTypeError(
                "target: class probabilities must have the logits' dtype (portable_nn never casts silently)"
            )
        if tuple(target.shape) != tuple(logits.shape):
            raise ShapeError(
                f"target: class probabilities must have the logits' shape {shape_str(logits.shape)}, "
                f"got {shape_str(target.shape)}"
            )

    def _soft(
        self, xp: ModuleType, layout: Layout, log_probs: Array, probs: Array, target: Array
    ) -> tuple[Array, Array]:
        """Per-row loss and gradient for probability targets (rows, C)."""
        eps, classes = self.label_smoothing, layout.classes
        if eps > 0.0:
            target = target * (1 - eps) + eps / classes
        if self.weight is not None:
            target = target * xp.reshape(self.weight, (1, classes))
        loss = -xp.sum(log_probs * target, axis=1)
        grad = probs * xp.sum(target, axis=1, keepdims=True) - target
        return loss, grad


class NLLLoss(_ClassLoss):
    """Negative log-likelihood of log-probabilities: ``torch.nn.NLLLoss`` (pair it with a log-softmax).

    Parameters
    ----------
    weight : array of shape (C,), optional
        Per-class weights, on the input's backend, device and dtype.
    ignore_index : int
        Target value that contributes nothing (default -100).
    reduction : {"mean", "sum", "none"}
        How per-position losses combine; "mean" divides by the kept positions' summed weights.

    Notes
    -----
    ``log_probs`` (C,), (N, C) or (N, C, d1, ..., dk); ``target`` integer class indices of
    shape (), (N,) or (N, d1, ..., dk). Loss per position ``-w[y] log_probs[y]``; gradient
    ``-w[y] onehot(y)``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> log_probs = xp.asarray([[-1.0, -2.0], [-0.5, -3.0]])
    >>> loss, grad = NLLLoss(reduction="none")(log_probs, xp.asarray([1, 0]))
    >>> loss.tolist(), grad.tolist()
    ([2.0, 0.5], [[-0.0, -1.0], [-1.0, -0.0]])
    """

    def __call__(self, log_probs: Array, target: Array, *, grad_output: Array | None = None) -> tuple[Array, Array]:
        """``(loss, grad)`` with ``grad = dloss/dlog_probs``."""
        return self._compute(log_probs, target, CHECKED, grad_output)

    def _compute(
        self, log_probs: Array, target: Array, call: Call, grad_output: Array | None = None
    ) -> tuple[Array, Array]:
        """``__call__``, the arguments checked only with ``call.validate`` (the targets' values whenever readable)."""
        validate = call.validate
        xp, layout, upstream = self._prepare(log_probs, "log_probs", grad_output, validate)
        if validate:
            check_array(target, "target", xp, device_of(log_probs))
            check_index_target(xp, target, layout, self.ignore_index)
        if layout.rows == 0:
            return self._empty(xp, layout, log_probs)
        onehot, ignored = self._index_onehot(xp, target, layout, validate)
        rows = layout.to_rows(xp, log_probs)
        onehot, onehot_float, row_weight = index_terms(
            xp, target, layout, log_probs.dtype, self.weight, self.ignore_index, ignored, onehot
        )
        loss = -xp.sum(xp.where(onehot, rows, xp.zeros_like(rows)), axis=1)
        grad = -onehot_float
        if row_weight is not None:
            loss, grad = loss * row_weight, grad * xp.reshape(row_weight, (layout.rows, 1))
        denominator = None if row_weight is None else xp.sum(row_weight)
        return self._reduce(xp, layout, loss, grad, denominator, upstream)
