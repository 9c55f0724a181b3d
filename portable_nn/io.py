"""Checkpoints in the safetensors format: ``save``, ``load``, ``load_state``, ``load_metadata``. Never pickle.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON header
``{"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}``
(padded with spaces), then the raw little-endian tensor bytes; offsets count from the end of
the header and tile the data exactly. Files written here load with the ``safetensors``
package (``safetensors.torch.load_file``...) and files it writes load here.

Reading validates the whole file (header, dtypes, shapes, offsets: no overlap, no hole, no
byte out of range) before creating any array, so a bad file raises SerializationError and
nothing is half-loaded. Writes go to a temporary file in the same directory, are fsynced and
then atomically renamed over ``path``: a crash leaves the old checkpoint or the new one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._backend import (
    convert,
    dtype_name,
    namespace_of,
    resolve_device,
    resolve_namespace,
    supported_dtypes,
    to_host,
)
from .errors import ArgumentError, ArgumentTypeError, DTypeError, SerializationError
from .linear import Linear
from .module import Module

__all__ = ["load", "load_metadata", "load_state", "save"]

Array = Any
PathLike = str | os.PathLike

#: safetensors dtype code <-> portable dtype name, and the little-endian NumPy dtype of the raw bytes.
_CODES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32", "float64": "F64"}
_NAMES = {code: name for name, code in _CODES.items()}
_RAW = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
_MAX_HEADER = 100_000_000  # the reference implementation's limit
_PREFIX = "portable_nn."
_FIELDS = {"dtype", "shape", "data_offsets"}


# --------------------------------------------------------------------------- save


def save(
    layer_or_state: Module | Mapping[str, Array], path: PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a layer's (or a state dict's) arrays to ``path`` as safetensors, atomically.

    Arrays may come from any backend and device; each keeps its dtype (bfloat16 as ``BF16``).
    The header's ``__metadata__`` records ``portable_nn.version``, ``portable_nn.class``,
    ``portable_nn.config`` (JSON: ``in_features``, ``out_features``, ``bias`` for a Linear),
    ``portable_nn.dtype`` and ``portable_nn.layout`` (``out_in``), plus the caller's
    ``metadata`` (str -> str; the ``portable_nn.`` prefix is reserved).
    """
    from . import __version__

    if isinstance(layer_or_state, Module):
        state, kind = layer_or_state.state_dict(), type(layer_or_state).__name__
    elif isinstance(layer_or_state, Mapping):
        state, kind = dict(layer_or_state), "state_dict"
    else:
        kind = type(layer_or_state).__name__
        raise ArgumentTypeError(f"save expects a Module or a mapping of name -> array, got {kind}")
    info = {
        f"{_PREFIX}version": __version__,
        f"{_PREFIX}class": kind,
        f"{_PREFIX}layout": "out_in",
    }
    if isinstance(layer_or_state, Linear):
        config = {"in_features": layer_or_state.in_features, "out_features": layer_or_state.out_features}
        info[f"{_PREFIX}config"] = json.dumps(config | {"bias": layer_or_state.bias is not None})
    chunks, header = _encode(state)
    dtypes = {entry["dtype"] for entry in header.values()}
    if len(dtypes) == 1:
        info[f"{_PREFIX}dtype"] = _NAMES[dtypes.pop()]
    header = {"__metadata__": _user_metadata(metadata) | info, **header}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the reference writer does
    _write_atomic(Path(os.fspath(path)), [len(text).to_bytes(8, "little"), text, *chunks])


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


