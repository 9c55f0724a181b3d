"""The core of :class:`~portable_nn.optim.Optimizer`: construction, hyperparameters, groups, subclass hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._backend import zeros_like
from .._checks import check_lr, check_real
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
)
from ..nn.module import Module
from ..typing import Array
from .groups import build_groups

Buffers = dict[str, dict[str, Array]]
Hyper = dict[str, Any]
Step = Any  # a Python int (stateful step) or a 0-d int32 array (pure update)
_PLAIN = (float, int, bool, tuple)


def flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool, else an ``ArgumentTypeError`` (arrays included: no truth-value ambiguity)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def gradient_prologue(g: Array, p: Array, hyper: Mapping[str, Any], decay: Any) -> Array:
    """The gradient every update rule starts from, written once for all of them (torch's order).

    ``-g`` when ``hyper["maximize"]``, then plus ``decay * p`` (L2 weight decay) when
    ``hyper["weight_decay"]`` is not 0 and the decay is not decoupled (AdamW shrinks ``p`` instead).
    ``decay`` is the weight decay as the step uses it (a float, or a traced scalar in a compiled step).
    """
    if hyper["maximize"]:
        g = -g
    if hyper["weight_decay"] != 0 and not hyper.get("decoupled", False):
        g = g + decay * p
    return g


class _OptimizerCore:
    """Construction, hyperparameters and param groups of :class:`~portable_nn.optim.Optimizer`; subclass hooks."""

    _LEGACY: ClassVar[dict[str, Any]] = {}
    _FAST_PATH: ClassVar[str | None] = None  # name of the foreach update in portable_nn.backends.fast_paths

    def __init__(
        self, module: Module, *, param_groups: Any = None, foreach: bool | None = None, **hyperparameters: Any
    ) -> None:
        if not isinstance(module, Module):
            raise ArgumentTypeError(
                f"{type(self).__name__} optimizes a portable_nn Module, got {type(module).__module__}."
                f"{type(module).__qualname__}"
            )
        params = module.named_parameters()
        if not params:
            raise ArgumentError(f"{type(self).__name__}: the module has no parameters to optimize")
        if foreach is not None:
            flag("foreach", foreach)
        self.module = module
        self.foreach = foreach
        defaults = self._validate(hyperparameters)
        self._keys = tuple(defaults)
        self.param_groups, self._members = build_groups(list(params), defaults, param_groups, self._validate)
        self._names = tuple(name for members in self._members for name in members)
        self._state: Buffers = {}
        self._step = 0
        self._private = False  # buffers no one else holds: updated in place (train_step) or donated (jax.jit)
        self._name_set = frozenset(self._names)
        self._fast_cache: tuple[Any, Any] | None = None
        self._lazy_cache: tuple[Any, bool] | None = None
        self._checked: tuple[tuple[Any, ...], list[Hyper]] | None = None
        self._several_groups = len(self._members) > 1
        self._backend: tuple[Any, ...] = (None,)  # (array type, foreach, namespace, fast path, lazy): step_with
        self._stored_first: Any = None  # the first parameter and the buffers step_with stored last
        self._stored_state: Buffers | None = None
        self._structure: tuple[Any, Any] = (None, None)  # (the _groups() list, its structure())
        self._numbers: tuple[Any, Any, Any] | None = None  # (the _groups() list, count key, step_numbers())

    # ---------------------------------------------------------------- hyperparameters

    def _validate(self, hyper: Mapping[str, Any]) -> Hyper:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def hyperparameters(self) -> Hyper:
        """A copy of the default group's hyperparameters (``lr``, ``momentum``, ...), ``param_groups[0]``."""
        return self._groups()[0].copy()

    @property
    def lr(self) -> float:
        """The default group's learning rate (``param_groups[0]["lr"]``); assignable (validated)."""
        return check_real("lr", self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = check_lr(value)

    @property
    def step_count(self) -> int:
        """How many ``step()`` calls have succeeded."""
        return self._step

    def _groups(self) -> list[Hyper]:
        """Each group's hyperparameters, validated (cached while ``param_groups`` holds the same plain values)."""
        keys, checked_before = self._keys, self._checked
        if checked_before is not None:  # the hot path: one flat tuple, compared by identity first, then by value
            try:
                flat = tuple([group[key] for group in self.param_groups for key in keys])
            except (KeyError, TypeError):
                flat = None
            try:  # identical objects compare equal without a call; an array among them may refuse to compare
                same = flat is not None and flat == checked_before[0]
            except Exception:
                same = False
            if same:
                return checked_before[1]
        if len(self.param_groups) != len(self._members):
            raise ArgumentError(f"param_groups: expected {len(self._members)} groups, got {len(self.param_groups)}")
        checked = []
        for index, (group, members) in enumerate(zip(self.param_groups, self._members, strict=True)):
            if not isinstance(group, dict) or not {"params", *self._keys} <= set(group):  # extra keys: as torch
                got = sorted(group) if isinstance(group, dict) else type(group).__name__
                raise ArgumentError(f"param_groups[{index}]: expected keys {['params', *self._keys]}, got {got}")
            if list(group["params"]) != list(members):
                raise ArgumentError(
                    f"param_groups[{index}]['params']: the members of a group are fixed at construction"
                )
            checked.append(self._validate_group(f"param_groups[{index}]", {key: group[key] for key in self._keys}))
        snapshot = tuple(group[key] for group in self.param_groups for key in keys)
        plain = all(type(v) in _PLAIN for v in snapshot)  # arrays (0-d hyperparameters) are validated every step
        self._checked = (snapshot, checked) if plain else None
        return checked

    def _group_of(self) -> dict[str, int]:
        return {name: index for index, members in enumerate(self._members) for name in members}

    # ---------------------------------------------------------------- the pure form

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """The per-parameter buffers an update with these hyperparameters keeps."""
        return ()

    def _initial_buffer(self, xp: Any, name: str, p: Array, hyper: Mapping[str, Any]) -> Array:
        return zeros_like(p)  # xp.zeros_like; on JAX built on the host (no compilation per shape)

    def _update_one(
        self,
        xp: Any,
        p: Array,
        g: Array,
        buffers: dict[str, Array],
        step: Step,
        lr: Any,
        hyper: Hyper,
        *,
        inplace: bool = False,
        values: Mapping[str, Any] | None = None,
    ) -> tuple[Array, dict[str, Array]]:  # pragma: no cover - abstract
        """One parameter's update; ``hyper`` decides the structure (flags, which values are 0), ``values``
        (from :meth:`step_scalars`, possibly traced 0-d arrays) the numbers when given, else ``hyper``/``step``."""
        raise NotImplementedError

    def _validate_group(self, what: str, values: Mapping[str, Any]) -> Hyper:
        """A group's hyperparameters as found in ``param_groups`` (or a state dict's), validated.

        The constructor and the ``lr`` setter refuse a negative lr; a value a schedule wrote may be
        any finite number, as in torch (e.g. LinearLR ending at 0 gives -1.9e-18 by rounding): it is
        used as given.
        """
        lr = check_real(f"{what}['lr']", values["lr"])
        hyper = self._validate({**values, "lr": abs(lr)})
        return {**hyper, "lr": lr}
