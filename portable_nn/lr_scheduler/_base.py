"""``LRScheduler``: the base of the epoch-driven schedules, and the optimizer contract they rely on.

A scheduler drives any optimizer that has ``param_groups``: a list of dicts, each with a float
``"lr"`` (portable_nn's optimizers and torch's have it). Like ``torch.optim.lr_scheduler``, a
scheduler records ``"initial_lr"`` in each group (the first scheduler on an optimizer sets it),
computes the next rates from the groups' current ones (chainable forms, so two schedulers can
drive one optimizer, and the numbers equal PyTorch's to the last bit), and its constructor
already takes the first step (epoch 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError, SerializationError

__all__ = ["LRScheduler", "check_count", "check_rates", "copy_state", "load_checked", "param_groups", "state_errors"]


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


def check_rates(name: str, values: Any, count: int) -> list[float]:
    """``values`` as a list of ``count`` finite reals (one per param group), else a typed error."""
    if not isinstance(values, (list, tuple)):
        raise ArgumentTypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    if len(values) != count:
        raise ArgumentError(f"{name}: expected one value per param group ({count}), got {len(values)}")
    return [check_real(f"{name}[{index}]", value) for index, value in enumerate(values)]


@contextmanager
def state_errors(kind: str) -> Iterator[None]:
    """Re-raise a validator's ``ArgumentError``/``ArgumentTypeError`` as a ``SerializationError`` naming ``kind``."""
    try:
        yield
    except (ArgumentError, ArgumentTypeError) as exc:
        raise SerializationError(f"{kind} state: {exc}") from None


def load_checked(
    kind: str, state: Any, keys: tuple[str, ...], validate: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The values of a state dict with exactly ``keys``, each checked by ``validate`` (the constructor's rules).

    ``validate`` returns the values a constructor would store; a state holding anything else
    (an unsorted milestone list, a float step count) is refused too. Changes nothing.
    """
    if not isinstance(state, Mapping) or set(state) != set(keys):
        given = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
        raise SerializationError(f"{kind} state: expected keys {sorted(keys)}, got {given}")
    with state_errors(kind):
        values = validate(state)
    for key in keys:
        if not _same(values[key], state[key]):
            raise SerializationError(
                f"{kind} state: {key}={state[key]!r} is not what the constructor stores ({values[key]!r})"
            )
    return values


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal kinds (``True`` is not ``1``; a list is not a tuple)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return type(a) is type(b) and a == b
    return bool(a == b)


class LRScheduler:
    """Base class: ``step()`` once per epoch (after ``optimizer.step()``), ``get_last_lr()`` reads the rates.

    Subclasses define ``_next_lrs()`` (chainable: from the groups' current ``"lr"``),
    ``_validate(config, groups)`` (their configuration's checks, shared by the constructor and
    :meth:`load_state_dict`) and may define ``_closed_form_lrs()`` (from ``base_lrs`` and ``last_epoch``), which
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

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        """The configuration (``_state_keys``) as stored, checked value by value; a typed error otherwise.

        ``groups`` are the optimizer's param groups (for schedules with one value per group).
        """
        return {}

    def _configure(self, groups: list[MutableMapping[str, Any]], **config: Any) -> None:
        """Check the constructor's configuration with :meth:`_validate` and store it."""
        for key, value in self._validate(config, groups).items():
            setattr(self, key, value)

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
        return {key: copy_state(getattr(self, key)) for key in (*self._common_keys, *self._state_keys)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same kind of scheduler.

        Every value is checked by the constructor's rules (``step_size >= 1``, finite ``gamma``,
        sorted milestones, one rate per param group...): a ``SerializationError`` naming the
        value otherwise, and nothing changes.
        """
        self._apply_state(self._check_state(state))

    def _apply_state(self, values: Mapping[str, Any]) -> None:
        """Store values :meth:`_check_state` returned."""
        for key, value in values.items():
            setattr(self, key, copy_state(value))

    def _check_state(self, state: Any) -> dict[str, Any]:
        """The values of ``state`` if it could be loaded, else a ``SerializationError`` (changes nothing)."""
        groups = param_groups(self.optimizer)
        count = len(groups)

        def validate(values: Mapping[str, Any]) -> dict[str, Any]:
            checked = self._validate({key: values[key] for key in self._state_keys}, groups)
            checked["base_lrs"] = check_rates("base_lrs", values["base_lrs"], count)
            checked["_last_lr"] = check_rates("_last_lr", values["_last_lr"], count)
            checked["last_epoch"] = check_count("last_epoch", values["last_epoch"], low=-1)
            checked["_step_count"] = check_count("_step_count", values["_step_count"])
            return checked

        return load_checked(type(self).__name__, state, (*self._common_keys, *self._state_keys), validate)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._state_keys if not key.startswith("_"))
        return f"{type(self).__name__}({shown})"


def copy_state(value: Any) -> Any:
    if isinstance(value, list):
        return [copy_state(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_state(v) for k, v in value.items()}
    return value
