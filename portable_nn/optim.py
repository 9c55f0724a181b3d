"""Optimizers ``SGD``, ``Adam`` and ``AdamW`` over any :class:`~portable_nn.module.Module`.

They follow ``torch.optim``'s update rules step for step, written against the array API:
every update builds new arrays and rebinds them through ``module.set_parameters`` (never in
place, so immutable JAX arrays work). A step that raises changes neither the module nor the
optimizer's buffers.

Usage::

    opt = Adam(model, lr=1e-3)
    loss, grad = loss_fn(model(x), y)
    opt.zero_grad(); model.backward(grad); opt.step()

One deliberate difference from PyTorch: ``step()`` raises a ``CallOrderError`` if a parameter
has no gradient, instead of silently skipping it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._backend import convert, device_of, materialize, namespace_of
from ._checks import check_like, check_lr, check_real
from .errors import ArgumentError, ArgumentTypeError, CallOrderError, SerializationError
from .module import Module

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]

Array = Any
State = dict[str, dict[str, Array]]


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


class Optimizer:
    """Base class: a module, validated hyperparameters, per-parameter buffers and a step count.

    Subclasses define ``_validate(hyperparameters) -> hyperparameters``, ``_buffer_names(hyperparameters)``
    and ``_update(params, grads, state, step) -> (new_params, new_state)``.
    """

    def __init__(self, module: Module, **hyperparameters: Any) -> None:
        if not isinstance(module, Module):
            raise ArgumentTypeError(
                f"{type(self).__name__} optimizes a portable_nn Module, got {type(module).__module__}."
                f"{type(module).__qualname__}"
            )
        if not module.named_parameters():
            raise ArgumentError(f"{type(self).__name__}: the module has no parameters to optimize")
        self.module = module
        self._hyper = self._validate(hyperparameters)
        self._state: State = {}
        self._step = 0

    # ---------------------------------------------------------------- hyperparameters

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """A copy of the hyperparameters (``lr``, ``momentum``, ...)."""
        return dict(self._hyper)

    @property
    def lr(self) -> float:
        """The learning rate; assignable (validated), e.g. for a schedule."""
        return self._hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self._hyper["lr"] = check_lr(value)

    @property
    def step_count(self) -> int:
        """How many ``step()`` calls have succeeded."""
        return self._step

    # ---------------------------------------------------------------- stepping

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """The per-parameter buffers kept once a step has run with these hyperparameters."""
        return ()

    def _update(
        self, params: dict[str, Array], grads: dict[str, Array], state: State, step: int
    ) -> tuple[dict[str, Array], State]:  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Forget the module's accumulated gradients."""
        self.module.zero_grad()

    def step(self) -> None:
        """Update every parameter from its gradient (all or nothing)."""
        params = self.module.named_parameters()
        grads = self.module._require_grads()
        xp, device, dtype = self.module.xp, self.module.device, self.module.dtype
        for name, grad in grads.items():
            check_like(grad, f"gradient of {name}", params[name], xp, device, dtype)
        if self._state and set(self._state) != set(params):
            raise CallOrderError(
                f"the module's parameters {sorted(params)} no longer match the optimizer's buffers "
                f"{sorted(self._state)}"
            )
        new_params, new_state = self._update(params, grads, self._state_on_module(), self._step + 1)
        # Lazy backends (Dask): parameters and buffers are stored together, so their shared work runs once
        # and no graph grows with the number of steps; elsewhere the same objects come back.
        buffers = [(name, key) for name, group in new_state.items() for key in group]
        stored = materialize(*new_params.values(), *(new_state[name][key] for name, key in buffers))
        new_params = dict(zip(new_params, stored[: len(new_params)], strict=True))
        for (name, key), value in zip(buffers, stored[len(new_params) :], strict=True):
            new_state[name][key] = value
        self.module.set_parameters(new_params)  # validates namespace/device/dtype/shape; raises before rebinding
        self._state, self._step = new_state, self._step + 1

    def _state_on_module(self) -> State:
        """The buffers, on the module's current backend, device and dtype.

        After ``module.to(xp=..., device=..., dtype=...)`` the buffers follow the module: they are
        converted (an explicit cast, as the move was) and the converted copies replace them. If
        any cannot be converted, the error is raised and nothing changes.
        """
        first = next((buffer for buffers in self._state.values() for buffer in buffers.values()), None)
        if first is None:
            return self._state
        xp, device, dtype = self.module.xp, self.module.device, self.module.dtype
        if namespace_of(first) is xp and first.dtype == dtype and device_of(first) == device:
            return self._state
        moved = {
            name: {key: convert(buffer, xp, device, dtype) for key, buffer in buffers.items()}
            for name, buffers in self._state.items()
        }
        self._state = moved
        return moved

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": name, "step": int, "hyperparameters": {...}, "state": {param: {buffer: array}}}``.

        The arrays are the live buffers (never mutated, so safe to keep), on the module's current
        placement (they follow ``module.to(...)``).
        """
        self._state_on_module()
        return {
            "optimizer": type(self).__name__,
            "step": self._step,
            "hyperparameters": dict(self._hyper),
            "state": {name: dict(buffers) for name, buffers in self._state.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`: validated first, then applied all at once.

        Buffers must be arrays of the module's backend, device and dtype with their parameter's
        shape; ``SerializationError`` for wrong keys or types, the usual typed errors otherwise.
        """
        if not isinstance(state, Mapping):
            raise SerializationError(f"expected a mapping from state_dict(), got {type(state).__name__}")
        expected_keys = {"optimizer", "step", "hyperparameters", "state"}
        if set(state) != expected_keys:
            raise SerializationError(
                f"optimizer state: expected keys {sorted(expected_keys)}, got {sorted(map(str, state))}"
            )
        if state["optimizer"] != type(self).__name__:
            raise SerializationError(
                f"state of a {state['optimizer']!r} optimizer cannot load into {type(self).__name__}"
            )
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise SerializationError(f"step must be an int >= 0, got {step!r}")
        hyper = state["hyperparameters"]
        if not isinstance(hyper, Mapping) or set(hyper) != set(self._hyper):
            given = sorted(hyper) if isinstance(hyper, Mapping) else type(hyper).__name__
            raise SerializationError(f"hyperparameters: expected keys {sorted(self._hyper)}, got {given}")
        hyper = self._validate(hyper)
        buffers = self._check_buffers(state["state"], step, hyper)
        self._hyper, self._state, self._step = hyper, buffers, step

    def _check_buffers(self, given: Any, step: int, hyper: dict[str, Any]) -> State:
        if not isinstance(given, Mapping):
            raise SerializationError(f"state: expected a mapping of parameter name -> buffers, got {type(given)}")
        params = self.module.named_parameters()
        names = self._buffer_names(hyper)
        if not given and (step == 0 or not names):
            return {}
        if set(given) != set(params):
            raise SerializationError(f"state: expected buffers for parameters {sorted(params)}, got {sorted(given)}")
        checked: State = {}
        xp, device, dtype = self.module.xp, self.module.device, self.module.dtype
        for name, buffers in given.items():
            if not isinstance(buffers, Mapping) or set(buffers) != set(names):
                got = sorted(buffers) if isinstance(buffers, Mapping) else type(buffers).__name__
                raise SerializationError(f"state[{name!r}]: expected buffers {sorted(names)}, got {got}")
            for buffer_name, array in buffers.items():
                check_like(array, f"state[{name!r}][{buffer_name!r}]", params[name], xp, device, dtype)
            checked[name] = dict(buffers)
        return checked

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    Per parameter ``p`` with gradient ``g`` (as ``torch.optim.SGD``)::

        g = g + weight_decay * p
        buf = g (first step) | momentum * buf + (1 - dampening) * g      (if momentum > 0)
        g = g + momentum * buf (nesterov) | buf
        p = p - lr * g
    """

    def __init__(
        self,
        module: Module,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(
            module, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, dampening=dampening
        )

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        checked = {
            "lr": check_lr(hyper["lr"]),
            "momentum": check_real("momentum", hyper["momentum"], low=0.0),
            "nesterov": _flag("nesterov", hyper["nesterov"]),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "dampening": check_real("dampening", hyper["dampening"], low=0.0, high=1.0),
        }
        if checked["nesterov"] and (checked["momentum"] == 0 or checked["dampening"] != 0):
            raise ArgumentError("nesterov momentum needs momentum > 0 and dampening = 0")
        return checked

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hyper["momentum"] != 0 else ()

    def _update(
        self, params: dict[str, Array], grads: dict[str, Array], state: State, step: int
    ) -> tuple[dict[str, Array], State]:
        h = self._hyper
        new_params: dict[str, Array] = {}
        new_state: State = {}
        for name, p in params.items():
            g = grads[name]
            if h["weight_decay"] != 0:
                g = g + h["weight_decay"] * p
            if h["momentum"] != 0:
                buf = g  # first step: the buffer starts as the gradient
                if name in state:
                    buf = h["momentum"] * state[name]["momentum_buffer"] + (1 - h["dampening"]) * g
                new_state[name] = {"momentum_buffer": buf}
                g = g + h["momentum"] * buf if h["nesterov"] else buf
            new_params[name] = p - h["lr"] * g
        return new_params, new_state


class Adam(Optimizer):
    """Adam, with L2 (``decoupled=False``) or decoupled (AdamW) weight decay.

    Per parameter ``p`` with gradient ``g`` at step ``t`` = 1, 2, ... (as ``torch.optim.Adam``/``AdamW``)::

        p = p * (1 - lr * weight_decay)     if decoupled,   else   g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g           (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g²
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(
        self,
        module: Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        super().__init__(module, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=decoupled)

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        betas = hyper["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgumentTypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        return {
            "lr": check_lr(hyper["lr"]),
            "betas": (
                check_real("betas[0]", betas[0], low=0.0, high=1.0, high_open=True),
                check_real("betas[1]", betas[1], low=0.0, high=1.0, high_open=True),
            ),
            "eps": check_real("eps", hyper["eps"], low=0.0),
            "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
            "decoupled": _flag("decoupled", hyper["decoupled"]),
        }

    def _buffer_names(self, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(
        self, params: dict[str, Array], grads: dict[str, Array], state: State, step: int
    ) -> tuple[dict[str, Array], State]:
        h = self._hyper
        lr, (beta1, beta2), eps, decay = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        step_size = lr / (1 - beta1**step)
        correction2_sqrt = math.sqrt(1 - beta2**step)
        xp = self.module.xp
        new_params: dict[str, Array] = {}
        new_state: State = {}
        for name, p in params.items():
            g = grads[name]
            if decay != 0:
                if h["decoupled"]:
                    p = p * (1 - lr * decay)
                else:
                    g = g + decay * p
            if name in state:
                m = beta1 * state[name]["exp_avg"] + (1 - beta1) * g
                v = beta2 * state[name]["exp_avg_sq"] + (1 - beta2) * (g * g)
            else:
                m, v = (1 - beta1) * g, (1 - beta2) * (g * g)
            new_state[name] = {"exp_avg": m, "exp_avg_sq": v}
            new_params[name] = p - step_size * (m / (xp.sqrt(v) / correction2_sqrt + eps))
        return new_params, new_state


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``; its default ``weight_decay`` is 0.01)."""

    def __init__(
        self,
        module: Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(module, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=True)

    def _validate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._validate(hyper)
        if not checked["decoupled"]:
            raise ArgumentError("AdamW always decouples weight decay (decoupled=True)")
        return checked


# ---------------------------------------------------------------- TEMPORARY compatibility shim (branch `losses`)
# The learning-rate schedulers (portable_nn.lr_scheduler) drive an optimizer through torch's contract:
# ``optimizer.param_groups``, a list of dicts each with an ``"lr"`` key. Param groups are being added to this
# module on another branch; until that lands, this shim gives every Optimizer one group that reads and writes
# its hyperparameters live (``"lr"`` validated like ``Optimizer.lr``) and keeps the schedulers' own keys
# (``initial_lr``, ``max_lr``, ...) to itself. DROP THIS WHOLE BLOCK ON MERGE when Optimizer has param_groups.


class _ShimGroup(dict):  # type: ignore[type-arg]
    """One param group over an optimizer's hyperparameters: its keys are live, other keys are kept here."""

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__()
        self._optimizer = optimizer

    def __getitem__(self, key: str) -> Any:
        hyper = self._optimizer._hyper
        return hyper[key] if key in hyper else super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        hyper = self._optimizer._hyper
        if key == "lr":
            self._optimizer.lr = value
        elif key in hyper:
            hyper[key] = value
        else:
            super().__setitem__(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._optimizer._hyper or super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - dict.get would bypass the live keys

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


def _shim_param_groups(self: Optimizer) -> list[dict[str, Any]]:
    groups = self.__dict__.get("_shim_groups")
    if groups is None:
        groups = self.__dict__["_shim_groups"] = [_ShimGroup(self)]
    return groups  # type: ignore[no-any-return]


if not hasattr(Optimizer, "param_groups"):
    Optimizer.param_groups = property(_shim_param_groups)  # type: ignore[attr-defined]
# ---------------------------------------------------------------- end of the TEMPORARY shim
