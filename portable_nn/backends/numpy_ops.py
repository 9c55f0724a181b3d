"""NumPy primitives for the eager hot path: the generic array-API code's operations, with fewer Python frames.

NumPy's reductions (``np.sum``, ``np.max``, ``np.any``...) are Python wrappers around a ufunc's
``reduce`` (three or four frames each); here the ``reduce`` is called directly. Every function
performs exactly the operations of the generic code it replaces, in the same order and dtypes, so its
results are the generic path's bit for bit (tests/backends/test_numpy_ops.py compares them):

- ``linear``: None (the generic ``x @ weight.T`` then ``+= bias`` has no wrapper to skip);
- ``sum_rows(g)``: ``sum(g, axis=0)``, the bias gradient of a linear layer;
- ``log_softmax(z)``: ``log(softmax(z))`` over axis 1, the max subtracted first;
- ``index_cross_entropy(z, target, mean)``: cross-entropy of class-index targets and its gradient
  (the generic code's one-hot mask, masked full sum and in-place gradient).

Found through :func:`portable_nn.backends.fast_paths.array_ops` (NumPy's adapter names this module for
its ``"ops"`` hook) by :mod:`portable_nn.functional` and :mod:`portable_nn.losses`.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["CONCRETE", "index_cross_entropy", "linear", "log_softmax", "sum_rows"]

#: NumPy arrays always hold values (never traced, never symbolic): callers need not ask before reading them
CONCRETE = True

#: no fused kernel: the generic ``x @ weight.T`` and in-place ``+= bias`` are already NumPy's fastest form
linear = None

_max, _sum, _any, _all = np.maximum.reduce, np.add.reduce, np.logical_or.reduce, np.logical_and.reduce


#: ``sum(g, axis=0)`` of a ``(rows, n)`` matrix -> ``(n,)``: NumPy's ``np.sum`` without its wrapper (a partial of
#: the ufunc's ``reduce``: called from C, no Python frame)
sum_rows = functools.partial(_sum, axis=0)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log(softmax(z))`` over axis 1 of ``z`` (rows, C): ``shifted - log(sum(exp(shifted)))``, ``shifted = z - max``.

    The generic code's operations exactly (:func:`portable_nn.losses.cross_entropy.log_softmax_rows`).
    """
    shifted = z - _max(z, axis=1, keepdims=True)
    return shifted - np.log(_sum(np.exp(shifted), axis=1, keepdims=True))


def index_cross_entropy(z: np.ndarray, target: np.ndarray, mean: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``(loss, dloss/dz)`` of cross-entropy for ``z`` (rows, C), rows > 0, and class indices ``target`` (rows,).

    The sum of ``-log_softmax(z)[i, target[i]]`` over the rows (``mean``: divided by the row
    count, and so is the gradient ``softmax(z) - onehot(target)``), as the generic code computes it:
    the one-hot mask, one masked sum over the whole matrix, the gradient built in place in the fresh
    probabilities. None when a target lies outside ``[0, C)`` (an ``ignore_index`` entry, or an
    error): the caller's generic code handles that case. ``z`` and ``target`` are not written to.
    """
    rows, classes = z.shape
    onehot = target.reshape(rows, 1) == np.arange(classes, dtype=target.dtype).reshape(1, classes)
    if not _all(_any(onehot, axis=1)):  # some row marks no class
        return None
    log_probs = log_softmax(z)
    total = -_sum(np.where(onehot, log_probs, 0.0), axis=None)  # a weak 0.0: the dtype of log_probs
    grad = np.exp(log_probs)
    grad -= onehot  # booleans count as 0 and 1 in z's dtype, as the generic code's cast
    if not mean:
        return np.asarray(total), grad
    grad *= 1 / rows
    return np.asarray(total / rows), grad
