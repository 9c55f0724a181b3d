"""``LRScheduler``: the base of the epoch-driven schedules, and the optimizer contract they rely on.

A scheduler drives any optimizer that has ``param_groups``: a list of dicts, each with a float
``"lr"`` (portable_nn's optimizers and torch's have it). Like ``torch.optim.lr_scheduler``, a
scheduler records ``"initial_lr"`` in each group (the first scheduler on an optimizer sets it),
computes the next rates from the groups' current ones (chainable forms, so two schedulers can
drive one optimizer, and the numbers equal PyTorch's to the last bit), and its constructor
already takes the first step (epoch 0).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, SerializationError

__all__ = ["LRScheduler", "check_count", "param_groups"]


def param_groups(optimizer: Any) -> list[MutableMapping[str, Any]]:
    """The optimizer's ``param_groups``, checked: a non-empty list of dicts with a real ``"lr"``."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups or not all(isinstance(g, MutableMapping) for g in groups):
        raise ArgumentTypeError(
            f"a scheduler drives an optimizer with param_groups (a list of dicts with an 'lr'), "
            f"got {type(optimizer).__module__}.{type(optimizer).__qualname__}"
        )
    for index, group in enumerate(groups):
        if "lr" not in group:
            raise ArgumentTypeError(f"param_groups[{index}] has no 'lr'")
    return groups


def check_count(name: str, value: Any, low: int = 0) -> int:
    """``value`` as an int ``>= low``: ``ArgumentTypeError`` for non-ints (and bools), ``ArgumentError`` below."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ArgumentError(f"{name} must be an int >= {low}, got {value}")
    return value


class LRScheduler:
    """Base class: ``step()`` once per epoch (after ``optimizer.step()``), ``get_last_lr()`` reads the rates.

    Subclasses define ``_next_lrs()`` (chainable: from the groups' current ``"lr"``) and may
    define ``_closed_form_lrs()`` (from ``base_lrs`` and ``last_epoch``), which
    :class:`~portable_nn.lr_scheduler.SequentialLR` uses when a milestone restarts a schedule.

    Attributes
    ----------
    optimizer : object with ``param_groups``
    base_lrs : list of float
        Each group's ``"initial_lr"``.
    last_epoch : int
        Epochs stepped (0 right after construction).
    """

    #: Attributes that are configuration or state (what ``state_dict`` holds), besides the common ones.
    _state_keys: tuple[str, ...] = ()
    _common_keys = ("base_lrs", "last_epoch", "_step_count", "_last_lr")

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        groups = param_groups(optimizer)
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ArgumentError(f"last_epoch must be an int >= -1, got {last_epoch!r}")
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            missing = [i for i, group in enumerate(groups) if "initial_lr" not in group]
            if missing:
                raise ArgumentError(
                    f"resuming with last_epoch={last_epoch} needs 'initial_lr' in param_groups {missing} "
                    "(load the optimizer's and the scheduler's state instead)"
                )
        self.optimizer = optimizer
        self.base_lrs: list[float] = [group["initial_lr"] for group in groups]
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    # ---------------------------------------------------------------- stepping

    def _next_lrs(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in param_groups(self.optimizer)]

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups (all or nothing)."""
        self._step_count += 1
        try:
            self._update_lr(None)
        except BaseException:
            self._step_count -= 1
            raise

    def _update_lr(self, epoch: int | None) -> None:
        """Set ``last_epoch`` (next, or ``epoch`` through the closed form when there is one) and the rates."""
        previous = self.last_epoch
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self._next_lrs()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_closed_form_lrs", None)
                values = closed() if closed is not None else self._next_lrs()
            self._write(values)
        except BaseException:
            self.last_epoch = previous
            raise

    def _write(self, values: list[float]) -> None:
        groups = param_groups(self.optimizer)
        if len(values) != len(groups):
            raise ArgumentError(f"expected one learning rate per param group ({len(groups)}), got {len(values)}")
        for group, value in zip(groups, values, strict=True):
            group["lr"] = value
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` (or the constructor) set, one per param group."""
        return list(self._last_lr)

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """The schedule's configuration and position (plain Python values; the optimizer is not included)."""
        return {key: _copy(getattr(self, key)) for key in (*self._common_keys, *self._state_keys)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same kind of scheduler; a ``SerializationError`` if keys differ."""
        self._check_state(state)
        for key in (*self._common_keys, *self._state_keys):
            setattr(self, key, _copy(state[key]))

    def _check_state(self, state: Any) -> None:
        """Raise ``SerializationError`` unless ``state`` could be loaded (changes nothing)."""
        expected = {*self._common_keys, *self._state_keys}
        if not isinstance(state, Mapping) or set(state) != expected:
            given = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
            raise SerializationError(f"{type(self).__name__} state: expected keys {sorted(expected)}, got {given}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._state_keys if not key.startswith("_"))
        return f"{type(self).__name__}({shown})"


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
