"""The safetensors format on the host: encoding arrays, and reading a file's header and tensors safely.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON header
``{"__metadata__": {str: str} | null, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}``
(padded with spaces), then the raw little-endian tensor bytes; offsets count from the end of
the header and tile the data exactly. Extra fields in a tensor entry are ignored, as the
``safetensors`` package does.

Reading opens only regular files (FIFOs, devices and folders are refused without blocking),
reads the length and the header first (bounded by ``MAX_HEADER`` and by the file's real size),
counts its JSON items before parsing it (at most ``MAX_HEADER_ITEMS``: parsing costs memory in
proportion, never gigabytes), refuses duplicate keys, validates every entry (dtype, shape,
offsets, byte counts, tiling of the data section, whose size must be the file's size minus the
header) and only then reads the tensors, each straight into a fresh array: nothing is allocated
beyond the header and the tensors themselves. Writing applies the same bounds (nothing is written
that reading would refuse).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import reprlib
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import dtype_name, namespace_of, to_host
from ..errors import ArgumentError, DTypeError, SerializationError
from ..typing import Array

__all__ = [
    "MAX_HEADER",
    "MAX_HEADER_ITEMS",
    "Header",
    "encode",
    "header_bytes",
    "json_items",
    "preview",
    "read_header",
    "read_tensors",
    "unique_keys",
    "utf8_text",
]

PathLike = str | os.PathLike[str]

#: safetensors dtype code <-> portable dtype name, and the little-endian NumPy dtype of the raw bytes.
CODES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32", "float64": "F64"}
NAMES = {code: name for name, code in CODES.items()}
_RAW = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8", "I64": "<i8"}
#: The one integer code: a model's integer buffers (``num_batches_tracked``), saved as int64 from any integer dtype.
INTEGER_CODE = "I64"
NAMES[INTEGER_CODE] = "int64"
MAX_HEADER = 100_000_000  # the reference implementation's limit
#: Most JSON items (:func:`json_items`) in a header, counted before parsing (~12 a tensor: ~160,000 tensors):
#: parsed, each costs up to ~100 bytes, so a hostile header (e.g. millions of empty lists) cannot take gigabytes.
MAX_HEADER_ITEMS = 2_000_000
_MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32  # NumPy's limit on array dimensions
_MAX_ELEMENTS = 2**63 - 1  # NumPy's limit on an array's size


_MARKS = "[{,:"  # the JSON punctuation that precedes an item
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string literal (unrolled: linear time)

_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother, _PREVIEW.maxlist, _PREVIEW.maxdict = 4, 120, 120, 8, 8


def preview(value: Any) -> str:
    """A short ``repr`` of a value read from a file, for error messages (never a copy of a huge value)."""
    return _PREVIEW.repr(value)


def json_items(text: str, limit: int) -> int:
    """How many values and keys the JSON ``text`` holds, counted without parsing it, as far as ``limit`` needs.

    Every value but the first follows a ``[``, ``,`` or ``:``, every key a ``{`` or ``,``: these
    characters outside string literals, plus one, count the items (an empty object or array counts
    2). A result within ``limit`` is an upper bound (marks inside strings may be counted too); a
    result over ``limit`` means the text holds more than ``limit`` items. The marks are counted on
    the raw text (C speed); only when that is over ``limit`` are those inside strings subtracted,
    one string at a time (no copy of the text), unless the strings alone are already too many.
    """
    count = 1 + sum(text.count(mark) for mark in _MARKS)
    if count <= limit:
        return count
    strings = (text.count('"') - text.count('\\"')) // 2  # at least this many string literals
    if strings > limit:
        return strings
    for match in _STRING.finditer(text):
        if match.end() - match.start() > 2:
            literal = match.group()
            count -= sum(literal.count(mark) for mark in _MARKS)
    return count


def _check_items(what: str, text: str) -> None:
    """Refuse a header of more than ``MAX_HEADER_ITEMS`` JSON items (the rule of reading and of writing)."""
    items = json_items(text, MAX_HEADER_ITEMS)
    if items > MAX_HEADER_ITEMS:
        raise SerializationError(
            f"{what}: the safetensors header holds {items} or more JSON items (tensors, metadata), more than the "
            f"{MAX_HEADER_ITEMS} portable_nn reads (about 160,000 tensors)"
        )


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' ``object_pairs_hook`` refusing a duplicate key (``ValueError``) instead of keeping the last."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


@dataclass(frozen=True)
class Entry:
    """One validated tensor entry: dtype code, shape and byte range within the data section."""

    code: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A validated header: metadata, entries in file order, where the data starts, the file's size."""

    metadata: dict[str, str]
    entries: dict[str, Entry]
    data_start: int
    file_size: int

    def dtype_names(self, names: Iterable[str]) -> set[str]:
        return {NAMES[self.entries[n].code] for n in names}

    def elements(self, names: Iterable[str]) -> int:
        return sum(math.prod(self.entries[n].shape) for n in names)


# --------------------------------------------------------------------------- writing


def utf8_text(value: str, what: str) -> str:
    """``value`` if it encodes as UTF-8; lone surrogates (which other readers reject) are an ``ArgumentError``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = exc.reason
        raise ArgumentError(f"{what} {value!r} is not valid Unicode text ({reason}); safetensors needs UTF-8") from None
    return value


def encode(
    state: Mapping[str, Array], integer_names: Iterable[str] = ()
) -> tuple[list[bytes], dict[str, dict[str, Any]]]:
    """Raw little-endian bytes of every array and their header entries (validated before writing).

    Arrays are floating, except those named in ``integer_names`` (a model's integer buffers): any
    integer dtype, written as ``I64``.
    """
    integers = set(integer_names)
    chunks, header, offset = [], {}, 0
    for name, array in state.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ArgumentError(f"tensor names must be non-empty strings other than '__metadata__', got {name!r}")
        utf8_text(name, "tensor name")
        xp = namespace_of(array)
        dtype = dtype_name(xp, array.dtype)
        if name in integers and xp.isdtype(array.dtype, "integral"):
            host = to_host(array)
            data = np.ascontiguousarray(host, dtype=_RAW[INTEGER_CODE]).tobytes()
            header[name] = {
                "dtype": INTEGER_CODE,
                "shape": [int(d) for d in host.shape],
                "data_offsets": [offset, offset + len(data)],
            }
            chunks.append(data)
            offset += len(data)
            continue
        if dtype not in CODES:
            raise DTypeError(f"{name}: only floating arrays can be saved ({', '.join(CODES)}), got dtype {dtype}")
        host = to_host(array)  # bfloat16 comes back as (exactly representable) float32
        if dtype == "bfloat16":
            raw = (np.ascontiguousarray(host, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
        else:
            raw = np.ascontiguousarray(host, dtype=_RAW[CODES[dtype]])
        data = raw.tobytes()
        header[name] = {
            "dtype": CODES[dtype],
            "shape": [int(d) for d in host.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    return chunks, header


def header_bytes(metadata: Mapping[str, str], entries: Mapping[str, Any], *, what: str = "cannot save") -> bytes:
    """The length prefix and the space-padded UTF-8 JSON header (data aligned to 8 bytes, as the reference).

    A header over ``MAX_HEADER`` bytes or ``MAX_HEADER_ITEMS`` JSON items, which :func:`read_header`
    refuses, is a ``SerializationError`` starting with ``what`` (nothing is written).
    """
    for key, value in metadata.items():
        utf8_text(key, "metadata key")
        utf8_text(value, "metadata value")
    text = json.dumps({"__metadata__": dict(metadata), **entries}, separators=(",", ":"), ensure_ascii=False)
    _check_items(what, text)
    data = text.encode("utf-8")
    data += b" " * (-len(data) % 8)
    if len(data) > MAX_HEADER:
        raise SerializationError(
            f"{what}: the header (metadata, config and tensor table) would take {len(data)} bytes, over the "
            f"{MAX_HEADER} that safetensors readers accept (loading would refuse the file); store less metadata"
        )
    return len(data).to_bytes(8, "little") + data


# --------------------------------------------------------------------------- reading


def open_regular(path: PathLike) -> io.BufferedReader:
    """``path`` opened for reading, if it is a regular file (never blocks on a FIFO); else SerializationError."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise SerializationError(f"{path} is a directory, not a safetensors file") from None
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise SerializationError(f"{path} is {what}; checkpoints are read from regular files only")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return open(fd, "rb")


def _read_exactly(path: PathLike, fh: io.BufferedReader, size: int, what: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise SerializationError(f"{path}: truncated while reading the {what} ({len(data)} of {size} bytes)")
    return data


def read_header(path: PathLike, fh: io.BufferedReader) -> Header:
    """The validated header of the open file ``fh`` (positioned at its start); reads nothing else."""
    file_size = os.fstat(fh.fileno()).st_size
    prefix = fh.read(8)
    size = int.from_bytes(prefix, "little")
    if len(prefix) < 8 or size > MAX_HEADER or 8 + size > file_size:
        # Only now: a valid header length can start with a pickle's bytes (0x80 0x02..0x05 = 640..1535).
        _refuse_foreign(path, prefix)
    if len(prefix) < 8:
        raise SerializationError(f"{path}: truncated: {len(prefix)} bytes, shorter than the 8-byte header length")
    if size > MAX_HEADER or 8 + size > file_size:
        raise SerializationError(
            f"{path}: not a safetensors file or truncated: header length {size} does not fit in {file_size} bytes "
            f"(at most {MAX_HEADER})"
        )
    try:
        text = _read_exactly(path, fh, size, "header").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{path}: corrupt safetensors header ({exc})") from None
    _check_items(str(path), text)
    try:
        header = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as exc:
        raise SerializationError(f"{path}: corrupt safetensors header ({exc})") from None
    except RecursionError:
        raise SerializationError(f"{path}: corrupt safetensors header (JSON nested too deeply)") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{path}: the safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SerializationError(f"{path}: __metadata__ must map str -> str")
    data_size = file_size - 8 - size
    entries = {name: _entry(path, name, info, data_size) for name, info in header.items()}
    _check_tiling(path, entries, data_size)
    return Header(metadata, entries, 8 + size, file_size)


def read_tensors(
    path: PathLike, fh: io.BufferedReader, header: Header, names: Iterable[str]
) -> Iterable[tuple[str, str, np.ndarray]]:
    """``(name, dtype name, fresh native host array)`` for each of ``names``, read one at a time.

    bfloat16 is widened exactly to float32. Each array is read straight from the file into its
    own buffer (no copy of the whole file in memory).
    """
    for name in names:
        entry = header.entries[name]
        raw = np.empty(entry.shape, dtype=np.dtype(_RAW[entry.code]).newbyteorder("="))
        fh.seek(header.data_start + entry.begin)
        got = fh.readinto(raw.reshape(-1).data.cast("B")) if raw.size else 0
        if got != entry.end - entry.begin:
            raise SerializationError(f"{path}: truncated while reading tensor {name!r} (the file changed?)")
        if _RAW[entry.code][0] == "<" and np.little_endian is False:  # pragma: no cover - big-endian hosts
            raw = raw.byteswap()
        if entry.code == "BF16":
            yield name, NAMES[entry.code], (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            yield name, NAMES[entry.code], raw


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


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _entry(path: PathLike, name: str, info: Any, data_size: int) -> Entry:
    """One header entry, checked against the data section's size."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise SerializationError(f"{path}: tensor {name!r} must have the fields ['data_offsets', 'dtype', 'shape']")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in _RAW:
        raise SerializationError(
            f"{path}: tensor {name!r} has dtype {preview(code)}; portable_nn reads floating tensors {sorted(_RAW)}"
        )
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS or not all(_is_count(d) for d in shape):
        raise SerializationError(
            f"{path}: tensor {name!r} has an invalid shape {preview(shape)} (at most {_MAX_DIMS} sizes in [0, 2**63))"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise SerializationError(f"{path}: tensor {name!r} has invalid data_offsets {preview(offsets)}")
    begin, end = offsets
    if begin > end or end > data_size:
        raise SerializationError(
            f"{path}: tensor {name!r} data_offsets [{begin}, {end}] are out of range of the {data_size} data bytes"
        )
    if math.prod(d for d in shape if d) > _MAX_ELEMENTS:
        raise SerializationError(f"{path}: tensor {name!r} has a shape {shape} too large for any array")
    expected = math.prod(shape) * np.dtype(_RAW[code]).itemsize
    if end - begin != expected:
        raise SerializationError(
            f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {code} needs {expected} bytes, "
            f"its data_offsets span {end - begin}"
        )
    return Entry(code, tuple(shape), begin, end)


def _check_tiling(path: PathLike, entries: dict[str, Entry], data_size: int) -> None:
    """The tensors' byte ranges must cover the data exactly: no overlap, no hole, nothing after."""
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
        if entry.begin != position:
            what = "overlaps the previous tensor" if entry.begin < position else f"leaves a hole at byte {position}"
            raise SerializationError(f"{path}: tensor {name!r} at data_offsets [{entry.begin}, {entry.end}] {what}")
        position = entry.end
    if position != data_size:
        raise SerializationError(f"{path}: {data_size - position} data bytes after the last tensor belong to none")
