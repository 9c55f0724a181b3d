"""JAX's row scatter-add for :func:`portable_nn.nn.scatter.index_add`: ``.at[index].add`` on zeros (traceable).

The zeros come from ``jnp.zeros_like(values, shape=...)``, so the result stays on ``values``' device
even for an empty batch (``jax.ops.segment_sum`` of empty inputs lands on the default device).
Out-of-range indices (only possible when traced: concrete ones are checked first) add nowhere.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

__all__ = ["index_add"]


def index_add(index: Any, values: Any, num_rows: int) -> Any:
    """``index`` (n,), ``values`` (n, m) -> (num_rows, m): each ``values[j]`` summed into row ``index[j]``."""
    return jnp.zeros_like(values, shape=(num_rows, values.shape[1])).at[index].add(values, mode="drop")
