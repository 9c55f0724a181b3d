"""Architecture configs in checkpoints: what ``pnn.save`` records of a model and how ``pnn.load`` rebuilds it.

A model is recorded as its registered class name (:mod:`portable_nn.registry`) and the JSON of
its :meth:`~portable_nn.Module.get_config` (a ``Sequential``'s config nests its layers' names and
configs). Rebuilding looks every name up in the registry (never imports code), builds the model
inside :func:`portable_nn.init.placeholder` (zeros, no random draw, at most as many elements as
the file holds, checked before allocating) and checks that its parameters are exactly the file's
tensors, with the same shapes. Every failure is a ``SerializationError`` naming the file.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import PortableNNError, SerializationError
from .init import placeholder
from .module import Module
from .registry import lookup, registered_name

__all__ = ["MAX_DEPTH", "build", "check_parameters", "config_of", "parse_config"]

PathLike = str | os.PathLike[str]

#: Deepest nesting of lists and objects accepted in a config (a deeper one is refused before building).
MAX_DEPTH = 64


def config_of(module: Module) -> tuple[str, str | None]:
    """``(class name, config JSON or None)``: None when the class is not registered (state only)."""
    name = registered_name(type(module))
    if name is None:
        return type(module).__name__, None
    config = module.get_config()
    try:
        text = json.dumps(config, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"{type(module).__name__}.get_config() must return JSON values (str, int, float, bool, None, "
            f"lists, dicts with str keys): {exc}"
        ) from None
    return name, text


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_config(path: PathLike, text: str) -> Any:
    """The JSON value of a stored config; ``SerializationError`` if unreadable or nested too deeply."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SerializationError(f"{path}: unreadable layer config {text!r:.200} ({exc})") from None
    if _depth(config) > MAX_DEPTH:
        raise SerializationError(f"{path}: the layer config is nested deeper than {MAX_DEPTH} levels")
    return config


def build(
    path: PathLike,
    class_name: str,
    config: Any,
    *,
    xp: Any,
    device: Any,
    dtype: Any,
    max_elements: int,
    host_dtype: str = "float64",
) -> Module:
    """The model ``class_name(config)`` on ``xp``/``device``/``dtype``, parameters zero placeholders."""
    cls = lookup(class_name)  # SerializationError naming an unknown class
    _check_class_names(path, config)  # every nested name too, before anything is built
    try:
        with placeholder(max_elements, host_dtype):
            model = cls.from_config(config, xp=xp, device=device, dtype=dtype)
    except SerializationError as exc:
        raise SerializationError(f"{path}: {exc}") from None
    except (PortableNNError, TypeError, ValueError, KeyError, RecursionError) as exc:
        raise SerializationError(f"{path}: invalid layer config for {class_name} {config!r:.200}: {exc}") from None
    if not isinstance(model, Module):
        raise SerializationError(f"{path}: {class_name}.from_config returned {type(model).__name__}, not a Module")
    return model


def _check_class_names(path: PathLike, config: Any) -> None:
    """Look up the class of every ``{"class": name, "config": {...}}`` nested in ``config`` (iteratively)."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if set(item) == {"class", "config"} and isinstance(item["class"], str):
                try:
                    lookup(item["class"])
                except SerializationError as exc:
                    raise SerializationError(f"{path}: {exc}") from None
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_parameters(path: PathLike, model: Module, shapes: dict[str, tuple[int, ...]]) -> None:
    """The model's parameters must be exactly the file's tensors ``shapes``, with the same shapes."""
    expected = {name: tuple(p.shape) for name, p in model.named_parameters().items()}
    if set(expected) != set(shapes):
        raise SerializationError(
            f"{path}: a {type(model).__name__} with this config needs tensors {sorted(expected)}, "
            f"the file has {sorted(shapes)}"
        )
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise SerializationError(f"{path}: {name} has shape {shapes[name]}, the layer config needs {shape}")
