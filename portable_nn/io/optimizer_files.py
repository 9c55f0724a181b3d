"""An optimizer's state in a checkpoint: written by ``save(..., optimizer=opt)``, read back by ``load_optimizer``.

The buffers are tensors ``optimizer/<parameter>/<buffer>``; the class's registered name
(:func:`~portable_nn.register_optimizer`), the step count, the hyperparameters and the parameter
groups are JSON in the header's ``portable_nn.optimizer`` entry. The values are validated by the
optimizer's own ``load_state_dict``, so a file loads exactly when the state would load in memory.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from .._backend import convert, dtype_name
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, PortableNNError, SerializationError
from ..nn.module import Module
from ..optim import Optimizer
from ..typing import Array
from ._arguments import OPTIMIZER, PREFIX, PathLike, checked_path
from ._model_config import check_config_text, parse_config
from ._safetensors_format import NAMES, open_regular, preview, read_header, read_tensors
from .registry import lookup_optimizer, registered_optimizer_name

__all__ = ["load_optimizer"]


def optimizer_record(optimizer: Optimizer) -> tuple[dict[str, Array], str]:
    """The optimizer's buffers as tensors ``optimizer/<param>/<buffer>`` and the rest of its state as JSON."""
    name = registered_optimizer_name(type(optimizer))
    if name is None:
        raise ArgumentError(
            f"{type(optimizer).__name__} is not a registered optimizer; register it with pnn.register_optimizer"
        )
    state = optimizer.state_dict()
    buffers = {
        f"{OPTIMIZER}{param}/{buffer}": array
        for param, group in state["state"].items()
        for buffer, array in group.items()
    }
    rest = {key: value for key, value in state.items() if key not in ("optimizer", "state")}
    try:
        text = json.dumps({"class": name, **rest}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{type(optimizer).__name__}'s state is not JSON-able: {exc}") from None
    check_config_text(f"cannot save {type(optimizer).__name__}'s state", text)  # the rule load_optimizer reads by
    return buffers, text


def load_optimizer(path: PathLike, model: Module, *, cast: bool = False) -> Optimizer:
    """A new optimizer of ``model`` holding the state saved with ``pnn.save(model, path, optimizer=opt)``.

    The buffers are placed like ``model`` (any backend or device); their dtype must be the
    model's unless ``cast=True``. Training then continues exactly as without the save: same
    step count, hyperparameters and buffers. A file without optimizer state, an unknown
    optimizer class or buffers that do not match the model's parameters: ``SerializationError``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``pnn.save(model, path, optimizer=opt)``.
    model : Module
        The model to optimize, with the parameters the optimizer was saved for (e.g. ``pnn.load(path)``).
    cast : bool
        Whether buffers whose dtype differs from the model's are cast to it (default False: a ``DTypeError``).

    Returns
    -------
    Optimizer
        A new optimizer of ``model``, of the registered class named in the file, with its saved hyperparameters,
        parameter groups, step count and buffers (on ``model``'s backend, device and dtype).

    Raises
    ------
    ArgumentTypeError
        ``model`` is not a ``Module``, or ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The file is not valid, holds no optimizer state, names an unregistered optimizer class, or its state
        does not load into ``model``'s parameters.
    DTypeError
        A buffer's dtype is not the model's and ``cast`` is False.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> opt = pnn.SGD(model, lr=0.1, momentum=0.9)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> pnn.save(model, path, optimizer=opt)
    >>> pnn.load_optimizer(path, pnn.load(path))
    SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(f"load_optimizer needs the model to optimize, got {type(model).__name__}")
    path = checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        text = header.metadata.get(f"{PREFIX}optimizer")
        if text is None:
            raise SerializationError(f"{path} holds no optimizer state (save with pnn.save(..., optimizer=opt))")
        record = parse_config(path, text)
        if not isinstance(record, dict) or "class" not in record:
            raise SerializationError(f"{path}: unreadable optimizer record {preview(text)}")
        cls = lookup_optimizer(record.pop("class"))
        expected = dtype_name(model.xp, model.dtype)
        names = [n for n in header.entries if n.startswith(OPTIMIZER)]
        for name in names:
            given = NAMES[header.entries[name].code]
            if given != expected and not cast:
                raise DTypeError(f"{path}: buffer {name} is {given}, the model is {expected}; pass cast=True")
        buffers: dict[str, dict[str, Array]] = {}
        for name, _, host in read_tensors(path, fh, header, names):
            param, _, buffer = name[len(OPTIMIZER) :].rpartition("/")
            buffers.setdefault(param, {})[buffer] = convert(host, model.xp, model.device, model.dtype)
    try:
        # The constructor only shapes the optimizer (its groups); load_state_dict then sets and validates every
        # value by the in-memory rule, so the file loads exactly when the state would load in memory (a schedule
        # may leave an lr the constructor refuses, e.g. LinearLR ending at 0: -3.5e-18 by rounding).
        hyper = record.get("hyperparameters")
        accepted = inspect.signature(cls).parameters
        kwargs = {k: v for k, v in _constructible(hyper).items() if k in accepted} if isinstance(hyper, dict) else {}
        groups = record.get("param_groups")
        if isinstance(groups, list) and len(groups) > 1 and "param_groups" in accepted:
            # the default group (0) is every parameter not named in these
            kwargs["param_groups"] = [_constructible(g) if isinstance(g, dict) else g for g in groups[1:]]
        optimizer: Optimizer = cls(model, **kwargs)
        optimizer.load_state_dict({"optimizer": type(optimizer).__name__, **record, "state": buffers})
    except (PortableNNError, TypeError, ValueError) as exc:
        raise SerializationError(f"{path}: the optimizer state does not load into this model: {exc}") from None
    return optimizer


def _constructible(hyper: dict[str, Any]) -> dict[str, Any]:
    """``hyper`` with a real ``lr`` made non-negative, for the constructor (load_state_dict sets the true value)."""
    lr = hyper.get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return {**hyper, "lr": abs(lr)}
    return hyper
