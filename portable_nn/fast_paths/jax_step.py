"""``jax.jit`` for :func:`portable_nn.train_step`: compiles the pure step of params, optimizer state and batch.

``check_step`` traces a function abstractly (``jax.eval_shape``): train_step's validation of a new
input signature runs the untrusted loss-and-gradient that way, so its checks cost one Python
trace instead of ~40 compilations of tiny eager ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["check_step", "compile_step"]


def compile_step(pure_step: Callable[..., Any], donate: bool) -> Callable[..., Any]:
    """``jax.jit(pure_step)``; with ``donate`` its second argument (the optimizer's buffers) is donated.

    ``pure_step(params, buffers, step, lrs, x, y) -> (loss, new_params, new_buffers)``. Only the
    optimizer's private buffers are ever donated, never parameters (a user may hold them through
    ``state_dict()``): XLA may then reuse the buffers' memory for the new ones.
    """
    return jax.jit(pure_step, donate_argnums=(1,) if donate else ())


def check_step(probe: Callable[..., Any], *args: Any) -> Any:
    """``jax.eval_shape(probe, *args)``: runs ``probe``'s Python with abstract arrays, compiles and executes nothing.

    Exceptions ``probe`` raises come out unchanged (class and message).
    """
    return jax.eval_shape(probe, *args)
