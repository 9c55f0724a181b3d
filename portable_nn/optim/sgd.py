"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov momentum, L2 weight decay, maximize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._checks import check_lr, check_real
from ..errors import ArgumentError
from ..nn.module import Module
from ..typing import Array
from .base import Optimizer, Step, flag, gradient_prologue

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, with ``torch.optim.SGD``'s signature and update rule.

    Per parameter ``p`` with gradient ``g`` at step ``t`` = 1, 2, ...::

        g = -g                                   (if maximize)
        g = g + weight_decay * p
        buf = g (t = 1) | momentum * buf + (1 - dampening) * g      (if momentum > 0)
        g = g + momentum * buf (nesterov) | buf
        p = p - lr * g

    Parameters
    ----------
    module : Module
        The model whose parameters (``module.named_parameters()``) are optimized.
    lr, momentum, dampening, weight_decay : float or 0-d array
        ``lr >= 0``, ``momentum >= 0``, ``0 <= dampening <= 1``, ``weight_decay >= 0``.
    nesterov, maximize : bool
        Nesterov momentum (needs ``momentum > 0``, ``dampening = 0``); ascend instead of descend.
    param_groups : list of dict, optional
        Per-group overrides, see ``portable_nn.optim.groups``.
    foreach : bool or None
        The backend's update of a whole group at once (torch: multi-tensor ``_foreach_*`` for every
        optimizer; NumPy: SGD's); None: where available, False: the generic per-parameter rule, True: an
        ``ArgumentError`` at the first step where there is none.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.Tanh(), pnn.Linear(3, 1, seed=1))
    >>> opt = pnn.SGD(model, 0.1, 0.9, param_groups=[{"params": lambda n: n.endswith("bias"), "weight_decay": 0}])
    >>> [group["params"] for group in opt.param_groups]
    [['0.weight', '2.weight'], ['0.bias', '2.bias']]
    """

    _LEGACY: ClassVar[dict[str, Any]] = {"maximize": False}
    _FAST_PATH: ClassVar[str | None] = "sgd"

    def __init__(
        self,
        module: Module,
        lr: Any = 1e-3,
        momentum: Any = 0.0,
        dampening: Any = 0.0,
        weight_decay: Any = 0.0,
        nesterov: bool = False,
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
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        checked = {
            "lr": check_lr(hyper["lr"]),
            "momentum": check_real("momentum", hyper["momentum"], low=0.0),
            "dampening": check_real("dampening", hyper["dampening"], low=0.0, high=1.0),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "nesterov": flag("nesterov", hyper["nesterov"]),
            "maximize": flag("maximize", hyper["maximize"]),
        }
        if checked["nesterov"] and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ArgumentError("nesterov momentum needs momentum > 0 and dampening = 0")
        return checked

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hyper["momentum"] != 0 else ()

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
        momentum, decay = numbers["momentum"], numbers["weight_decay"]
        # 1 - dampening computed in float64 (on the host, for compiled steps): the eager loop's rounding
        undamped = 1 - hyper["dampening"] if values is None else values["undamped"]
        g = gradient_prologue(g, p, hyper, decay)
        if hyper["momentum"] != 0:
            # None: momentum was 0 until now (torch then starts from g); `in` rather than .get(): no call per step
            previous = buffers["momentum_buffer"] if "momentum_buffer" in buffers else None  # noqa: SIM401
            scaled = g if hyper["dampening"] == 0 else undamped * g
            if values is not None:  # step_scalars: undamped is 1 at step 1, where the buffer holds zeros
                buf = g if previous is None else momentum * previous + scaled
            elif type(step) is int:  # the stateful step: a Python int (type(), not isinstance: no call per step)
                if step == 1 or previous is None:
                    buf = g
                elif inplace:  # the optimizer's private buffer (JAX/Dask rebind): the same numbers, no copy
                    buf = previous
                    buf *= momentum
                    buf += scaled
                else:
                    buf = momentum * previous + scaled
            elif hyper["dampening"] == 0:  # buffers start at 0: momentum * 0 + g == g exactly, no select needed
                buf = momentum * previous + g
            else:  # traced step: select without branching on its value
                buf = xp.where(step == 1, g, momentum * previous + scaled)
            buffers = {"momentum_buffer": buf}
            g = g + momentum * buf if hyper["nesterov"] else buf
        new = g * -lr  # == -(lr * g) exactly, a fresh array: p - lr * g with one temporary
        new += p
        return new, buffers

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        # the first buffer is the gradient itself (torch): no dampening at step 1
        undamped = 1.0 if count == 1 else 1.0 - hyper["dampening"]
        return {**super()._scalars(hyper, count), "undamped": undamped}

    _SCALARS_CONSTANT_FROM: ClassVar[tuple[Any, int]] = (_scalars, 2)  # only the first step differs (no dampening)
