"""JAX's row scatter-add for :func:`portable_nn.scatter.index_add`: ``jax.ops.segment_sum`` (traceable).

Out-of-range indices (only possible when traced: concrete ones are checked first) add nowhere.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["index_add"]


def index_add(index: Any, values: Any, num_rows: int) -> Any:
    """``index`` (n,) in ``[0, num_rows)``, ``values`` (n, m) -> zeros (num_rows, m) with ``values[j]`` added at ``index[j]``."""
    return jax.ops.segment_sum(values, index, num_segments=num_rows)
