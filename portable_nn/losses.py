"""Losses ``MSELoss`` and ``CrossEntropyLoss``: one call returns the loss and its gradient.

``loss, grad = loss_fn(pred, target)``: ``loss`` is a 0-d array on ``pred``'s backend, device
and dtype (mean reduction, like PyTorch's default), ``grad = dL/dpred`` has ``pred``'s shape and
is what ``model.backward(grad)`` takes. Losses are stateless, so one instance serves any backend.
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import device_of, dtype_name, namespace_of, to_host
from ._checks import check_array, check_floating, shape_str
from ._trusted import is_tracing, is_trusted
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = ["CrossEntropyLoss", "MSELoss"]

Array = Any


class MSELoss:
    """Mean squared error over all elements: ``loss = mean((pred - target)²)``, ``grad = 2 (pred - target) / n``.

    Shapes: ``pred`` and ``target`` any equal shape with at least one element, same backend,
    device and floating dtype.
    """

    def __call__(self, pred: Array, target: Array) -> tuple[Array, Array]:
        count = math.prod(pred.shape)
        if is_trusted():  # train_step validated this input signature
            diff = pred - target
            return _zero_dim(namespace_of(pred), namespace_of(pred).sum(diff * diff) / count), diff * (2 / count)
        xp = check_floating(pred, "pred")
        check_array(target, "target", xp, device_of(pred), pred.dtype)
        if tuple(target.shape) != tuple(pred.shape):
            raise ShapeError(f"target: expected pred's shape {shape_str(pred.shape)}, got {shape_str(target.shape)}")
        if count == 0:
            raise ShapeError(f"pred: the mean over an empty array is undefined, got shape {shape_str(pred.shape)}")
        diff = pred - target
        return _zero_dim(xp, xp.sum(diff * diff) / count), diff * (2 / count)

    def __repr__(self) -> str:
        return "MSELoss()"


class CrossEntropyLoss:
    """Softmax + negative log-likelihood of integer class targets, averaged over the batch.

    Shapes: ``logits`` (N, C) floating, ``target`` (N,) integer class indices in ``[0, C)`` on
    the same backend and device, N >= 1. With ``log p = logits - logsumexp(logits)`` (computed
    after subtracting each row's max, so large logits do not overflow):
    ``loss = -mean_i log p[i, target[i]]`` and ``grad = (softmax(logits) - onehot(target)) / N``.

    The range of ``target`` is checked (an ``ArgumentError`` otherwise), which reads its min
    and max back from the device in one transfer (one compute on Dask).
    """

    def __call__(self, logits: Array, target: Array) -> tuple[Array, Array]:
        if is_trusted():  # train_step validated this input signature; the values of target are new
            xp = namespace_of(logits)
            n, classes = logits.shape
            if not is_tracing():  # traced (jax.jit): values unknown, see portable_nn.train_step
                _check_target_range(xp, target, classes)
        else:
            xp = check_floating(logits, "logits")
            if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
                raise ShapeError(f"logits: expected shape (N, C) with N, C >= 1, got {shape_str(logits.shape)}")
            n, classes = logits.shape
            _check_target(xp, target, logits, n, classes)
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        labels = xp.arange(classes, dtype=target.dtype, device=device_of(logits))
        onehot = xp.reshape(target, (n, 1)) == xp.reshape(labels, (1, classes))
        picked = xp.where(onehot, log_probs, xp.zeros_like(log_probs))
        loss = _zero_dim(xp, -xp.sum(picked) / n)
        grad = (xp.exp(log_probs) - xp.astype(onehot, logits.dtype)) / n
        return loss, grad

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"


def _zero_dim(xp: Any, value: Array) -> Array:
    """A full reduction as a 0-d array (NumPy returns scalars, and its float64 scalar is a Python float)."""
    return xp.asarray(value)


def _check_target(xp: Any, target: Array, logits: Array, n: int, classes: int) -> None:
    check_array(target, "target", xp, device_of(logits))  # any dtype: checked as integral below
    if not xp.isdtype(target.dtype, "integral"):
        raise DTypeError(f"target: expected integer class indices, got dtype {dtype_name(xp, target.dtype)}")
    if tuple(target.shape) != (n,):
        raise ShapeError(f"target: expected shape ({n},) (one class index per row), got {shape_str(target.shape)}")
    _check_target_range(xp, target, classes)


def _check_target_range(xp: Any, target: Array, classes: int) -> None:
    low, high = (int(v) for v in to_host(xp.stack([xp.min(target), xp.max(target)])))  # one read-back
    if low < 0 or high >= classes:
        raise ArgumentError(f"target: class indices must be in [0, {classes}), got values in [{low}, {high}]")
