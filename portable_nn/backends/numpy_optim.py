"""NumPy's SGD step: every parameter of a group in one loop, the generic rule's operations exactly.

:class:`portable_nn.optim.SGD`'s generic step calls its per-parameter rule once per parameter; on
NumPy, whose small-array operations take about a microsecond, those calls are a large part of a
step of a small model. This loop performs the same NumPy operations in the same order, so its
results equal the generic path's bit for bit (tests/backends/test_numpy_optim.py compares them, and
``foreach=False`` runs the generic path). With ``inplace=True`` (inside :func:`portable_nn.train_step`:
buffers the optimizer alone holds) the momentum buffers are updated in place; parameters and
gradients are never written to: every new parameter is a fresh array, rebound by the optimizer.

Called by :meth:`portable_nn.optim.Optimizer.step_with` through NumPy's ``"optimizers"`` fast-path hook
(:func:`portable_nn.backends.fast_paths.optimizer_fast_path`), with the signature of the torch
multi-tensor updates (:mod:`portable_nn.backends.torch_foreach`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["OPTIMIZERS", "sgd"]


def sgd(
    optimizer: Any,
    members: tuple[str, ...],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    buffers: Mapping[str, Mapping[str, np.ndarray]],
    step: int,
    hyper: Mapping[str, Any],
    new_params: dict[str, np.ndarray],
    new_state: dict[str, dict[str, np.ndarray]],
    *,
    inplace: bool = False,
) -> None:
    """``torch.optim.SGD``'s rule on the group ``members`` (see :class:`portable_nn.optim.SGD`) at Python int ``step``.

    Writes each member's new parameter into ``new_params`` and its buffers into ``new_state``.
    """
    momentum, dampening, decay, lr = hyper["momentum"], hyper["dampening"], hyper["weight_decay"], hyper["lr"]
    maximize, nesterov, undamped = hyper["maximize"], hyper["nesterov"], 1 - dampening
    if inplace and step > 1 and momentum != 0 and dampening == 0 and decay == 0 and not (maximize or nesterov):
        # train_step's common case: the loop below for these settings, each private buffer already there
        for name in members:  # (a loop, not all(): no generator frame)
            if "momentum_buffer" not in buffers[name]:
                break
        else:
            _momentum_inplace(members, params, grads, buffers, momentum, -lr, new_params, new_state)
            return
    for name in members:
        p, g = params[name], grads[name]
        if maximize:  # the gradient prologue (portable_nn.optim.base.gradient_prologue)
            g = -g
        if decay != 0:
            g = g + decay * p
        state = buffers[name]
        if momentum != 0:
            previous = state["momentum_buffer"] if "momentum_buffer" in state else None  # noqa: SIM401 (no call)
            if step == 1 or previous is None:  # torch starts from the gradient itself
                buf = g
            elif inplace:  # the optimizer's private buffer
                buf = previous
                buf *= momentum
                buf += g if dampening == 0 else undamped * g
            else:
                buf = momentum * previous + (g if dampening == 0 else undamped * g)
            state = {"momentum_buffer": buf}
            g = g + momentum * buf if nesterov else buf
        else:
            state = dict(state)
        new = g * -lr  # == -(lr * g) exactly, a fresh array: p - lr * g with one temporary
        new += p
        if p.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays: keep arrays
            new = np.asarray(new)
            state = {key: np.asarray(value) for key, value in state.items()}
        new_params[name], new_state[name] = new, state


def _momentum_inplace(
    members: tuple[str, ...],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    buffers: Mapping[str, Mapping[str, np.ndarray]],
    momentum: Any,
    minus_lr: Any,
    new_params: dict[str, np.ndarray],
    new_state: dict[str, Any],
) -> None:
    """:func:`sgd`'s operations for plain momentum on private buffers that exist: ``buf = momentum * buf + g``
    in place, ``p + buf * -lr`` fresh; each member's buffer dict is kept (it holds the same, updated, array)."""
    for name in members:
        state = buffers[name]
        buf = state["momentum_buffer"]
        buf *= momentum
        buf += grads[name]
        p = params[name]
        new = buf * minus_lr
        new += p
        new_params[name] = new if p.ndim else np.asarray(new)  # 0-d: NumPy returns scalars, keep arrays
        new_state[name] = state


#: The fused updates by optimizer (``Optimizer._FAST_PATH``); the others run the generic rule.
OPTIMIZERS = {"sgd": sgd}
