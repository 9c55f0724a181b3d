"""PyTorch's row scatter-add for :func:`portable_nn.nn.scatter.index_add`: ``Tensor.index_add_`` on fresh zeros."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["index_add"]


def index_add(index: Any, values: Any, num_rows: int) -> Any:
    """``index`` (n,), ``values`` (n, m) -> (num_rows, m): each ``values[j]`` summed into row ``index[j]``."""
    if index.dtype not in (torch.int64, torch.int32):
        index = index.long()
    out = torch.zeros((num_rows, values.shape[1]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)
