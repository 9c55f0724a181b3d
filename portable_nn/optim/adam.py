"""``Adam`` and ``AdamW``: adaptive moment estimation, with L2 or decoupled weight decay, AMSGrad, maximize."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from .._checks import check_lr, check_real
from ..errors import ArgumentError, ArgumentTypeError
from ..nn.module import Module
from ..typing import Array
from .base import Optimizer, Step, bias_correction, flag, gradient_prologue

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam with ``torch.optim.Adam``'s signature and update rule; ``decoupled=True`` is AdamW.

    Per parameter ``p`` with gradient ``g`` at step ``t`` = 1, 2, ...::

        g = -g                                        (if maximize)
        p = p * (1 - lr * weight_decay)     if decoupled,   else   g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g               (m, v, v_max start at 0)
        v = beta2 * v + (1 - beta2) * g²
        v_max = max(v_max, v)                         (if amsgrad; used instead of v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Parameters
    ----------
    module : Module
        The model to optimize.
    lr, eps, weight_decay : float or 0-d array
        All >= 0.
    betas : pair of float or 0-d array
        Each in [0, 1).
    amsgrad, maximize, decoupled : bool
        AMSGrad's running maximum; ascend; decoupled (AdamW) weight decay.
    param_groups, foreach
        As in :class:`~portable_nn.optim.SGD`.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.Adam(pnn.Linear(2, 1, seed=0), 1e-3, (0.9, 0.99), amsgrad=True)
    >>> opt.param_groups[0]["betas"], opt.param_groups[0]["amsgrad"]
    ((0.9, 0.99), True)
    """

    _LEGACY: ClassVar[dict[str, Any]] = {"amsgrad": False, "maximize": False}
    _FAST_PATH: ClassVar[str | None] = "adam"

    def __init__(
        self,
        module: Module,
        lr: Any = 1e-3,
        betas: tuple[Any, Any] = (0.9, 0.999),
        eps: Any = 1e-8,
        weight_decay: Any = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled: bool = False,
        param_groups: Any = None,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            module,
            param_groups=param_groups,
            foreach=foreach,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled=decoupled,
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        betas = hyper["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgumentTypeError(f"betas must be a pair (beta1, beta2), got {type(betas).__name__}")
        return {
            "lr": check_lr(hyper["lr"]),
            "betas": (
                check_real("betas[0]", betas[0], low=0.0, high=1.0, high_open=True),
                check_real("betas[1]", betas[1], low=0.0, high=1.0, high_open=True),
            ),
            "eps": check_real("eps", hyper["eps"], low=0.0),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "amsgrad": flag("amsgrad", hyper["amsgrad"]),
            "maximize": flag("maximize", hyper["maximize"]),
            "decoupled": flag("decoupled", hyper["decoupled"]),
        }

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if hyper["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _update_one(
        self,
        xp: Any,
        p: Array,
        g: Array,
        buffers: dict[str, Array],
        step: Step,
        lr: Any,
        hyper: dict[str, Any],
        *,
        inplace: bool = False,
        values: Mapping[str, Any] | None = None,
    ) -> tuple[Array, dict[str, Array]]:
        if values is None:
            (beta1, beta2), eps, decay = hyper["betas"], hyper["eps"], hyper["weight_decay"]
            kept1, kept2, shrink = 1 - beta1, 1 - beta2, 1 - lr * decay
            step_size = lr / bias_correction(xp, beta1, step, p)
            correction2 = bias_correction(xp, beta2, step, p)
            correction2_sqrt = math.sqrt(correction2) if isinstance(correction2, float) else xp.sqrt(correction2)
        else:  # step_scalars: every derived number computed on the host in float64, as the eager loop does
            beta1, beta2, eps, decay = values["beta1"], values["beta2"], values["eps"], values["weight_decay"]
            kept1, kept2, shrink = values["one_minus_beta1"], values["one_minus_beta2"], values["decoupled_shrink"]
            step_size, correction2_sqrt = values["step_size"], values["bias_correction2_sqrt"]
        g = gradient_prologue(g, p, hyper, decay)  # L2 decay unless decoupled
        if hyper["decoupled"] and hyper["weight_decay"] != 0:
            p = p * shrink
        if inplace:  # the optimizer's private buffers (JAX/Dask rebind): the same numbers, no copies
            m, v = buffers["exp_avg"], buffers["exp_avg_sq"]
            m *= beta1
            m += kept1 * g
            v *= beta2
            v += kept2 * (g * g)
        else:
            m = beta1 * buffers["exp_avg"] + kept1 * g
            v = beta2 * buffers["exp_avg_sq"] + kept2 * (g * g)
        new = {"exp_avg": m, "exp_avg_sq": v}
        if hyper["amsgrad"]:
            v = new["max_exp_avg_sq"] = xp.maximum(buffers["max_exp_avg_sq"], v)
        denom = xp.sqrt(v)  # fresh: the rest of the formula is computed in it
        denom /= correction2_sqrt
        denom += eps
        update = m / denom
        update *= -step_size  # p - step_size * (m / denom), exactly: p + (-(step_size * u))
        update += p
        return update, new

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        (beta1, beta2), lr = hyper["betas"], float(hyper["lr"])
        return {
            "lr": lr,
            "beta1": float(beta1),
            "beta2": float(beta2),
            "eps": float(hyper["eps"]),
            "weight_decay": float(hyper["weight_decay"]),
            "one_minus_beta1": 1 - beta1,
            "one_minus_beta2": 1 - beta2,
            "decoupled_shrink": 1 - lr * hyper["weight_decay"],
            "step_size": lr / (1 - beta1**count),
            "bias_correction2_sqrt": math.sqrt(1 - beta2**count),
        }


class AdamW(Adam):
    """Adam with decoupled weight decay: ``torch.optim.AdamW``'s signature (default ``weight_decay=1e-2``).

    :class:`Adam` with ``decoupled=True``: each step first shrinks ``p`` by ``1 - lr * weight_decay``.

    Parameters
    ----------
    module : Module
        The model to optimize.
    lr, eps, weight_decay : float or 0-d array
        All >= 0.
    betas : pair of float or 0-d array
        Each in [0, 1).
    amsgrad, maximize : bool
        AMSGrad's running maximum; ascend instead of descend.
    param_groups : list of dict, optional
        Per-group overrides, see ``portable_nn.optim.groups``.
    foreach : bool or None
        The multi-tensor update (torch only; None: where available).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.AdamW(pnn.Linear(2, 1, seed=0), lr=1e-3)
    >>> opt.param_groups[0]["weight_decay"], opt.param_groups[0]["decoupled"]
    (0.01, True)
    """

    def __init__(
        self,
        module: Module,
        lr: Any = 1e-3,
        betas: tuple[Any, Any] = (0.9, 0.999),
        eps: Any = 1e-8,
        weight_decay: Any = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        param_groups: Any = None,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            module,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled=True,
            param_groups=param_groups,
            foreach=foreach,
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._validate(hyper)
        if not checked["decoupled"]:
            raise ArgumentError("AdamW always decouples weight decay (decoupled=True)")
        return checked
