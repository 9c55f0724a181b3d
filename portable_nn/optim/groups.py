"""Parameter groups of a Module-centred optimizer: which parameters share which hyperparameters.

``param_groups=[{"params": selector, **overrides}, ...]`` where ``selector`` is a parameter name
(``"0.bias"``), a list or tuple of names, or a predicate ``name -> bool``. Parameters no group
selects form the *default group*, always ``param_groups[0]`` (with the constructor's
hyperparameters; possibly with no parameters); the given groups follow in order. Every
parameter belongs to exactly one group; a group selecting nothing, a name the module lacks or
a parameter selected twice is a typed error. Each group is a dict ``{"params": [names], "lr":
..., ...}`` like ``torch.optim``'s, so code that writes ``optimizer.param_groups[i]["lr"]`` (an
lr scheduler) works; the values are validated again when the optimizer next steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, UnknownParameterError

__all__ = ["Group", "build_groups", "selected_names"]

Group = dict[str, Any]
Validate = Callable[[Mapping[str, Any]], dict[str, Any]]


def selected_names(selector: Any, names: Sequence[str], index: int) -> list[str]:
    """The parameter names (in module order) that group ``index``'s ``selector`` picks."""
    where = f"param_groups[{index}]['params']"
    if isinstance(selector, str):
        selector = [selector]
    if isinstance(selector, (list, tuple)):
        for name in selector:
            if not isinstance(name, str):
                raise ArgumentTypeError(f"{where}: parameter names must be str, got {type(name).__name__}")
            if name not in names:
                raise UnknownParameterError(f"{where}: the module has no parameter {name!r}; parameters: {list(names)}")
        if len(set(selector)) != len(selector):
            raise ArgumentError(f"{where}: a parameter is named twice in {list(selector)}")
        wanted = set(selector)
        return [n for n in names if n in wanted]
    if callable(selector) and not hasattr(selector, "shape"):
        picked = []
        for name in names:
            verdict = selector(name)
            if not isinstance(verdict, bool):
                raise ArgumentTypeError(f"{where}: the predicate must return a bool, got {type(verdict).__name__}")
            if verdict:
                picked.append(name)
        return picked
    raise ArgumentTypeError(
        f"{where}: expected a parameter name, a list of names or a predicate name -> bool, "
        f"got {type(selector).__name__}"
    )


def build_groups(
    names: Sequence[str], defaults: dict[str, Any], given: Any, validate: Validate
) -> tuple[list[Group], list[tuple[str, ...]]]:
    """``(param_groups, names per group)``: the default group first, then one group per entry of ``given``."""
    if given is None:
        given = []
    if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, (list, tuple)):
        raise ArgumentTypeError(f"param_groups must be a list of dicts, got {type(given).__name__}")
    owner: dict[str, int] = {}
    groups: list[Group] = []
    members: list[tuple[str, ...]] = []
    for index, entry in enumerate(given, start=1):
        if not isinstance(entry, Mapping):
            raise ArgumentTypeError(f"param_groups[{index - 1}] must be a dict, got {type(entry).__name__}")
        if "params" not in entry:
            raise ArgumentError(f"param_groups[{index - 1}] has no 'params' (a name, names or a predicate)")
        unknown = sorted(set(entry) - set(defaults) - {"params"})
        if unknown:
            raise ArgumentError(
                f"param_groups[{index - 1}]: unknown hyperparameters {unknown}; known: {['params', *defaults]}"
            )
        picked = selected_names(entry["params"], names, index - 1)
        if not picked:
            raise ArgumentError(f"param_groups[{index - 1}] selects no parameter; parameters: {list(names)}")
        for name in picked:
            if name in owner:
                raise ArgumentError(
                    f"parameter {name!r} is in param_groups[{owner[name] - 1}] and param_groups[{index - 1}]: "
                    "every parameter belongs to exactly one group"
                )
            owner[name] = index
        overrides = {k: v for k, v in entry.items() if k != "params"}
        hyper = validate({**defaults, **overrides})
        groups.append({"params": picked, **hyper})
        members.append(tuple(picked))
    rest = [n for n in names if n not in owner]
    return [{"params": rest, **defaults}, *groups], [tuple(rest), *members]
