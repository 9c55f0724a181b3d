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

__all__ = ["check_step", "compile_step", "put_numbers", "signature"]


def compile_step(pure_step: Callable[..., Any], donate: bool) -> Callable[..., Any]:
    """``jax.jit(pure_step)``; with ``donate`` the buffers (second argument) are donated.

    ``pure_step(params, buffers, scalars, *rest) -> (loss, new_params, new_buffers, ...)`` where
    ``scalars`` is a 1-d array of the parameters' dtype on their device (:func:`put_numbers`; traced:
    a changed number compiles nothing) and ``rest`` the model's buffers, the random key and the
    batch. Called directly on every step (no Python wrapper). Only the optimizer's private buffers
    are ever donated, never parameters (a user may hold them through ``state_dict()``): XLA may then
    reuse the buffers' memory for the new ones. The program may be shared by the steps of several
    models of one structure (:mod:`portable_nn.training.program_cache`): it keeps no state of theirs.
    """
    return jax.jit(pure_step, donate_argnums=(1,) if donate else ())


def put_numbers(numbers: tuple[float, ...], like: Any) -> Any:
    """The step's numbers (Python floats) as one 1-d array of ``like``'s dtype on its device, in one transfer."""
    return jax.device_put(np.asarray(numbers, dtype=like.dtype), like.sharding)


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
