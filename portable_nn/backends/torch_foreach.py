"""Multi-tensor (``torch._foreach_*``) updates for SGD, Adam/AdamW, RMSprop, Adagrad on torch: a call per group and op.

Called by :meth:`portable_nn.optim.Optimizer.step` with the group's member names, the module's
parameters and gradients and the optimizer's buffers; writes the new parameters and buffers
into ``new_params``/``new_state``. Every result is a fresh tensor: the first op of a chain is
out of place (``_foreach_mul``, ``_foreach_add``...) and only those fresh tensors are updated in
place afterwards, so parameters, gradients and buffers a user may hold are never written to.
The numbers are the generic path's within rounding (fused multiply-adds). With ``inplace=True``
(inside :func:`portable_nn.train_step`, buffers the optimizer alone holds) the buffers are
updated in place instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["OPTIMIZERS", "adagrad", "adam", "rmsprop", "sgd"]

Tensor = Any
Tensors = list[Any] | tuple[Any, ...]


def sgd(
    optimizer: Any,
    members: tuple[str, ...],
    params: Mapping[str, Tensor],
    grads: Mapping[str, Tensor],
    buffers: Mapping[str, Mapping[str, Tensor]],
    step: int,
    hyper: Mapping[str, Any],
    new_params: dict[str, Tensor],
    new_state: dict[str, dict[str, Tensor]],
    *,
    inplace: bool = False,
) -> None:
    """``torch.optim.SGD``'s rule on the group ``members`` (see :class:`portable_nn.optim.SGD`)."""
    if not members:
        return
    ps, gs = _gradients(members, params, grads, hyper)
    momentum, dampening, lr = hyper["momentum"], hyper["dampening"], hyper["lr"]
    if momentum != 0:
        bufs: Tensors
        if step == 1 or "momentum_buffer" not in buffers[members[0]]:  # first step, or momentum was 0 until now
            bufs = list(gs)  # held, never written to: the next step starts out of place
        else:
            bufs = [buffers[n]["momentum_buffer"] for n in members]
            if dampening == 0:  # g + momentum * buf: one fused call (two in place cost more on the CPU)
                bufs = torch._foreach_add(gs, bufs, alpha=momentum)
            else:
                if inplace:  # the optimizer's private buffers
                    torch._foreach_mul_(bufs, momentum)
                else:
                    bufs = torch._foreach_mul(bufs, momentum)
                torch._foreach_add_(bufs, gs, alpha=1 - dampening)
        for name, buf in zip(members, bufs, strict=True):
            new_state[name] = {"momentum_buffer": buf}
        gs = torch._foreach_add(gs, bufs, alpha=momentum) if hyper["nesterov"] else bufs
    else:
        for name in members:
            new_state[name] = {}
    for name, p in zip(members, torch._foreach_add(ps, gs, alpha=-lr), strict=True):
        new_params[name] = p


def adam(
    optimizer: Any,
    members: tuple[str, ...],
    params: Mapping[str, Tensor],
    grads: Mapping[str, Tensor],
    buffers: Mapping[str, Mapping[str, Tensor]],
    step: int,
    hyper: Mapping[str, Any],
    new_params: dict[str, Tensor],
    new_state: dict[str, dict[str, Tensor]],
    *,
    inplace: bool = False,
) -> None:
    """``torch.optim.Adam``/``AdamW``'s rule on the group ``members`` (see :class:`portable_nn.optim.Adam`)."""
    if not members:
        return
    ps: Tensors = [params[n] for n in members]
    gs: Tensors = [grads[n] for n in members]
    lr, (beta1, beta2), eps, decay = hyper["lr"], hyper["betas"], hyper["eps"], hyper["weight_decay"]
    if hyper["maximize"]:
        gs = torch._foreach_neg(gs)
    if decay != 0:
        if hyper["decoupled"]:
            ps = torch._foreach_mul(ps, 1 - lr * decay)
        else:
            gs = torch._foreach_add(gs, ps, alpha=decay)
    ms: Tensors = [buffers[n]["exp_avg"] for n in members]
    vs: Tensors = [buffers[n]["exp_avg_sq"] for n in members]
    if inplace:  # the optimizer's private buffers
        torch._foreach_mul_(ms, beta1)
        torch._foreach_mul_(vs, beta2)
    else:
        ms, vs = torch._foreach_mul(ms, beta1), torch._foreach_mul(vs, beta2)
    torch._foreach_add_(ms, gs, alpha=1 - beta1)
    torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
    used: Tensors = vs
    if hyper["amsgrad"]:
        used = torch._foreach_maximum([buffers[n]["max_exp_avg_sq"] for n in members], vs)
    step_size = lr / (1 - beta1**step)
    denom = torch._foreach_sqrt(used)
    torch._foreach_div_(denom, math.sqrt(1 - beta2**step))
    torch._foreach_add_(denom, eps)
    updated = torch._foreach_addcdiv(ps, ms, denom, value=-step_size)
    for index, name in enumerate(members):
        new_params[name] = updated[index]
        new_state[name] = {"exp_avg": ms[index], "exp_avg_sq": vs[index]}
        if hyper["amsgrad"]:
            new_state[name]["max_exp_avg_sq"] = used[index]


