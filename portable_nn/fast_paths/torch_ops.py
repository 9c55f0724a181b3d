"""Fused torch primitives for the eager hot path: one kernel where the array-API form takes several.

- ``linear(x, weight, bias)``: ``x @ weight.T + bias`` as one ``torch.addmm`` (2-D ``x``, a bias);
- ``log_softmax(z)``: ``log_softmax`` over axis 1 of a ``(rows, C)`` matrix in one kernel (the
  array-API form takes six: max, subtract, exp, sum, log, subtract).

Found through :func:`portable_nn.fast_paths.array_ops` by the callers in
:mod:`portable_nn.functional` and :mod:`portable_nn.losses`; the generic array-API code stays the
reference (tests/test_fast_ops.py compares them) and runs on every other backend. Results agree
with it within float rounding (the kernels sum in another order).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["linear", "log_softmax"]

Tensor = Any


def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x @ weight.T + bias`` for ``x`` (rows, in), ``weight`` (out, in), ``bias`` (out,) -> (rows, out)."""
    return torch.addmm(bias, x, weight.T)


def log_softmax(z: Tensor) -> Tensor:
    """``log(softmax(z))`` over axis 1 of ``z`` (rows, C), computed stably (max subtracted) -> (rows, C)."""
    return torch.log_softmax(z, dim=1)
