"""NumPy's row scatter-add for :func:`portable_nn.nn.scatter.index_add`: ``np.add.at`` (unbuffered, repeats summed)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["index_add"]


def index_add(index: Any, values: Any, num_rows: int) -> Any:
    """``index`` (n,), ``values`` (n, m) -> (num_rows, m): each ``values[j]`` summed into row ``index[j]``."""
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    np.add.at(out, index, values)
    return out
