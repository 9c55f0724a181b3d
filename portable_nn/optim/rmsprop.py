"""``RMSprop``: gradients scaled by a running RMS, optionally centered, with momentum, L2 weight decay, maximize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._checks import check_lr, check_real
from ..nn.module import Module
from ..typing import Array
from .base import Optimizer, Step, flag, gradient_prologue

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop with ``torch.optim.RMSprop``'s signature and update rule.

    Per parameter ``p`` with gradient ``g``::

        g = -g                                              (if maximize)
        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g²                    (s, a, buf start at 0)
        a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a²) + eps    (centered)   else   d = sqrt(s) + eps
        buf = momentum * buf + g / d;  p = p - lr * buf     (momentum > 0)   else   p = p - lr * g / d

    Parameters
    ----------
    module : Module
        The model to optimize.
    lr, alpha, eps, weight_decay, momentum : float or 0-d array
        ``lr, eps, weight_decay, momentum >= 0``, ``0 <= alpha <= 1``.
    centered, maximize : bool
        Normalize by the gradient's estimated variance; ascend.
    param_groups, foreach
        As in :class:`~portable_nn.optim.SGD` (the multi-tensor path: torch only).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.RMSprop(pnn.Linear(2, 1, seed=0), momentum=0.5, centered=True)
    >>> opt.lr, opt.hyperparameters["alpha"]
    (0.01, 0.99)
    """

    _LEGACY: ClassVar[dict[str, Any]] = {}
    _FAST_PATH: ClassVar[str | None] = "rmsprop"

    def __init__(
        self,
        module: Module,
        lr: Any = 1e-2,
        alpha: Any = 0.99,
        eps: Any = 1e-8,
        weight_decay: Any = 0.0,
        momentum: Any = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        param_groups: Any = None,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            module,
            param_groups=param_groups,
            foreach=foreach,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"]),
            "alpha": check_real("alpha", hyper["alpha"], low=0.0, high=1.0),
            "eps": check_real("eps", hyper["eps"], low=0.0),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "momentum": check_real("momentum", hyper["momentum"], low=0.0),
            "centered": flag("centered", hyper["centered"]),
            "maximize": flag("maximize", hyper["maximize"]),
        }

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        return {**super()._scalars(hyper, count), "one_minus_alpha": 1.0 - hyper["alpha"]}

    _SCALARS_CONSTANT_FROM: ClassVar[tuple[Any, int]] = (_scalars, 1)  # nothing depends on the step count

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        names: tuple[str, ...] = ("square_avg",)
        if hyper["momentum"] > 0:
            names += ("momentum_buffer",)
        if hyper["centered"]:
            names += ("grad_avg",)
        return names

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
        numbers = hyper if values is None else values
        alpha, eps, decay, momentum = numbers["alpha"], numbers["eps"], numbers["weight_decay"], numbers["momentum"]
        kept = 1 - alpha if values is None else values["one_minus_alpha"]  # float64 on the host, as eagerly
        g = gradient_prologue(g, p, hyper, decay)
        if inplace:  # the optimizer's private buffer (JAX/Dask rebind): the same numbers, no copy
            square_avg = buffers["square_avg"]
            square_avg *= alpha
            square_avg += kept * (g * g)
        else:
            square_avg = alpha * buffers["square_avg"] + kept * (g * g)
        new = {"square_avg": square_avg}
        if hyper["centered"]:
            grad_avg = new["grad_avg"] = alpha * buffers["grad_avg"] + kept * g
            denom = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            denom = xp.sqrt(square_avg) + eps
        if hyper["momentum"] > 0:
            buf = new["momentum_buffer"] = momentum * buffers["momentum_buffer"] + g / denom
            return p - lr * buf, new
        return p - lr * (g / denom), new
