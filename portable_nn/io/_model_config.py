"""Architecture configs in checkpoints: what ``pnn.save`` records of a model and how ``pnn.load`` rebuilds it.

A model is recorded as its registered class name (:mod:`portable_nn.io.registry`) and the JSON of
its :meth:`~portable_nn.Module.get_config` (a ``Sequential``'s config nests its layers' names and
configs). Rebuilding looks every name up in the registry (never imports code), builds the model
inside :func:`portable_nn.init.placeholder` (zeros, no random draw, at most as many elements as
the file holds, checked before allocating) and checks that its parameters are exactly the file's
tensors, with the same shapes. Every failure is a ``SerializationError`` naming the file.

Configs (and optimizer records) are parsed within bounds, the same rule when saving and loading
(:func:`check_config_text`): at most ``MAX_NODES`` JSON values (counted on the text before
parsing, so the memory a config costs stays proportional to its text), nested at most
``MAX_DEPTH`` deep, no duplicate keys. ``save`` refuses a config outside them up front.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import PortableNNError, SerializationError
from ..init import placeholder
from ..nn.module import Module
from ._safetensors_format import json_items, preview, unique_keys
from .registry import lookup, registered_name

__all__ = [
    "MAX_DEPTH",
    "MAX_EMPTY_DIMENSION",
    "MAX_NODES",
    "build",
    "check_config_text",
    "check_parameters",
    "check_sizes",
    "config_of",
    "parse_config",
]

PathLike = str | os.PathLike[str]

#: Deepest nesting of lists and objects accepted in a config (a deeper one is refused before building);
#: room for the deepest ``Sequential`` (``Sequential.MAX_NESTING`` levels, 3 each) and its layers' configs.
MAX_DEPTH = 256
#: Most JSON items (values and keys) accepted in a config, counted before parsing as the ``[``, ``{``, ``,``
#: and ``:`` outside strings, plus one (an empty object or array counts 2): parsing one costs about 100
#: bytes at most, so a config never takes more than ~100 MB to read.
MAX_NODES = 1_000_000
#: A parameter's dimension may exceed the file's size in bytes (only an empty tensor's can) up to this:
#: ``Linear(0, 10**18)`` declares no byte but cannot run a forward pass.
MAX_EMPTY_DIMENSION = 2**20


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
    except RecursionError:
        raise SerializationError(
            f"{type(module).__name__}.get_config() is nested too deeply to save (at most {MAX_DEPTH} levels)"
        ) from None
    check_config_text(f"cannot save this {type(module).__name__}", text)
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


def _loads(text: str) -> Any:
    """``text``'s JSON value within the bounds; ``ValueError`` (or RecursionError) naming what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected JSON text, got {type(text).__name__}")
    nodes = json_items(text, MAX_NODES)
    if nodes > MAX_NODES:
        raise ValueError(f"{nodes} or more JSON items, more than the {MAX_NODES} a config may hold")
    config = json.loads(text, object_pairs_hook=unique_keys)
    if _depth(config) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return config


def check_config_text(what: str, text: str) -> None:
    """Refuse (``SerializationError`` starting with ``what``) a config ``text`` that :func:`parse_config` would."""
    try:
        _loads(text)
    except RecursionError:
        raise SerializationError(f"{what}: its config is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise SerializationError(f"{what}: its config cannot be loaded back ({exc})") from None


def parse_config(path: PathLike, text: str) -> Any:
    """The JSON value of a stored config; ``SerializationError`` if unreadable, too large or nested too deeply.

    The rule is :func:`check_config_text`'s (``save`` applies it before writing): at most
    ``MAX_NODES`` values (counted before parsing), ``MAX_DEPTH`` levels, no duplicate keys.
    """
    try:
        return _loads(text)
    except RecursionError:
        raise SerializationError(f"{path}: the layer config is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise SerializationError(f"{path}: unreadable layer config {preview(text)} ({exc})") from None


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
        raise SerializationError(f"{path}: invalid layer config for {class_name} {preview(config)}: {exc}") from None
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
    """The model's parameters and buffers must be exactly the file's tensors ``shapes``, with the same shapes."""
    expected = {name: tuple(p.shape) for name, p in {**model.named_parameters(), **model.named_buffers()}.items()}
    if set(expected) != set(shapes):
        raise SerializationError(
            f"{path}: a {type(model).__name__} with this config needs tensors {sorted(expected)}, "
            f"the file has {sorted(shapes)}"
        )
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise SerializationError(f"{path}: {name} has shape {shapes[name]}, the layer config needs {shape}")


def check_sizes(what: str, shapes: dict[str, tuple[int, ...]], file_size: int) -> None:
    """Every dimension at most ``max(file_size, MAX_EMPTY_DIMENSION)`` (the rule of ``save`` and ``load``).

    A tensor that holds data has every dimension within the file's size in bytes; an empty one
    (a zero dimension) declares no byte, so without this rule a zero-byte file could declare
    ``Linear(0, 10**18)``, which loads and fails at the first forward pass.
    """
    bound = max(file_size, MAX_EMPTY_DIMENSION)
    for name, shape in shapes.items():
        if any(size > bound for size in shape):
            raise SerializationError(
                f"{what}: {name} has shape {shape} in a {file_size}-byte file: a dimension over "
                f"max(file size, {MAX_EMPTY_DIMENSION}) = {bound} (an empty tensor declaring a huge layer) is refused"
            )
