"""``SequentialLR``: run schedules one after another, switching at milestones, as PyTorch's."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError
from ._base import LRScheduler, check_count, check_rates, copy_state, load_checked, param_groups

__all__ = ["SequentialLR"]


class SequentialLR(LRScheduler):
    """Use ``schedulers[i]`` from epoch ``milestones[i - 1]`` on; each one restarts at its milestone (epoch 0).

    Parameters
    ----------
    optimizer : object with ``param_groups``
        The optimizer every scheduler drives (the same object).
    schedulers : list of LRScheduler
        At least one; not :class:`ReduceLROnPlateau` (it needs a metric).
    milestones : list of int
        Increasing epochs, one fewer than ``schedulers``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> from portable_nn.lr_scheduler import ExponentialLR, LinearLR, SequentialLR
    >>> opt = pnn.SGD(pnn.Linear(2, 1), lr=1.0)
    >>> warm = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> sched = SequentialLR(opt, [warm, ExponentialLR(opt, gamma=0.5)], milestones=[2])
    >>> [sched.step() or sched.get_last_lr()[0] for _ in range(4)]
    [0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Any, schedulers: list[LRScheduler], milestones: list[int], last_epoch: int = -1):
        groups = param_groups(optimizer)
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            raise ArgumentError("SequentialLR needs a non-empty list of schedulers")
        for index, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise ArgumentTypeError(
                    f"schedulers[{index}] must be an epoch scheduler of portable_nn.lr_scheduler "
                    f"(not ReduceLROnPlateau), got {type(scheduler).__name__}"
                )
            if scheduler.optimizer is not optimizer:
                raise ArgumentError(f"schedulers[{index}] drives another optimizer than SequentialLR's")
        checked = self._validate_milestones(milestones, len(schedulers))
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ArgumentError(f"last_epoch must be an int >= -1, got {last_epoch!r}")
        self._schedulers = list(schedulers)
        self._milestones = checked
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in groups:  # undo what the schedulers' constructors did, then start the first one
            group["lr"] = group["initial_lr"]
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @staticmethod
    def _validate_milestones(milestones: Any, schedulers: int) -> list[int]:
        """Non-decreasing ints >= 0, one fewer than the schedulers (the constructor's and the state's rule)."""
        if not isinstance(milestones, (list, tuple)) or len(milestones) != schedulers - 1:
            raise ArgumentError(
                f"SequentialLR needs one milestone fewer than schedulers ({schedulers - 1}), got {milestones!r}"
            )
        checked = [check_count("milestones[]", m) for m in milestones]
        if checked != sorted(checked):
            raise ArgumentError(f"milestones must increase, got {checked}")
        return checked

    @staticmethod
    def _undo_initial_steps(scheduler: LRScheduler) -> None:
        if isinstance(scheduler, SequentialLR):
            for inner in scheduler._schedulers:
                SequentialLR._undo_initial_steps(inner)
        else:
            scheduler.last_epoch -= 1

    def _initial_step(self) -> None:  # a nested SequentialLR restarts its first schedule
        self._schedulers[bisect_right(self._milestones, 0)]._initial_step()

    def step(self) -> None:
        """Advance one epoch: the current schedule steps, or the next one restarts at its milestone."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        try:
            if index > 0 and self._milestones[index - 1] == self.last_epoch:
                scheduler._update_lr(0)
            else:
                scheduler.step()
        except BaseException:
            self.last_epoch -= 1
            raise
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Position, milestones and each inner scheduler's :meth:`~LRScheduler.state_dict`."""
        return {
            "last_epoch": self.last_epoch,
            "_milestones": list(self._milestones),
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the same number of inner schedulers, of the same kinds).

        All or nothing: every inner state is checked before any scheduler changes.
        """
        self._apply_state(self._check_state(state))

    def _apply_state(self, values: Mapping[str, Any]) -> None:
        for scheduler, scheduler_values in zip(self._schedulers, values["_schedulers"], strict=True):
            scheduler._apply_state(scheduler_values)  # a nested SequentialLR recurses
        for key, value in values.items():
            if key != "_schedulers":
                setattr(self, key, copy_state(value))

    def _check_state(self, state: Any) -> dict[str, Any]:
        """The checked values of ``state`` (the inner schedulers' too), else a ``SerializationError``."""
        expected = ("last_epoch", "_milestones", "_last_lr", "_schedulers")
        count = len(param_groups(self.optimizer))

        def validate(values: Mapping[str, Any]) -> dict[str, Any]:
            inner = values["_schedulers"]
            if not isinstance(inner, list) or len(inner) != len(self._schedulers):
                raise ArgumentError(f"expected a list of {len(self._schedulers)} scheduler states")
            return {
                "last_epoch": check_count("last_epoch", values["last_epoch"]),
                "_milestones": self._validate_milestones(values["_milestones"], len(self._schedulers)),
                "_last_lr": check_rates("_last_lr", values["_last_lr"], count),
                "_schedulers": [  # each inner state by its own rules (a SerializationError naming it)
                    scheduler._check_state(scheduler_state)
                    for scheduler, scheduler_state in zip(self._schedulers, inner, strict=True)
                ],
            }

        return load_checked("SequentialLR", state, expected, validate)

    def __repr__(self) -> str:
        return f"SequentialLR(schedulers={self._schedulers!r}, milestones={self._milestones!r})"
