"""``jax.jit`` of a pure evaluation function: one compiled program instead of a string of eager ops.

Every eager JAX operation on a new shape is an XLA compilation of its own (~10-100 ms each on a
CPU); an evaluation of a model and a loss is a dozen or two of them. Compiled as one function it is
one compilation, reused while the argument shapes stay the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["compile_eval"]


def compile_eval(pure_fn: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(pure_fn)``: nothing donated (the parameters and inputs stay the caller's).

    ``pure_fn`` takes and returns arrays (and dicts/tuples of arrays) and reads no values: its
    Python code runs once per argument signature, while JAX traces it.
    """
    return jax.jit(pure_fn)