def _encode(state: dict[str, Array]) -> tuple[list[bytes], dict[str, dict[str, Any]]]:
    """Raw little-endian bytes of every array and their header entries (validated before writing)."""
    chunks, header, offset = [], {}, 0
    for name, array in state.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ArgumentError(f"tensor names must be non-empty strings other than '__metadata__', got {name!r}")
        dtype = dtype_name(namespace_of(array), array.dtype)
        if dtype not in _CODES:
            raise DTypeError(f"{name}: only floating arrays can be saved ({', '.join(_CODES)}), got dtype {dtype}")
        host = to_host(array)  # bfloat16 comes back as (exactly representable) float32
        if dtype == "bfloat16":
            raw = (np.ascontiguousarray(host, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
        else:
            raw = np.ascontiguousarray(host, dtype=_RAW[_CODES[dtype]])
        data = raw.tobytes()
        header[name] = {
            "dtype": _CODES[dtype],
            "shape": [int(d) for d in host.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    return chunks, header


def _write_atomic(path: Path, chunks: list[bytes]) -> None:
    """Write to a fresh temporary file next to ``path``, fsync it, rename it over ``path``, fsync the folder."""
    directory = path.parent if str(path.parent) else Path(".")
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # folders cannot be opened for fsync on Windows
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --------------------------------------------------------------------------- load


def load(path: PathLike, *, xp: Any = "numpy", device: Any = None, dtype: Any = None) -> Linear:
    """The ``Linear`` saved in ``path``, on ``xp``/``device`` (None = the backend's default device).

    ``dtype`` None keeps the file's dtype (a bfloat16 file into NumPy is a DTypeError: pass
    ``dtype="float32"``, lossless); a given ``dtype`` is an explicit cast. Files without
    portable_nn metadata (e.g. ``safetensors.torch.save_file(torch_linear.state_dict(), path)``)
    load when they hold exactly ``weight`` (out, in) and optionally ``bias`` (out,).
    """
    tensors, metadata = _read(path)
    kind = metadata.get(f"{_PREFIX}class", "Linear")
    if kind != "Linear":
        raise SerializationError(f"{path} holds a {kind}, not a Linear: use load_state() and load_state_dict()")
    in_features, out_features, has_bias = _linear_config(path, tensors, metadata)
    expected = {"weight": (out_features, in_features)} | ({"bias": (out_features,)} if has_bias else {})
    if set(tensors) != set(expected):
        raise SerializationError(f"{path}: a Linear needs tensors {sorted(expected)}, the file has {sorted(tensors)}")
    for name, shape in expected.items():
        if tensors[name][1].shape != shape:
            raise SerializationError(
                f"{path}: {name} has shape {tensors[name][1].shape}, the layer config needs {shape} "
                f"(in_features={in_features}, out_features={out_features})"
            )
    names = {file_dtype for file_dtype, _ in tensors.values()}
    if dtype is None and len(names) != 1:
        raise SerializationError(f"{path}: weight and bias have different dtypes {sorted(names)}; pass dtype=")
    target_xp = resolve_namespace(xp)
    target_dtype = dtype if dtype is not None else _checked_file_dtype(path, target_xp, names.pop())
    weight, bias = tensors["weight"][1], tensors["bias"][1] if has_bias else None
    return Linear.from_arrays(weight, bias, xp=target_xp, device=resolve_device(target_xp, device), dtype=target_dtype)


def load_state(path: PathLike, *, xp: Any = "numpy", device: Any = None, dtype: Any = None) -> dict[str, Array]:
    """Name -> array of every tensor in a safetensors file, on ``xp``/``device``; for ``load_state_dict``.

    ``dtype`` None keeps each tensor's file dtype; a given ``dtype`` is an explicit cast.
    """
    tensors, _ = _read(path)
    target_xp = resolve_namespace(xp)
    target_device = resolve_device(target_xp, device)
    chosen = {
        name: dtype if dtype is not None else _checked_file_dtype(path, target_xp, file_dtype)
        for name, (file_dtype, _) in tensors.items()
    }
    return {name: convert(host, target_xp, target_device, chosen[name]) for name, (_, host) in tensors.items()}


def load_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (the whole file is validated)."""
    return _read(path)[1]


def _checked_file_dtype(path: PathLike, xp: Any, name: str) -> str:
    if name not in supported_dtypes(xp):
        raise DTypeError(
            f"{path} holds {name} tensors but this backend has no {name}; "
            "pass dtype= to cast explicitly (dtype='float32' is lossless from bfloat16 and float16)"
        )
    return name


def _linear_config(
    path: PathLike, tensors: dict[str, tuple[str, np.ndarray]], metadata: dict[str, str]
) -> tuple[int, int, bool]:
    """``(in_features, out_features, bias)`` from the metadata, else inferred from ``weight``/``bias``."""
    text = metadata.get(f"{_PREFIX}config")
    if text is None:
        weight = tensors.get("weight")
        if weight is None or weight[1].ndim != 2:
            raise SerializationError(f"{path}: no layer config and no 2-D 'weight' tensor to infer one from")
        out_features, in_features = weight[1].shape
        return in_features, out_features, "bias" in tensors
    try:
        config = json.loads(text)
        in_features, out_features, has_bias = config["in_features"], config["out_features"], config["bias"]
    except (ValueError, TypeError, KeyError) as exc:
        raise SerializationError(f"{path}: unreadable layer config {text!r} ({exc})") from None
    sizes_ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (in_features, out_features))
    if not sizes_ok or not isinstance(has_bias, bool):
        raise SerializationError(f"{path}: invalid layer config {text!r}")
    return in_features, out_features, has_bias


# --------------------------------------------------------------------------- parsing


def _read(path: PathLike) -> tuple[dict[str, tuple[str, np.ndarray]], dict[str, str]]:
    """``({name: (dtype name, host array)}, metadata)``: the whole file validated, then decoded."""
    data = Path(os.fspath(path)).read_bytes()
    _refuse_foreign(path, data)
    if len(data) < 8:
        raise SerializationError(f"{path}: truncated: {len(data)} bytes, shorter than the 8-byte header length")
    size = int.from_bytes(data[:8], "little")
    if size > _MAX_HEADER or 8 + size > len(data):
        raise SerializationError(
            f"{path}: not a safetensors file or truncated: header length {size} does not fit in {len(data)} bytes"
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{path}: the safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SerializationError(f"{path}: __metadata__ must map str -> str")
    buffer = memoryview(data)[8 + size :]
    entries = {name: _entry(path, name, info, len(buffer)) for name, info in header.items()}
    _check_tiling(path, entries, len(buffer))
    tensors = {
        name: (_NAMES[code], _decode(buffer, code, shape, begin)) for name, (code, shape, begin, _) in entries.items()
    }
    return tensors, metadata


def _refuse_foreign(path: PathLike, data: bytes) -> None:
    """Name what a non-safetensors file is, without ever interpreting it (no unpickling)."""
    if data[:4] == b"PK\x03\x04":
        raise SerializationError(
            f"{path} is a zip archive, which is what torch.save writes (a pickle inside a zip), not safetensors. "
            "portable_nn never unpickles (it can run arbitrary code). If you trust the file, convert it in "
            "PyTorch: pnn.save(torch.load(path, weights_only=True), 'model.safetensors')"
        )
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise SerializationError(
            f"{path} is a Python pickle (protocol {data[1]}, e.g. a legacy torch.save file), not safetensors; "
            "portable_nn never unpickles (it can run arbitrary code)"
        )
    if data[:6] == b"\x93NUMPY":
        raise SerializationError(f"{path} is a NumPy .npy file, not safetensors")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(path: PathLike, name: str, info: Any, buffer_size: int) -> tuple[str, tuple[int, ...], int, int]:
    """``(dtype code, shape, begin, end)`` of one header entry, checked against the data size."""
    if not isinstance(info, dict) or set(info) != _FIELDS:
        raise SerializationError(f"{path}: tensor {name!r} must have exactly the fields {sorted(_FIELDS)}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _RAW:
        raise SerializationError(
            f"{path}: tensor {name!r} has dtype {code!r}; portable_nn reads floating tensors {sorted(_RAW)}"
        )
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise SerializationError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise SerializationError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    if begin > end or end > buffer_size:
        raise SerializationError(
            f"{path}: tensor {name!r} data_offsets [{begin}, {end}] are out of range of the {buffer_size} data bytes"
        )
    expected = math.prod(shape) * np.dtype(_RAW[code]).itemsize
    if end - begin != expected:
        raise SerializationError(
            f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {code} needs {expected} bytes, "
            f"its data_offsets span {end - begin}"
        )
    return code, tuple(shape), begin, end


def _check_tiling(path: PathLike, entries: dict[str, tuple[str, tuple[int, ...], int, int]], buffer_size: int) -> None:
    """The tensors' byte ranges must cover the data exactly: no overlap, no hole, nothing after."""
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != position:
            what = "overlaps the previous tensor" if begin < position else f"leaves a hole at byte {position}"
            raise SerializationError(f"{path}: tensor {name!r} at data_offsets [{begin}, {end}] {what}")
        position = end
    if position != buffer_size:
        raise SerializationError(f"{path}: {buffer_size - position} data bytes after the last tensor belong to none")


def _decode(buffer: memoryview, code: str, shape: tuple[int, ...], begin: int) -> np.ndarray:
    """A fresh, writable, native-endian host array (bfloat16 widened exactly to float32)."""
    raw = np.frombuffer(buffer, dtype=_RAW[code], count=math.prod(shape), offset=begin).reshape(shape)
    if code == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(raw.dtype.newbyteorder("="))
