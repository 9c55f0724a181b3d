"""Fused torch primitives for the eager hot path: one kernel where the array-API form takes several.

- ``linear(x, weight, bias)``: ``x @ weight.T + bias`` as one ``torch.addmm`` (2-D ``x``, a bias);
- ``log_softmax(z)``: ``log_softmax`` over axis 1 of a ``(rows, C)`` matrix in one kernel (the
  array-API form takes six: max, subtract, exp, sum, log, subtract);
- ``index_cross_entropy(z, target, mean)``: cross-entropy of class-index targets and its gradient
  with ``gather``/``scatter_add_`` on the picked classes, the range of the targets read back in one
  ``aminmax`` (the array-API form builds and reduces a one-hot mask: 13 ops against 8).

Found through :func:`portable_nn.backends.fast_paths.array_ops` by the callers in
:mod:`portable_nn.functional` and :mod:`portable_nn.losses`; the generic array-API code stays the
reference (tests/backends/test_fast_ops.py compares them) and runs on every other backend. Results agree
with it within float rounding (the kernels sum in another order).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CONCRETE", "index_cross_entropy", "linear", "log_softmax", "sum_rows"]

Tensor = Any

#: tensors may hold no values (inside ``torch.compile`` or a ``torch.func`` transform): callers ask first
CONCRETE = False

#: the generic ``sum(g, axis=0)`` (one kernel already)
sum_rows = None


def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x @ weight.T + bias`` for ``x`` (rows, in), ``weight`` (out, in), ``bias`` (out,) -> (rows, out)."""
    return torch.addmm(bias, x, weight.T)


def log_softmax(z: Tensor) -> Tensor:
    """``log(softmax(z))`` over axis 1 of ``z`` (rows, C), computed stably (max subtracted) -> (rows, C)."""
    return torch.log_softmax(z, dim=1)


def index_cross_entropy(z: Tensor, target: Tensor, mean: bool) -> tuple[Tensor, Tensor] | None:
    """``(loss, dloss/dz)`` of cross-entropy for ``z`` (rows, C), rows > 0, and class indices ``target`` (rows,).

    The loss sums ``-log_softmax(z)[i, target[i]]`` over the rows (``mean``: divided by the row
    count, and so is the gradient ``softmax(z) - onehot(target)``). None when a target lies outside
    ``[0, C)`` (an ``ignore_index`` entry, or an error): the caller's generic code handles that
    case, with its masking and its typed errors. ``z`` and ``target`` are not written to.
    """
    low, high = torch.aminmax(target)
    if int(low) < 0 or int(high) >= z.shape[1]:
        return None
    rows = z.shape[0]
    index = target.unsqueeze(1) if target.dtype == torch.int64 else target.unsqueeze(1).long()
    log_probs = torch.log_softmax(z, dim=1)
    total = log_probs.gather(1, index).sum().neg_()
    grad = log_probs.exp_()  # the fresh log-probabilities become the probabilities
    grad.scatter_add_(1, index, z.new_full((rows, 1), -1.0))
    if mean:
        grad *= 1 / rows
        total /= rows
    return total, grad
