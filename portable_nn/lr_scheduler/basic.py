"""Epoch-driven schedules equal to ``torch.optim.lr_scheduler``'s: ``LambdaLR``, ``StepLR``, ``MultiStepLR``,
``ExponentialLR``, ``CosineAnnealingLR`` and ``LinearLR``.

Each computes the next rates from the groups' current ones in PyTorch's chainable form (so
the sequences equal PyTorch's bit for bit) and, except ``LambdaLR``, has a closed form used
when :class:`~portable_nn.lr_scheduler.SequentialLR` restarts it at a milestone.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from .._checks import check_real
from ..errors import ArgumentTypeError
from ._base import LRScheduler, check_count, param_groups

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LambdaLR", "LinearLR", "MultiStepLR", "StepLR"]


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)``, one function for all groups or one per group.

    ``state_dict`` holds the position only: functions are not state (pass the same ones again).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.SGD(pnn.Linear(2, 1), lr=0.1)
    >>> sched = LambdaLR(opt, lambda epoch: 0.5**epoch)
    >>> sched.step(); sched.get_last_lr()
    [0.05]
    """

    def __init__(
        self, optimizer: Any, lr_lambda: Callable[[int], float] | list[Callable[[int], float]], last_epoch: int = -1
    ) -> None:
        groups = param_groups(optimizer)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * len(groups)
        if len(lambdas) != len(groups) or not all(callable(f) for f in lambdas):
            raise ArgumentTypeError(f"lr_lambda must be a function or a list of {len(groups)} functions")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs: ``initial_lr * gamma ** (epoch // step_size)``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.SGD(pnn.Linear(2, 1), lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> [sched.step() or sched.get_last_lr()[0] for _ in range(4)]
    [1.0, 0.5, 0.5, 0.25]
    """

    _state_keys = ("step_size", "gamma")
    step_size: int
    gamma: float

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        return {
            "step_size": check_count("step_size", config["step_size"], low=1),
            "gamma": check_real("gamma", config["gamma"]),
        }

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self._configure(param_groups(optimizer), step_size=step_size, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lrs(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each epoch in ``milestones`` (a repeated milestone multiplies again)."""

    _state_keys = ("milestones", "gamma")
    milestones: list[int]
    gamma: float

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        """Milestones in any order (stored sorted: a state must hold them sorted), a finite gamma."""
        milestones = config["milestones"]
        if not isinstance(milestones, (list, tuple)):
            raise ArgumentTypeError(f"milestones must be a list of ints, got {type(milestones).__name__}")
        return {
            "milestones": sorted(check_count("milestones[]", m) for m in milestones),
            "gamma": check_real("gamma", config["gamma"]),
        }

    def __init__(self, optimizer: Any, milestones: list[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        self._configure(param_groups(optimizer), milestones=milestones, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        times = Counter(self.milestones)[self.last_epoch]
        if times == 0:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def _closed_form_lrs(self) -> list[float]:
        return [base * self.gamma ** bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``initial_lr * gamma ** epoch``."""

    _state_keys = ("gamma",)
    gamma: float

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        return {"gamma": check_real("gamma", config["gamma"])}

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1) -> None:
        self._configure(param_groups(optimizer), gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lrs(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from ``initial_lr`` down to ``eta_min`` over ``T_max`` epochs (and back up after, as PyTorch's).

    ``lr = eta_min + (initial_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2``, computed in
    PyTorch's recursive form (so the numbers are PyTorch's, and another schedule may also drive the rate).
    """

    _state_keys = ("T_max", "eta_min")
    T_max: int
    eta_min: float

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        return {
            "T_max": check_count("T_max", config["T_max"], low=1),
            "eta_min": check_real("eta_min", config["eta_min"]),
        }

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self._configure(param_groups(optimizer), T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        epoch, period, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:
            return [low + (base - low) * (1 + math.cos(epoch * math.pi / period)) / 2 for base in self.base_lrs]
        if (epoch - 1 - period) % (2 * period) == 0:
            return [
                lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                for base, lr in zip(self.base_lrs, self._current_lrs(), strict=True)
            ]
        ratio = (1 + math.cos(math.pi * epoch / period)) / (1 + math.cos(math.pi * (epoch - 1) / period))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]

    def _closed_form_lrs(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate linearly from ``start_factor`` to ``end_factor`` of ``initial_lr`` over ``total_iters`` epochs.

    ``start_factor`` in (0, 1], ``end_factor`` in [0, 1], ``total_iters`` >= 1 (an
    ``ArgumentError`` otherwise). Note that the constructor already applies ``start_factor``.
    """

    _state_keys = ("start_factor", "end_factor", "total_iters")
    start_factor: float
    end_factor: float
    total_iters: int

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        return {
            "start_factor": check_real("start_factor", config["start_factor"], low=0.0, high=1.0, low_open=True),
            "end_factor": check_real("end_factor", config["end_factor"], low=0.0, high=1.0),
            "total_iters": check_count("total_iters", config["total_iters"], low=1),
        }

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self._configure(
            param_groups(optimizer), start_factor=start_factor, end_factor=end_factor, total_iters=total_iters
        )
        super().__init__(optimizer, last_epoch)

    def _next_lrs(self) -> list[float]:
        start, end, total, epoch = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if epoch == 0:
            return [lr * start for lr in self._current_lrs()]
        if self._is_initial or epoch > total:
            return self._current_lrs()
        factor = 1.0 + (end - start) / (total * start + (epoch - 1) * (end - start))
        return [lr * factor for lr in self._current_lrs()]

    def _closed_form_lrs(self) -> list[float]:
        start, end, total = self.start_factor, self.end_factor, self.total_iters
        return [base * (start + (end - start) * min(total, self.last_epoch) / total) for base in self.base_lrs]
