"""Loading an optimizer's ``state_dict()``: everything validated first, then applied at once.

Separate from :mod:`portable_nn.optim.base` (the update rule and its two forms); reads the
optimizer's private attributes, which is why it lives inside the ``optim`` package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._checks import check_like
from ..errors import SerializationError

if TYPE_CHECKING:
    from .base import Buffers, Hyper, Optimizer

__all__ = ["load_optimizer_state"]


def load_optimizer_state(optimizer: Optimizer, state: Mapping[str, Any]) -> None:
    """Validate ``state`` (from ``state_dict()``, also one saved before param groups existed), then apply it."""
    if not isinstance(state, Mapping):
        raise SerializationError(f"expected a mapping from state_dict(), got {type(state).__name__}")
    legacy_keys = {"optimizer", "step", "hyperparameters", "state"}
    if set(state) not in (legacy_keys, {*legacy_keys, "param_groups"}):
        raise SerializationError(
            f"optimizer state: expected keys {sorted(legacy_keys | {'param_groups'})} (param_groups optional), "
            f"got {sorted(map(str, state))}"
        )
    if state["optimizer"] != type(optimizer).__name__:
        raise SerializationError(
            f"state of a {state['optimizer']!r} optimizer cannot load into {type(optimizer).__name__}"
        )
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise SerializationError(f"step must be an int >= 0, got {step!r}")
    default = _load_hyper(optimizer, "hyperparameters", state["hyperparameters"])
    if "param_groups" in state:
        groups = _load_groups(optimizer, state["param_groups"])
        if groups[0] != default:
            raise SerializationError("hyperparameters: expected the values of param_groups[0]")
    elif len(optimizer._members) == 1:
        groups = [default]
    else:
        raise SerializationError(f"state without param_groups cannot load into {len(optimizer._members)} groups")
    buffers = _check_buffers(optimizer, state["state"], step, groups)
    for group, hyper in zip(optimizer.param_groups, groups, strict=True):
        group.update(hyper)
    optimizer._state, optimizer._step, optimizer._checked, optimizer._private = buffers, step, None, False


def _load_hyper(optimizer: Optimizer, what: str, hyper: Any) -> Hyper:
    if not isinstance(hyper, Mapping):
        raise SerializationError(f"{what}: expected a mapping, got {type(hyper).__name__}")
    filled = {**{k: v for k, v in optimizer._LEGACY.items() if k not in hyper}, **hyper}
    if set(filled) != set(optimizer._keys):
        raise SerializationError(f"{what}: expected keys {sorted(optimizer._keys)}, got {sorted(hyper)}")
    return optimizer._validate_group(what, filled)


def _load_groups(optimizer: Optimizer, given: Any) -> list[Hyper]:
    if not isinstance(given, (list, tuple)) or len(given) != len(optimizer._members):
        raise SerializationError(f"param_groups: expected a list of {len(optimizer._members)} groups")
    groups = []
    for index, (group, members) in enumerate(zip(given, optimizer._members, strict=True)):
        if not isinstance(group, Mapping) or list(group.get("params", ())) != list(members):
            raise SerializationError(f"param_groups[{index}]: expected params {list(members)}")
        hyper = {k: v for k, v in group.items() if k in optimizer._keys}  # other keys (a scheduler's) are not ours
        groups.append(_load_hyper(optimizer, f"param_groups[{index}]", hyper))
    return groups


def _check_buffers(optimizer: Optimizer, given: Any, step: int, groups: list[Hyper]) -> Buffers:
    if not isinstance(given, Mapping):
        raise SerializationError(f"state: expected a mapping of parameter name -> buffers, got {type(given)}")
    params = optimizer.module.named_parameters()
    group_of = optimizer._group_of()
    expected = {name: optimizer._buffer_names(groups[group_of[name]]) for name in optimizer._names}
    with_buffers = {name for name, keys in expected.items() if keys}
    if not given and (step == 0 or not with_buffers):
        return {}
    if set(given) != with_buffers:
        raise SerializationError(f"state: expected buffers for parameters {sorted(with_buffers)}, got {sorted(given)}")
    checked: Buffers = {}
    xp, device, dtype = optimizer.module.xp, optimizer.module.device, optimizer.module.dtype
    for name in optimizer._names:
        buffers = given.get(name, {})
        if not isinstance(buffers, Mapping) or set(buffers) != set(expected[name]):
            got = sorted(buffers) if isinstance(buffers, Mapping) else type(buffers).__name__
            raise SerializationError(f"state[{name!r}]: expected buffers {sorted(expected[name])}, got {got}")
        for buffer_name, array in buffers.items():
            check_like(array, f"state[{name!r}][{buffer_name!r}]", params[name], xp, device, dtype)
        checked[name] = dict(buffers)
    return checked
