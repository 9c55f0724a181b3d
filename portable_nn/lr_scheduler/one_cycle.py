"""``OneCycleLR``: the 1cycle policy (warm up to ``max_lr``, anneal far below the start), as PyTorch's."""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any

from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError, CallOrderError
from ._base import LRScheduler, check_count, param_groups

__all__ = ["OneCycleLR"]

#: (start_lr, end_lr, start_momentum, end_momentum) of each phase, as PyTorch lays them out.
_LAYOUTS: dict[int, list[tuple[str, str, str, str]]] = {
    2: [
        ("initial_lr", "max_lr", "max_momentum", "base_momentum"),
        ("max_lr", "min_lr", "base_momentum", "max_momentum"),
    ],
    3: [
        ("initial_lr", "max_lr", "max_momentum", "base_momentum"),
        ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
        ("initial_lr", "min_lr", "max_momentum", "max_momentum"),
    ],
}
_LR_KEYS = ("initial_lr", "max_lr", "min_lr")
_MOMENTUM_KEYS = ("max_momentum", "base_momentum")


def _check_bool(name: str, flag: Any) -> bool:
    if not isinstance(flag, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(flag).__name__}")
    return flag


def _check_phases(phases: Any, total_steps: int) -> list[list[Any]]:
    """``[end_step, start_lr, end_lr, start_momentum, end_momentum]`` per phase, in one of PyTorch's layouts.

    A phase the schedule reaches with no length (the warm-up when ``pct_start * total_steps == 1``,
    the last one when it starts at ``total_steps - 1``) is an ``ArgumentError``: PyTorch divides
    by zero there (``ZeroDivisionError``).
    """
    if not isinstance(phases, list) or len(phases) not in _LAYOUTS:
        raise ArgumentError(f"_phases must be a list of 2 or 3 phases, got {phases!r}")
    checked: list[list[Any]] = []
    for index, (phase, names) in enumerate(zip(phases, _LAYOUTS[len(phases)], strict=True)):
        if not isinstance(phase, list) or len(phase) != 5 or tuple(phase[1:]) != names:
            raise ArgumentError(f"_phases[{index}] must be [end_step, *{list(names)}], got {phase!r}")
        checked.append([check_real(f"_phases[{index}] end step", phase[0]), *names])
    if checked[-1][0] != total_steps - 1:
        raise ArgumentError(f"the last phase must end at total_steps - 1 = {total_steps - 1}, got {checked[-1][0]}")
    if checked[0][0] == 0.0:
        raise ArgumentError(
            f"pct_start * total_steps = 1 leaves the warm-up phase no length (total_steps={total_steps}); "
            "choose another pct_start"
        )
    if checked[-1][0] == checked[-2][0]:
        raise ArgumentError(
            f"the last phase has no length: it starts at step {checked[-2][0]:g} = total_steps - 1 "
            f"(total_steps={total_steps}); choose a smaller pct_start"
        )
    return checked


