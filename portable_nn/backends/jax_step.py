"""``jax.jit`` for :func:`portable_nn.train_step`: compiles the pure step of params, optimizer state and batch.

``check_step`` traces a function abstractly (``jax.eval_shape``): train_step's validation of a new
input signature runs the untrusted loss-and-gradient that way, so its checks cost one Python
trace instead of ~40 compilations of tiny eager ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["check_step", "compile_step", "signature"]


def compile_step(pure_step: Callable[..., Any], donate: bool) -> Callable[..., Any]:
    """``jax.jit(pure_step)`` behind a wrapper that puts the step's numbers on the device; with ``donate`` the
    buffers (second argument) are donated.

    ``pure_step(params, buffers, scalars, *rest) -> (loss, new_params, new_buffers, ...)`` where
    ``scalars`` is a 1-d array of the parameters' dtype (traced: a changed number compiles
    nothing) and ``rest`` the model's buffers, the random key and the batch. The returned
    ``run(params, buffers, numbers, *rest)`` takes ``numbers`` as a tuple
    of Python floats and puts them on the parameters' device in one transfer (only when they
    changed since its last call). Only the optimizer's private buffers are ever donated, never
    parameters (a user may hold them through ``state_dict()``): XLA may then reuse the buffers'
    memory for the new ones. ``run`` may be shared by the steps of several models of one structure
    (:mod:`portable_nn.training.program_cache`): it keeps no state of theirs.
    """
    jitted = jax.jit(pure_step, donate_argnums=(1,) if donate else ())
    last: list[Any] = [None]  # (numbers, their device array), rebound as one pair: steps of several threads share it

    def run(params: Any, buffers: Any, numbers: tuple[float, ...], *rest: Any) -> Any:
        held = last[0]
        if held is None or held[0] != numbers:
            like = next(iter(params.values()))
            held = last[0] = (numbers, jax.device_put(np.asarray(numbers, dtype=like.dtype), like.sharding))
        return jitted(params, buffers, held[1], *rest)

    return run


def check_step(probe: Callable[..., Any], *args: Any) -> Any:
    """``jax.eval_shape(probe, *args)``: runs ``probe``'s Python with abstract arrays, compiles and executes nothing.

    Exceptions ``probe`` raises come out unchanged (class and message).
    """
    return jax.eval_shape(probe, *args)


def signature(x: Any, y: Any) -> tuple[Any, ...]:
    """The input signature of a step (what a new validation and a new program depend on) of JAX arrays ``x``, ``y``.

    Types, shapes, dtypes and shardings (which name the devices): attribute reads only, unlike
    ``Array.device``, which builds the set of the sharding's devices. Anything but a JAX array
    raises AttributeError (the caller then takes the generic signature).
    """
    return (type(x), x.shape, x.dtype, x.sharding, type(y), y.shape, y.dtype, y.sharding)
