"""A whole model in a checkpoint: ``save`` writes it (or a state dict), ``load`` rebuilds it on any backend.

``save`` writes the parameters as tensors and, in the header's ``__metadata__``, the registered
class name and JSON config (``portable_nn.class``, ``portable_nn.config``; see
:mod:`portable_nn.io._model_config`), optionally an optimizer's state
(:mod:`portable_nn.io.optimizer_files`). ``load`` rebuilds any registered model (``Linear``,
activations, nested ``Sequential``, user layers decorated with :func:`portable_nn.register`) on
any backend, device and dtype; the header, the config and the parameter table are validated
before anything is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._backend import convert, dtype_name, from_host, namespace_of, resolve_device, resolve_dtype, resolve_namespace
from ..errors import ArgumentError, ArgumentTypeError, PortableNNError, SerializationError
from ..nn.module import Module
from ..optim import Optimizer
from ..typing import Array
from ._arguments import OPTIMIZER, PREFIX, PathLike, checked_file_dtype, checked_path
from ._atomic_write import check_target, write_atomic
from ._model_config import build, check_parameters, check_sizes, config_of, parse_config
from ._safetensors_format import (
    INTEGER_CODE,
    NAMES,
    Header,
    encode,
    header_bytes,
    open_regular,
    read_header,
    read_tensors,
)
from .optimizer_files import optimizer_record

__all__ = ["load", "save"]


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

    path = checked_path(path)
    check_target(path)
    info = {f"{PREFIX}version": __version__, f"{PREFIX}layout": "out_in"}
    if isinstance(model_or_state, Module):
        state = model_or_state.state_dict()
        kind, config = config_of(model_or_state)
        info[f"{PREFIX}class"] = kind
        if config is not None:
            info[f"{PREFIX}config"] = config
        streams = model_or_state.random_streams()
        if streams:  # where Dropout's masks stand: training resumes bit for bit
            info[f"{PREFIX}random_streams"] = json.dumps(streams)
    elif isinstance(model_or_state, Mapping):
        state, info[f"{PREFIX}class"] = dict(model_or_state), "state_dict"
    else:
        kind = type(model_or_state).__name__
        raise ArgumentTypeError(f"save expects a Module or a mapping of name -> array, got {kind}")
    if optimizer is not None:
        if not isinstance(model_or_state, Module) or getattr(optimizer, "module", None) is not model_or_state:
            raise ArgumentError("optimizer= must be an optimizer of the model being saved")
        buffers, info[f"{PREFIX}optimizer"] = optimizer_record(optimizer)
        state |= buffers
    user = _user_metadata(metadata)
    integer_buffers: tuple[str, ...] = ()
    if isinstance(model_or_state, Module):  # a model's integer buffers (num_batches_tracked) are saved as I64
        buffers = model_or_state.named_buffers()
        integer_buffers = tuple(n for n, b in buffers.items() if namespace_of(b).isdtype(b.dtype, "integral"))
    chunks, entries = encode(state, integer_buffers)
    dtypes = {entry["dtype"] for entry in entries.values()}
    if len(dtypes) == 1:
        info[f"{PREFIX}dtype"] = NAMES[dtypes.pop()]
    header = header_bytes(user | info, entries, what=f"cannot save to {path}")
    if isinstance(model_or_state, Module):
        file_size = len(header) + sum(len(chunk) for chunk in chunks)
        shapes = {name: tuple(entry["shape"]) for name, entry in entries.items()}
        check_sizes(f"cannot save to {path}", shapes, file_size)
    write_atomic(path, [header, *chunks])


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ArgumentTypeError(f"metadata must be a mapping of str -> str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentTypeError(f"metadata must map str -> str (safetensors' rule), got {key!r}: {value!r}")
        if key.startswith(PREFIX):
            raise ArgumentError(f"metadata key {key!r}: the prefix {PREFIX!r} is reserved for portable_nn")
    return dict(metadata)


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
    path = checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        metadata = header.metadata
        names = [n for n in header.entries if not (f"{PREFIX}optimizer" in metadata and n.startswith(OPTIMIZER))]
        check_sizes(str(path), {n: header.entries[n].shape for n in names}, header.file_size)
        kind = metadata.get(f"{PREFIX}class", "Linear")
        if kind == "state_dict":
            raise SerializationError(f"{path} holds a state_dict, not a model: use load_state() and load_state_dict()")
        text = metadata.get(f"{PREFIX}config")
        config = _inferred_linear_config(path, header, kind) if text is None else parse_config(path, text)
        target_xp = resolve_namespace(xp)
        target_device = resolve_device(target_xp, device)
        file_dtypes = header.dtype_names(n for n in names if header.entries[n].code != INTEGER_CODE)
        if dtype is None and len(file_dtypes) > 1:
            raise SerializationError(f"{path}: the parameters have different dtypes {sorted(file_dtypes)}; pass dtype=")
        if dtype is None:
            dtype = checked_file_dtype(path, target_xp, file_dtypes.pop()) if file_dtypes else "float32"
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
        streams = metadata.get(f"{PREFIX}random_streams")
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
