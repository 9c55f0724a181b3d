"""``OneCycleLR``: the 1cycle policy (warm up to ``max_lr``, anneal far below the start), as PyTorch's."""

from __future__ import annotations

import math
from typing import Any

from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError, CallOrderError
from ._base import LRScheduler, check_count, param_groups

__all__ = ["OneCycleLR"]


def _per_group(name: str, value: Any, count: int) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * count
    if len(values) != count:
        raise ArgumentError(f"{name}: expected one value per param group ({count}), got {len(values)}")
    return [check_real(name, v) for v in values]


def _anneal_cos(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _anneal_linear(start: float, end: float, fraction: float) -> float:
    return (end - start) * fraction + start


class OneCycleLR(LRScheduler):
    """Per batch: lr from ``max_lr / div_factor`` up to ``max_lr``, then down to ``initial_lr / final_div_factor``.

    Parameters follow ``torch.optim.lr_scheduler.OneCycleLR``: ``max_lr`` (float or one per
    group), ``total_steps`` or ``epochs`` and ``steps_per_epoch``, ``pct_start=0.3``,
    ``anneal_strategy="cos" | "linear"``, ``cycle_momentum=True``, ``base_momentum=0.85``,
    ``max_momentum=0.95``, ``div_factor=25.0``, ``final_div_factor=1e4``, ``three_phase=False``.
    With ``cycle_momentum`` the optimizer's groups must have ``"momentum"`` (SGD) or ``"betas"``
    (Adam: ``beta1`` cycles), else an ``ArgumentError``; momentum moves opposite to the rate.
    Stepping past ``total_steps`` is a ``CallOrderError`` (nothing changes).
    """

    _state_keys = (
        "total_steps",
        "_phases",
        "anneal_strategy",
        "cycle_momentum",
        "use_beta1",
        "_group_values",
    )

    def __init__(
        self,
        optimizer: Any,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        groups = param_groups(optimizer)
        if total_steps is not None:
            self.total_steps = check_count("total_steps", total_steps, low=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = check_count("epochs", epochs, low=1) * check_count(
                "steps_per_epoch", steps_per_epoch, low=1
            )
        else:
            raise ArgumentError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        pct = check_real("pct_start", pct_start, low=0.0, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        for name, flag in (("cycle_momentum", cycle_momentum), ("three_phase", three_phase)):
            if not isinstance(flag, bool):
                raise ArgumentTypeError(f"{name} must be a bool, got {type(flag).__name__}")
        div = check_real("div_factor", div_factor, low=0.0, low_open=True)
        final_div = check_real("final_div_factor", final_div_factor, low=0.0, low_open=True)
        self.anneal_strategy = anneal_strategy
        last = self.total_steps - 1
        up = float(pct * self.total_steps) - 1
        # (end_step, start_lr, end_lr, start_momentum, end_momentum) of each phase, as PyTorch lays them out.
        self._phases: list[list[Any]]
        if three_phase:
            self._phases = [
                [up, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * pct * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [last, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self._phases = [
                [up, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [last, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]
        peaks = _per_group("max_lr", max_lr, len(groups))
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = False
        momenta: list[tuple[float, float]] = []
        if cycle_momentum:
            if not all("betas" in g or "momentum" in g for g in groups):
                raise ArgumentError(
                    "OneCycleLR with cycle_momentum=True needs an optimizer with 'momentum' (SGD) or 'betas' "
                    "(Adam) in its param groups; pass cycle_momentum=False otherwise"
                )
            self.use_beta1 = "betas" in groups[0]
            momenta = list(
                zip(
                    _per_group("max_momentum", max_momentum, len(groups)),
                    _per_group("base_momentum", base_momentum, len(groups)),
                    strict=True,
                )
            )
        if last_epoch == -1:
            for index, group in enumerate(groups):
                group["initial_lr"] = peaks[index] / div
                group["max_lr"] = peaks[index]
                group["min_lr"] = group["initial_lr"] / final_div
                if cycle_momentum:
                    high, low = momenta[index]
                    self._set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        keys = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
        self._group_values = [{k: group[k] for k in keys if k in group} for group in groups]
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: Any, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _schedule(self) -> tuple[list[float], list[float]]:
        step = self.last_epoch
        if step > self.total_steps:
            raise CallOrderError(f"OneCycleLR stepped {step} times, past its total_steps={self.total_steps}")
        anneal = _anneal_cos if self.anneal_strategy == "cos" else _anneal_linear
        lrs, momenta = [], []
        for values in self._group_values:
            start = 0.0
            for index, (end, start_lr, end_lr, start_m, end_m) in enumerate(self._phases):
                if step <= end or index == len(self._phases) - 1:
                    fraction = (step - start) / (end - start)
                    lrs.append(anneal(values[start_lr], values[end_lr], fraction))
                    if self.cycle_momentum:
                        momenta.append(anneal(values[start_m], values[end_m], fraction))
                    break
                start = end
        return lrs, momenta

    def _next_lrs(self) -> list[float]:
        lrs, momenta = self._schedule()
        for group, momentum in zip(param_groups(self.optimizer), momenta, strict=False):
            self._set_momentum(group, momentum)
        return lrs
