"""``ReduceLROnPlateau``: divide the rate when a metric stops improving, as PyTorch's."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError, SerializationError
from ._base import check_count, param_groups

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau:
    """``step(metric)`` each epoch; after ``patience`` epochs without improvement, ``lr = max(lr * factor, min_lr)``.

    Parameters follow ``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``mode="min" | "max"``,
    ``factor=0.1`` (in [0, 1)), ``patience=10``, ``threshold=1e-4``, ``threshold_mode="rel" | "abs"``,
    ``cooldown=0``, ``min_lr=0`` (or one per group), ``eps=1e-8`` (smaller changes are skipped).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> opt = pnn.SGD(pnn.Linear(2, 1), lr=1.0)
    >>> sched = ReduceLROnPlateau(opt, patience=1)
    >>> for loss in [1.0, 1.0, 1.0]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.1]
    """

    _state_keys = (
        "factor",
        "min_lrs",
        "default_min_lr",
        "patience",
        "cooldown",
        "eps",
        "last_epoch",
        "_last_lr",
        "mode",
        "threshold",
        "threshold_mode",
        "mode_worse",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
    )

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        groups = param_groups(optimizer)
        self.factor = check_real("factor", factor, low=0.0, high=1.0, high_open=True)
        if mode not in ("min", "max"):
            raise ArgumentError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ArgumentError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(groups):
                raise ArgumentError(f"min_lr: expected one per param group ({len(groups)}), got {len(min_lr)}")
            self.default_min_lr: float | None = None
            self.min_lrs = [check_real("min_lr", v, low=0.0) for v in min_lr]
        else:
            self.default_min_lr = check_real("min_lr", min_lr, low=0.0)
            self.min_lrs = [self.default_min_lr] * len(groups)
        self.optimizer = optimizer
        self.patience = check_count("patience", patience)
        self.cooldown = check_count("cooldown", cooldown)
        self.eps = check_real("eps", eps, low=0.0)
        self.threshold = check_real("threshold", threshold)
        self.mode, self.threshold_mode = mode, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]
        self.best, self.num_bad_epochs, self.cooldown_counter = self.mode_worse, 0, 0

    def _is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return (
                value < best * (1.0 - self.threshold) if self.threshold_mode == "rel" else value < best - self.threshold
            )
        return value > best * (self.threshold + 1.0) if self.threshold_mode == "rel" else value > best + self.threshold

    def step(self, metrics: Any) -> None:
        """Record this epoch's ``metrics`` (a number or 0-d array; NaN counts as no improvement)."""
        if isinstance(metrics, (bool, str, bytes)) or tuple(getattr(metrics, "shape", ())) != ():
            raise ArgumentTypeError(f"metrics must be a real number or a 0-d array, got {type(metrics).__name__}")
        try:
            current = float(metrics)
        except (TypeError, ValueError) as exc:
            raise ArgumentTypeError(f"metrics must be a real number, got {type(metrics).__name__} ({exc})") from None
        groups = param_groups(self.optimizer)
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ArgumentError(
                    f"the optimizer has {len(groups)} param groups, min_lr has {len(self.min_lrs)} values"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(groups, self.min_lrs, strict=True):
                old = float(group["lr"])
                new = max(old * self.factor, low)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in groups]

    @property
    def in_cooldown(self) -> bool:
        """Whether the last reduction's cooldown is still running."""
        return self.cooldown_counter > 0

    def get_last_lr(self) -> list[float]:
        """The rates after the last ``step`` (or at construction), one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Configuration and position (plain Python values)."""
        return {key: (list(v) if isinstance(v := getattr(self, key), list) else v) for key in self._state_keys}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a ``SerializationError`` if its keys differ."""
        if not isinstance(state, Mapping) or set(state) != set(self._state_keys):
            raise SerializationError(f"ReduceLROnPlateau state: expected keys {sorted(self._state_keys)}")
        for key in self._state_keys:
            value = state[key]
            setattr(self, key, list(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor!r}, patience={self.patience!r}, "
            f"threshold={self.threshold!r}, threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown!r})"
        )