def rmsprop(
    optimizer: Any,
    members: tuple[str, ...],
    params: Mapping[str, Tensor],
    grads: Mapping[str, Tensor],
    buffers: Mapping[str, Mapping[str, Tensor]],
    step: int,
    hyper: Mapping[str, Any],
    new_params: dict[str, Tensor],
    new_state: dict[str, dict[str, Tensor]],
    *,
    inplace: bool = False,
) -> None:
    """``torch.optim.RMSprop``'s rule on the group ``members`` (see :class:`portable_nn.optim.RMSprop`)."""
    if not members:
        return
    ps, gs = _gradients(members, params, grads, hyper)
    lr, alpha, eps, momentum, centered = hyper["lr"], hyper["alpha"], hyper["eps"], hyper["momentum"], hyper["centered"]
    squares = _scaled([buffers[n]["square_avg"] for n in members], alpha, inplace)
    torch._foreach_addcmul_(squares, gs, gs, value=1 - alpha)
    states: list[dict[str, Tensor]] = [{"square_avg": square} for square in squares]
    if centered:
        means = _scaled([buffers[n]["grad_avg"] for n in members], alpha, inplace)
        torch._foreach_add_(means, gs, alpha=1 - alpha)
        denom = torch._foreach_addcmul(squares, means, means, value=-1)
        torch._foreach_sqrt_(denom)
        for state, mean in zip(states, means, strict=True):
            state["grad_avg"] = mean
    else:
        denom = torch._foreach_sqrt(squares)
    torch._foreach_add_(denom, eps)
    if momentum > 0:
        bufs = _scaled([buffers[n]["momentum_buffer"] for n in members], momentum, inplace)
        torch._foreach_addcdiv_(bufs, gs, denom)
        updated = torch._foreach_add(ps, bufs, alpha=-lr)
        for state, buf in zip(states, bufs, strict=True):
            state["momentum_buffer"] = buf
    else:
        updated = torch._foreach_addcdiv(ps, gs, denom, value=-lr)
    for name, p, state in zip(members, updated, states, strict=True):
        new_params[name], new_state[name] = p, state


def adagrad(
    optimizer: Any,
    members: tuple[str, ...],
    params: Mapping[str, Tensor],
    grads: Mapping[str, Tensor],
    buffers: Mapping[str, Mapping[str, Tensor]],
    step: int,
    hyper: Mapping[str, Any],
    new_params: dict[str, Tensor],
    new_state: dict[str, dict[str, Tensor]],
    *,
    inplace: bool = False,
) -> None:
    """``torch.optim.Adagrad``'s rule on the group ``members`` (see :class:`portable_nn.optim.Adagrad`)."""
    if not members:
        return
    ps, gs = _gradients(members, params, grads, hyper)
    lr = hyper["lr"] / (1 + (step - 1) * hyper["lr_decay"])
    sums: Tensors = [buffers[n]["sum"] for n in members]
    if inplace:  # the optimizer's private buffers
        torch._foreach_addcmul_(sums, gs, gs)
    else:
        sums = torch._foreach_addcmul(sums, gs, gs)
    std = torch._foreach_sqrt(sums)
    torch._foreach_add_(std, hyper["eps"])
    updated = torch._foreach_addcdiv(ps, gs, std, value=-lr)
    for name, p, total in zip(members, updated, sums, strict=True):
        new_params[name], new_state[name] = p, {"sum": total}


def _gradients(
    members: tuple[str, ...], params: Mapping[str, Tensor], grads: Mapping[str, Tensor], hyper: Mapping[str, Any]
) -> tuple[Tensors, Tensors]:
    """``(parameters, gradients)`` of ``members``, the gradients negated (maximize) and with L2 decay added.

    Either adjustment makes fresh tensors: the gradients the module holds are never written to.
    """
    ps: Tensors = [params[n] for n in members]
    gs: Tensors = [grads[n] for n in members]
    if hyper["maximize"]:
        gs = torch._foreach_neg(gs)
    if hyper["weight_decay"] != 0:
        gs = torch._foreach_add(gs, ps, alpha=hyper["weight_decay"])
    return ps, gs


def _scaled(buffers: Tensors, factor: float, inplace: bool) -> Tensors:
    """``factor * buffer`` for each buffer: in place on the optimizer's private buffers, else fresh tensors."""
    if inplace:
        torch._foreach_mul_(buffers, factor)
        return buffers
    return torch._foreach_mul(buffers, factor)


OPTIMIZERS: dict[str, Any] = {"sgd": sgd, "adam": adam, "rmsprop": rmsprop, "adagrad": adagrad}
