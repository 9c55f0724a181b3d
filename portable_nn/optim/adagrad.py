"""``Adagrad``: per-coordinate steps scaled by the accumulated squared gradients, with lr decay, maximize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._checks import check_lr, check_real
from ..nn.module import Module
from ..typing import Array
from .base import Optimizer, Step, flag, gradient_prologue

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad with ``torch.optim.Adagrad``'s signature and update rule.

    Per parameter ``p`` with gradient ``g`` at step ``t`` = 1, 2, ...::

        g = -g                                          (if maximize)
        g = g + weight_decay * p
        sum = sum + g²                                  (sum starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

    Parameters
    ----------
    module : Module
        The model to optimize.
    lr, lr_decay, weight_decay, initial_accumulator_value, eps : float or 0-d array
        All >= 0.
    maximize : bool
        Ascend instead of descend.
    param_groups, foreach
        As in :class:`~portable_nn.optim.SGD` (the multi-tensor path: torch only).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> opt = pnn.Adagrad(model, initial_accumulator_value=0.1)
    >>> float(opt.init(model.named_parameters())["buffers"]["bias"]["sum"][0])
    0.1...
    """

    _LEGACY: ClassVar[dict[str, Any]] = {}
    _FAST_PATH: ClassVar[str | None] = "adagrad"

    def __init__(
        self,
        module: Module,
        lr: Any = 1e-2,
        lr_decay: Any = 0.0,
        weight_decay: Any = 0.0,
        initial_accumulator_value: Any = 0.0,
        eps: Any = 1e-10,
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
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"]),
            "lr_decay": check_real("lr_decay", hyper["lr_decay"], low=0.0),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "initial_accumulator_value": check_real(
                "initial_accumulator_value", hyper["initial_accumulator_value"], low=0.0
            ),
            "eps": check_real("eps", hyper["eps"], low=0.0),
            "maximize": flag("maximize", hyper["maximize"]),
        }

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _initial_buffer(self, xp: Any, name: str, p: Array, hyper: Mapping[str, Any]) -> Array:
        return xp.full_like(p, hyper["initial_accumulator_value"])

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
        numbers = hyper if values is None else values  # step_scalars' lr is already decayed
        g = gradient_prologue(g, p, hyper, numbers["weight_decay"])
        if values is None and hyper["lr_decay"] != 0:
            t = step - 1 if isinstance(step, int) else xp.astype(step - 1, p.dtype)
            lr = lr / (1 + t * hyper["lr_decay"])
        if inplace:  # the optimizer's private buffer (JAX/Dask rebind): the same numbers, no copy
            total = buffers["sum"]
            total += g * g
        else:
            total = buffers["sum"] + g * g
        return p - lr * (g / (xp.sqrt(total) + numbers["eps"])), {"sum": total}

    def _scalars(self, hyper: Mapping[str, Any], count: int) -> dict[str, float]:
        scalars = super()._scalars(hyper, count)
        scalars["lr"] = hyper["lr"] / (1 + (count - 1) * hyper["lr_decay"])
        return scalars
