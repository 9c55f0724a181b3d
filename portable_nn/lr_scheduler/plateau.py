"""``ReduceLROnPlateau``: divide the rate when a metric stops improving, as PyTorch's."""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any

from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError
from ._base import check_count, check_rates, load_checked, param_groups

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

    factor: float
    min_lrs: list[float]
    default_min_lr: float | None
    patience: int
    cooldown: int
    eps: float
    last_epoch: int
    _last_lr: list[float]
    mode: str
    threshold: float
    threshold_mode: str
    mode_worse: float
    best: float
    num_bad_epochs: int
    cooldown_counter: int

    @staticmethod
    def _validate(config: Mapping[str, Any], groups: list[MutableMapping[str, Any]]) -> dict[str, Any]:
        """The configuration and position (``_state_keys``) as stored, checked value by value.

        The constructor passes its arguments with ``min_lr`` (a number or one per group) and
        no position; a state has every key of :meth:`state_dict`.
        """
        mode, threshold_mode = config["mode"], config["threshold_mode"]
        if mode not in ("min", "max"):
            raise ArgumentError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ArgumentError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        worse = math.inf if mode == "min" else -math.inf
        values: dict[str, Any] = {
            "factor": check_real("factor", config["factor"], low=0.0, high=1.0, high_open=True),
            "patience": check_count("patience", config["patience"]),
            "cooldown": check_count("cooldown", config["cooldown"]),
            "eps": check_real("eps", config["eps"], low=0.0),
            "threshold": check_real("threshold", config["threshold"]),
            "mode": mode,
            "threshold_mode": threshold_mode,
            "mode_worse": worse,
        }
        if "min_lr" in config:  # the constructor's form
            min_lr = config["min_lr"]
            if isinstance(min_lr, (list, tuple)):
                values["default_min_lr"] = None
                values["min_lrs"] = [
                    check_real("min_lr", v, low=0.0) for v in check_rates("min_lr", min_lr, len(groups))
                ]
            else:
                values["default_min_lr"] = check_real("min_lr", min_lr, low=0.0)
                values["min_lrs"] = [values["default_min_lr"]] * len(groups)
            values.update(last_epoch=0, _last_lr=[group["lr"] for group in groups], best=worse)
            values.update(num_bad_epochs=0, cooldown_counter=0)
            return values
        default = config["default_min_lr"]
        values["default_min_lr"] = None if default is None else check_real("default_min_lr", default, low=0.0)
        values["min_lrs"] = [
            check_real("min_lrs[]", v, low=0.0) for v in check_rates("min_lrs", config["min_lrs"], len(groups))
        ]
        if default is not None and values["min_lrs"] != [values["default_min_lr"]] * len(groups):
            raise ArgumentError(f"min_lrs {config['min_lrs']!r} differ from default_min_lr={default!r}")
        if config["mode_worse"] != worse:
            raise ArgumentError(f"mode_worse must be {worse} for mode={mode!r}, got {config['mode_worse']!r}")
        best = config["best"]
        if isinstance(best, float) and math.isinf(best):
            values["best"] = float(best)  # the start value mode_worse, or an infinite metric step() took as best
        else:
            values["best"] = check_real("best", best)
        values["last_epoch"] = check_count("last_epoch", config["last_epoch"])
        values["_last_lr"] = check_rates("_last_lr", config["_last_lr"], len(groups))
        values["num_bad_epochs"] = check_count("num_bad_epochs", config["num_bad_epochs"])
        values["cooldown_counter"] = check_count("cooldown_counter", config["cooldown_counter"])
        if values["cooldown_counter"] > values["cooldown"]:
            raise ArgumentError(f"cooldown_counter={values['cooldown_counter']} exceeds cooldown={values['cooldown']}")
        return values

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
        config = {
            "mode": mode,
            "factor": factor,
            "patience": patience,
            "threshold": threshold,
            "threshold_mode": threshold_mode,
            "cooldown": cooldown,
            "min_lr": min_lr,
            "eps": eps,
        }
        for key, value in self._validate(config, groups).items():
            setattr(self, key, value)
        self.optimizer = optimizer

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
        except OverflowError:
            raise ArgumentError(f"metrics must fit a float, got {metrics!r} (too large)") from None
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
        """Restore a :meth:`state_dict`: every value checked by the constructor's rules.

        A ``SerializationError`` naming the first bad key or value (``mode='nonsense'``,
        ``factor=nan``, a negative counter, one ``min_lrs`` per group...); nothing changes then.
        """
        groups = param_groups(self.optimizer)
        values = load_checked(
            "ReduceLROnPlateau", state, self._state_keys, lambda config: self._validate(config, groups)
        )
        for key, value in values.items():
            setattr(self, key, list(value) if isinstance(value, list) else value)

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor!r}, patience={self.patience!r}, "
            f"threshold={self.threshold!r}, threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown!r})"
        )
