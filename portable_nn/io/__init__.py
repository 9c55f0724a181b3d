"""Checkpoints in the safetensors format: ``save``, ``load``, ``load_state``, ``load_metadata``, ``load_optimizer``.

Never pickle. ``save`` writes a whole model: its parameters as tensors and, in the header's
``__metadata__``, its registered class name and JSON config (``portable_nn.class``,
``portable_nn.config``; see :mod:`portable_nn.io._model_config`), optionally an optimizer's state
(buffers as tensors ``optimizer/<parameter>/<buffer>``, the rest as JSON in
``portable_nn.optimizer``). ``load`` rebuilds any registered model (``Linear``, activations,
nested ``Sequential``, user layers decorated with :func:`portable_nn.register`) on any backend,
device and dtype. Files load with the ``safetensors`` package and files it writes load here.

Reading validates the whole file (see :mod:`portable_nn.io._safetensors_format`), the config and
the parameter table before building anything, so a bad file raises SerializationError and
nothing is half-loaded; writes are atomic (:mod:`portable_nn.io._atomic_write`).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from typing import Any

from .._backend import (
    convert,
    dtype_name,
    from_host,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
)
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, PortableNNError, SerializationError
from ..nn.module import Module
from ..optim import Optimizer
from ..typing import Array
from ._atomic_write import check_target, write_atomic
from ._model_config import build, check_config_text, check_parameters, check_sizes, config_of, parse_config
from ._safetensors_format import (
    INTEGER_CODE,
    NAMES,
    Header,
    encode,
    header_bytes,
    open_regular,
    preview,
    read_header,
    read_tensors,
)
from .registry import lookup_optimizer, registered_optimizer_name

__all__ = ["load", "load_metadata", "load_optimizer", "load_state", "save"]

PathLike = str | os.PathLike[str]

_PREFIX = "portable_nn."
_OPTIMIZER = "optimizer/"


# --------------------------------------------------------------------------- save


def save(
    model_or_state: Module | Mapping[str, Array],
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    optimizer: Optimizer | None = None,
) -> None:
    """Write a model (or a state dict), and optionally its optimizer's state, to ``path`` as safetensors.

    Everything is checked before the file is written, atomically: a failed save leaves ``path`` as it was.

    Parameters
    ----------
    model_or_state : Module or mapping of str to array
        A model: its ``state_dict()`` is written with its architecture (registered class name and
        ``get_config()`` JSON) so that :func:`load` rebuilds it; an unregistered class is saved as
        state only (:func:`load_state`). A mapping: its arrays (any backend and device, floating
        dtypes; bfloat16 as ``BF16``).
    path : str or os.PathLike
        The file, replaced atomically. A symbolic link is followed, the file's permission bits are
        kept; a directory, FIFO or device is refused (``SerializationError``) before anything is written.
    metadata : mapping of str to str, optional
        Stored in ``__metadata__`` (the ``portable_nn.`` prefix is reserved; text must be valid UTF-8).
    optimizer : Optimizer, optional
        An optimizer of this model: its buffers, step count and hyperparameters, for :func:`load_optimizer`.

    Raises
    ------
    ArgumentTypeError
        ``model_or_state`` is neither a ``Module`` nor a mapping; ``path`` is not a ``str`` or ``os.PathLike``;
        ``metadata`` does not map ``str`` to ``str``.
    ArgumentError
        ``optimizer`` does not optimize this model (or a state dict was given), its class is not registered
        (:func:`~portable_nn.register_optimizer`) or its state is not JSON-able; a ``metadata`` key starts
        with the reserved ``portable_nn.`` prefix; a state dict's name is empty or ``"__metadata__"``.
    SerializationError
        ``path`` is a directory, FIFO or device; the model's ``get_config()`` is not JSON; the header or the
        tensors exceed the format's limits.
    DTypeError
        An array is not of a floating dtype.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> pnn.save(model, path, metadata={"run": "demo"})
    >>> type(pnn.load(path)).__name__, pnn.load_metadata(path)["run"]
    ('Sequential', 'demo')
    """
    from .. import __version__

    path = _checked_path(path)
    check_target(path)
    info = {f"{_PREFIX}version": __version__, f"{_PREFIX}layout": "out_in"}
    if isinstance(model_or_state, Module):
        state = model_or_state.state_dict()
        kind, config = config_of(model_or_state)
        info[f"{_PREFIX}class"] = kind
        if config is not None:
            info[f"{_PREFIX}config"] = config
        streams = model_or_state.random_streams()
        if streams:  # where Dropout's masks stand: training resumes bit for bit
            info[f"{_PREFIX}random_streams"] = json.dumps(streams)
    elif isinstance(model_or_state, Mapping):
        state, info[f"{_PREFIX}class"] = dict(model_or_state), "state_dict"
    else:
        kind = type(model_or_state).__name__
        raise ArgumentTypeError(f"save expects a Module or a mapping of name -> array, got {kind}")
    if optimizer is not None:
        if not isinstance(model_or_state, Module) or getattr(optimizer, "module", None) is not model_or_state:
            raise ArgumentError("optimizer= must be an optimizer of the model being saved")
        buffers, info[f"{_PREFIX}optimizer"] = _optimizer_record(optimizer)
        state |= buffers
    user = _user_metadata(metadata)
    integer_buffers: tuple[str, ...] = ()
    if isinstance(model_or_state, Module):  # a model's integer buffers (num_batches_tracked) are saved as I64
        buffers = model_or_state.named_buffers()
        integer_buffers = tuple(n for n, b in buffers.items() if namespace_of(b).isdtype(b.dtype, "integral"))
    chunks, entries = encode(state, integer_buffers)
    dtypes = {entry["dtype"] for entry in entries.values()}
    if len(dtypes) == 1:
        info[f"{_PREFIX}dtype"] = NAMES[dtypes.pop()]
    header = header_bytes(user | info, entries, what=f"cannot save to {path}")
    if isinstance(model_or_state, Module):
        file_size = len(header) + sum(len(chunk) for chunk in chunks)
        shapes = {name: tuple(entry["shape"]) for name, entry in entries.items()}
        check_sizes(f"cannot save to {path}", shapes, file_size)
    write_atomic(path, [header, *chunks])


def _checked_path(path: Any) -> PathLike:
    """``path`` if it is a ``str`` or ``os.PathLike``; an ArgumentTypeError otherwise (never a raw TypeError)."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return path


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ArgumentTypeError(f"metadata must be a mapping of str -> str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentTypeError(f"metadata must map str -> str (safetensors' rule), got {key!r}: {value!r}")
        if key.startswith(_PREFIX):
            raise ArgumentError(f"metadata key {key!r}: the prefix {_PREFIX!r} is reserved for portable_nn")
    return dict(metadata)


def _optimizer_record(optimizer: Optimizer) -> tuple[dict[str, Array], str]:
    """The optimizer's buffers as tensors ``optimizer/<param>/<buffer>`` and the rest of its state as JSON."""
    name = registered_optimizer_name(type(optimizer))
    if name is None:
        raise ArgumentError(
            f"{type(optimizer).__name__} is not a registered optimizer; register it with pnn.register_optimizer"
        )
    state = optimizer.state_dict()
    buffers = {
        f"{_OPTIMIZER}{param}/{buffer}": array
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


# --------------------------------------------------------------------------- load


def load(path: PathLike, *, xp: Any = "numpy", device: Any = None, dtype: Any = None) -> Module:
    """The model saved in ``path``, rebuilt from its registered class and config, on ``xp``/``device``.

    ``dtype`` None keeps the file's dtype (a bfloat16 file into NumPy is a DTypeError: pass
    ``dtype="float32"``, lossless); a given ``dtype`` is an explicit cast. Files without
    portable_nn metadata (e.g. ``safetensors.torch.save_file(torch_linear.state_dict(), path)``)
    load as a ``Linear`` when they hold exactly ``weight`` (out, in) and optionally ``bias`` (out,).
    The header, the config and the parameter table (names and shapes) are validated before any
    array is built: a bad file is a ``SerializationError`` naming it; an unknown class name is
    one too (define and ``@pnn.register`` the class first: no code is imported from a file).

    Parameters
    ----------
    path : str or os.PathLike
        A regular file written by :func:`save` (or by the ``safetensors`` package: see above).
    xp : str, namespace or array
        Backend of the rebuilt model: a name (``"numpy"``, the default; ``"torch"``, ...), a namespace, or an
        array whose namespace to use.
    device : str, device or None
        ``"cpu"``, ``"cuda:N"``, a native device, or None for the backend's default.
    dtype : str, dtype or None
        None (default) keeps the file's dtype; a floating dtype (``"float32"``, ...) casts explicitly.

    Returns
    -------
    Module
        The rebuilt model (its registered class, config and parameters) on ``xp``, ``device`` and ``dtype``.

    Raises
    ------
    ArgumentTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The file is not a valid checkpoint (header, config, parameter table), holds a state dict, names an
        unregistered class, or holds parameters of several dtypes while ``dtype`` is None.
    DTypeError
        The backend has no dtype for the file's tensors (e.g. bfloat16 into NumPy) and ``dtype`` is None, or
        ``dtype`` is not a floating dtype of the backend.
    UnknownBackendError
        ``xp`` names no backend.
    BackendUnavailableError
        ``xp`` names a backend that is not installed.
    DeviceError
        ``device`` is not one of the backend's devices.
    FileNotFoundError
        ``path`` does not exist (other ``OSError`` subclasses as the system reports them).

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.safetensors")
    >>> pnn.save(pnn.Linear(3, 2, seed=0), path)
    >>> pnn.load(path, xp="numpy", dtype="float64")
    Linear(in_features=3, out_features=2, bias=True, backend=numpy, device=cpu, dtype=float64)
    """
    path = _checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        metadata = header.metadata
        names = [n for n in header.entries if not (f"{_PREFIX}optimizer" in metadata and n.startswith(_OPTIMIZER))]
        check_sizes(str(path), {n: header.entries[n].shape for n in names}, header.file_size)
        kind = metadata.get(f"{_PREFIX}class", "Linear")
        if kind == "state_dict":
            raise SerializationError(f"{path} holds a state_dict, not a model: use load_state() and load_state_dict()")
        text = metadata.get(f"{_PREFIX}config")
        config = _inferred_linear_config(path, header, kind) if text is None else parse_config(path, text)
        target_xp = resolve_namespace(xp)
        target_device = resolve_device(target_xp, device)
        file_dtypes = header.dtype_names(n for n in names if header.entries[n].code != INTEGER_CODE)
        if dtype is None and len(file_dtypes) > 1:
            raise SerializationError(f"{path}: the parameters have different dtypes {sorted(file_dtypes)}; pass dtype=")
        if dtype is None:
            dtype = _checked_file_dtype(path, target_xp, file_dtypes.pop()) if file_dtypes else "float32"
        name = dtype_name(target_xp, resolve_dtype(target_xp, dtype))
        model = build(
            path,
            kind,
            config,
            xp=target_xp,
            device=target_device,
            dtype=dtype,
            max_elements=header.elements(names),
            host_dtype="float32" if name == "bfloat16" else name,
        )
        check_parameters(path, model, {n: header.entries[n].shape for n in names})
        if names:
            buffers = model.named_buffers()
            values, buffer_values = {}, {}
            for name, _, host in read_tensors(path, fh, header, names):
                integer = header.entries[name].code == INTEGER_CODE
                target = buffers.get(name)
                if integer != (target is not None and not model.xp.isdtype(target.dtype, "real floating")):
                    kind = "an integer" if integer else "a floating"
                    raise SerializationError(f"{path}: {name} is {kind} tensor, the model's {name} is not")
                if target is None:
                    values[name] = convert(host, model.xp, model.device, model.dtype)
                else:
                    buffer_values[name] = from_host(host, model.xp, model.device, target.dtype)
            model.set_parameters(values)
            model._set_buffers(buffer_values)
        streams = metadata.get(f"{_PREFIX}random_streams")
        if streams is not None:
            try:
                model.set_random_streams(json.loads(streams))
            except (ValueError, PortableNNError) as exc:
                raise SerializationError(f"{path}: invalid random stream positions: {exc}") from None
    return model


def _inferred_linear_config(path: PathLike, header: Header, kind: str) -> dict[str, Any]:
    if kind != "Linear":
        raise SerializationError(
            f"{path} holds a {kind} saved without an architecture config (its class was not registered): "
            "use load_state() and load_state_dict()"
        )
    weight = header.entries.get("weight")
    if weight is None or len(weight.shape) != 2:
        raise SerializationError(f"{path}: no layer config and no 2-D 'weight' tensor to infer one from")
    out_features, in_features = weight.shape
    return {"in_features": in_features, "out_features": out_features, "bias": "bias" in header.entries}


def load_state(path: PathLike, *, xp: Any = "numpy", device: Any = None, dtype: Any = None) -> dict[str, Array]:
    """Name -> array of every tensor in a safetensors file, on ``xp``/``device``; for ``load_state_dict``.

    ``dtype`` None keeps each tensor's file dtype; a given ``dtype`` is an explicit cast.

    Parameters
    ----------
    path : str or os.PathLike
        A regular safetensors file (a whole model, a state dict, or any file the ``safetensors`` package wrote).
    xp : str, namespace or array
        Backend of the arrays: a name (``"numpy"``, the default; ``"torch"``, ...), a namespace, or an array
        whose namespace to use.
    device : str, device or None
        ``"cpu"``, ``"cuda:N"``, a native device, or None for the backend's default.
    dtype : str, dtype or None
        None (default) keeps each tensor's dtype; a floating dtype (``"float32"``, ...) casts them all.

    Returns
    -------
    dict of str to array
        Every tensor of the file by name, each with its shape in the file (optimizer buffers included, as
        ``optimizer/<parameter>/<buffer>``).

    Raises
    ------
    ArgumentTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The file is not valid safetensors (nothing is returned).
    DTypeError
        The backend has no dtype for a tensor of the file and ``dtype`` is None, or ``dtype`` is not a
        floating dtype of the backend.
    UnknownBackendError
        ``xp`` names no backend.
    BackendUnavailableError
        ``xp`` names a backend that is not installed.
    DeviceError
        ``device`` is not one of the backend's devices.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
    >>> pnn.save(pnn.Linear(3, 2, seed=0).state_dict(), path)
    >>> state = pnn.load_state(path, dtype="float64")
    >>> sorted((name, tuple(array.shape), str(array.dtype)) for name, array in state.items())
    [('bias', (2,), 'float64'), ('weight', (2, 3), 'float64')]
    >>> model = pnn.Linear(3, 2, dtype="float64")
    >>> model.load_state_dict(state)
    """
    path = _checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        target_xp = resolve_namespace(xp)
        target_device = resolve_device(target_xp, device)
        chosen = {
            name: dtype if dtype is not None else _checked_file_dtype(path, target_xp, NAMES[entry.code])
            for name, entry in header.entries.items()
            if entry.code != INTEGER_CODE
        }
        return {  # integer tensors (a model's counters) come back as the backend's default integer dtype
            name: (
                convert(host, target_xp, target_device, chosen[name])
                if name in chosen
                else from_host(host, target_xp, target_device, target_xp.asarray(0, device=target_device).dtype)
            )
            for name, _, host in read_tensors(path, fh, header, header.entries)
        }


def load_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (the header is validated against the file; no tensor is read).

    Parameters
    ----------
    path : str or os.PathLike
        A regular safetensors file.

    Returns
    -------
    dict of str to str
        The user's ``metadata`` given to :func:`save` and portable_nn's own entries (``portable_nn.class``,
        ``portable_nn.config``, ``portable_nn.version``, ...); empty for a file without ``__metadata__``.

    Raises
    ------
    ArgumentTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The header is not valid safetensors or does not match the file's size.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> pnn.save(pnn.Linear(3, 2, seed=0), path, metadata={"run": "demo"})
    >>> metadata = pnn.load_metadata(path)
    >>> metadata["run"], metadata["portable_nn.class"]
    ('demo', 'Linear')
    """
    path = _checked_path(path)
    with open_regular(path) as fh:
        return read_header(path, fh).metadata


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
    path = _checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        text = header.metadata.get(f"{_PREFIX}optimizer")
        if text is None:
            raise SerializationError(f"{path} holds no optimizer state (save with pnn.save(..., optimizer=opt))")
        record = parse_config(path, text)
        if not isinstance(record, dict) or "class" not in record:
            raise SerializationError(f"{path}: unreadable optimizer record {preview(text)}")
        cls = lookup_optimizer(record.pop("class"))
        expected = dtype_name(model.xp, model.dtype)
        names = [n for n in header.entries if n.startswith(_OPTIMIZER)]
        for name in names:
            given = NAMES[header.entries[name].code]
            if given != expected and not cast:
                raise DTypeError(f"{path}: buffer {name} is {given}, the model is {expected}; pass cast=True")
        buffers: dict[str, dict[str, Array]] = {}
        for name, _, host in read_tensors(path, fh, header, names):
            param, _, buffer = name[len(_OPTIMIZER) :].rpartition("/")
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


def _checked_file_dtype(path: PathLike, xp: Any, name: str) -> str:
    if name not in supported_dtypes(xp):
        raise DTypeError(
            f"{path} holds {name} tensors but this backend has no {name}; "
            "pass dtype= to cast explicitly (dtype='float32' is lossless from bfloat16 and float16)"
        )
    return name