def _check_group_values(
    values: Any, groups: list[MutableMapping[str, Any]], cycle_momentum: bool
) -> list[dict[str, float]]:
    """One dict of the schedule's rates (and momenta with ``cycle_momentum``) per param group, finite."""
    keys = _LR_KEYS + (_MOMENTUM_KEYS if cycle_momentum else ())
    if not isinstance(values, list) or len(values) != len(groups):
        raise ArgumentError(f"_group_values must be a list of one dict per param group ({len(groups)})")
    checked = []
    for index, entry in enumerate(values):
        if not isinstance(entry, dict) or set(entry) != set(keys):
            raise ArgumentError(f"_group_values[{index}] must have the keys {list(keys)}, got {entry!r}")
        checked.append({key: check_real(f"_group_values[{index}][{key!r}]", entry[key]) for key in entry})
    return checked


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
    Stepping past ``total_steps`` is a ``CallOrderError`` (nothing changes). A layout with an
    empty phase that the schedule reaches (``pct_start * total_steps == 1``, or a last phase that
    starts at step ``total_steps - 1``, e.g. ``pct_start=1.0``) is an ``ArgumentError`` at
    construction, where PyTorch raises ``ZeroDivisionError`` when it gets there.
    """

    _state_keys = (
        "total_steps",
        "_phases",
        "anneal_strategy",
        "cycle_momentum",
        "use_beta1",
        "_group_values",
    )
    total_steps: int
    _phases: list[list[Any]]
    anneal_strategy: str
    cycle_momentum: bool
    use_beta1: bool
    _group_values: list[dict[str, float]]

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        """The stored layout: phases of PyTorch's layouts (none empty where reached), rates per group."""
        total_steps = check_count("total_steps", config["total_steps"], low=1)
        if config["anneal_strategy"] not in ("cos", "linear"):
            raise ArgumentError(f"anneal_strategy must be 'cos' or 'linear', got {config['anneal_strategy']!r}")
        cycle_momentum = _check_bool("cycle_momentum", config["cycle_momentum"])
        use_beta1 = _check_bool("use_beta1", config["use_beta1"])
        if cycle_momentum:
            key = "betas" if use_beta1 else "momentum"
            if not all(key in group for group in groups):
                raise ArgumentError(
                    f"OneCycleLR with cycle_momentum=True needs {key!r} in every param group of the optimizer"
                )
        elif use_beta1:
            raise ArgumentError("use_beta1=True needs cycle_momentum=True")
        return {
            "total_steps": total_steps,
            "_phases": _check_phases(config["_phases"], total_steps),
            "anneal_strategy": config["anneal_strategy"],
            "cycle_momentum": cycle_momentum,
            "use_beta1": use_beta1,
            "_group_values": _check_group_values(config["_group_values"], groups, cycle_momentum),
        }

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
            steps = check_count("total_steps", total_steps, low=1)
        elif epochs is not None and steps_per_epoch is not None:
            steps = check_count("epochs", epochs, low=1) * check_count("steps_per_epoch", steps_per_epoch, low=1)
        else:
            raise ArgumentError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        pct = check_real("pct_start", pct_start, low=0.0, high=1.0)
        _check_bool("cycle_momentum", cycle_momentum)
        _check_bool("three_phase", three_phase)
        div = check_real("div_factor", div_factor, low=0.0, low_open=True)
        final_div = check_real("final_div_factor", final_div_factor, low=0.0, low_open=True)
        up = float(pct * steps) - 1
        ends = [up, float(2 * pct * steps) - 2, steps - 1] if three_phase else [up, steps - 1]
        phases = [[end, *names] for end, names in zip(ends, _LAYOUTS[len(ends)], strict=True)]
        peaks = _per_group("max_lr", max_lr, len(groups))
        use_beta1 = False
        momenta: list[tuple[float, float]] = []
        if cycle_momentum:
            if not all("betas" in g or "momentum" in g for g in groups):
                raise ArgumentError(
                    "OneCycleLR with cycle_momentum=True needs an optimizer with 'momentum' (SGD) or 'betas' "
                    "(Adam) in its param groups; pass cycle_momentum=False otherwise"
                )
            use_beta1 = "betas" in groups[0]
            momenta = list(
                zip(
                    _per_group("max_momentum", max_momentum, len(groups)),
                    _per_group("base_momentum", base_momentum, len(groups)),
                    strict=True,
                )
            )
        if last_epoch == -1:
            values = []
            for index, peak in enumerate(peaks):
                entry = {"initial_lr": peak / div, "max_lr": peak, "min_lr": peak / div / final_div}
                if cycle_momentum:
                    entry["max_momentum"], entry["base_momentum"] = momenta[index]
                values.append(entry)
        else:
            keys = _LR_KEYS + (_MOMENTUM_KEYS if cycle_momentum else ())
            values = [{k: group[k] for k in keys if k in group} for group in groups]
        self._configure(
            groups,
            total_steps=steps,
            _phases=phases,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum,
            use_beta1=use_beta1,
            _group_values=values,
        )
        if last_epoch == -1:  # all checked: now write the groups
            for group, entry in zip(groups, self._group_values, strict=True):
                group.update({k: entry[k] for k in _LR_KEYS})
                if cycle_momentum:
                    self._set_momentum(group, entry["max_momentum"])
                    group["max_momentum"], group["base_momentum"] = entry["max_momentum"], entry["base_momentum"]
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
