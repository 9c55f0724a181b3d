"""Host-side (NumPy) datasets for the training demo: seeded synthetic sets, file loading, splits, batches.

Everything here runs on the host, from a seed, so every backend sees the same bytes in the
same order: features are float64 (cast to the run's dtype on transfer), labels int64 in
``[0, classes)``.
"""

from __future__ import annotations

import csv
import math
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, SerializationError

__all__ = ["batch_indices", "blobs", "load_dataset", "spirals", "standardize", "train_test_split"]

Dataset = tuple[np.ndarray, np.ndarray]  # x (N, features) float64, y (N,) int64


def _check_size(n_samples: int, classes: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < classes:
        raise ArgumentError(f"n_samples must be an int >= classes ({classes}), got {n_samples!r}")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ArgumentError(f"classes must be an int >= 2, got {classes!r}")


def spirals(
    n_samples: int = 1500, classes: int = 3, *, turns: float = 1.0, noise: float = 0.06, seed: int = 0
) -> Dataset:
    """Interleaved spiral arms, one per class, in the plane.

    A point of class ``k`` at ``t ~ U(0.15, 1)`` lies at radius ``t`` and angle
    ``2π (k / classes + turns · t)``, plus Gaussian noise of std ``noise`` on each coordinate.
    Returns ``x`` (n_samples, 2) float64 and ``y`` (n_samples,) int64, classes balanced, in random order.
    """
    _check_size(n_samples, classes)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples, dtype=np.int64) % classes
    t = rng.uniform(0.15, 1.0, size=n_samples)
    angle = 2 * math.pi * (y / classes + turns * t)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + rng.normal(0.0, noise, size=(n_samples, 2))
    order = rng.permutation(n_samples)
    return x[order], y[order]


def blobs(n_samples: int = 1500, classes: int = 3, *, spread: float = 0.35, seed: int = 0) -> Dataset:
    """Gaussian blobs of std ``spread`` around ``classes`` centres evenly spaced on the unit circle.

    Returns ``x`` (n_samples, 2) float64 and ``y`` (n_samples,) int64, classes balanced, in random order.
    """
    _check_size(n_samples, classes)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples, dtype=np.int64) % classes
    angle = 2 * math.pi * y / classes
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(0.0, spread, size=(n_samples, 2))
    order = rng.permutation(n_samples)
    return x[order], y[order]


#: Name -> generator ``f(n_samples, *, seed) -> (x, y)`` of the synthetic sets.
SYNTHETIC: dict[str, Callable[..., Dataset]] = {"spirals": spirals, "blobs": blobs}


def _labels(raw: np.ndarray, path: Path) -> tuple[np.ndarray, list[Any]]:
    """Any label values -> (int64 class indices ``0..C-1``, the distinct values in sorted order: class i's label)."""
    if raw.ndim != 1:
        raise SerializationError(f"{path}: labels must be 1-D, got shape {raw.shape}")
    try:
        classes, y = np.unique(raw, return_inverse=True)
    except TypeError as exc:  # e.g. numbers and text mixed in an object array
        raise SerializationError(f"{path}: labels cannot be ordered ({exc})") from None
    if len(classes) < 2:
        raise SerializationError(f"{path}: need at least 2 classes, found {len(classes)}")
    _check_label_spellings(classes, path)
    return y.astype(np.int64).reshape(-1), [value.item() if hasattr(value, "item") else value for value in classes]


def _check_label_spellings(classes: np.ndarray, path: Path) -> None:
    """Refuse text labels that are one number written two ways (``"1"`` and ``"1.0"``, ``"01"``, ``"1e0"``).

    They would silently become two classes; which spelling the user meant is not ours to pick.
    """
    seen: dict[str, str] = {}
    for value in classes:
        if not isinstance(value, str):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        key = repr(number + 0.0)  # -0.0 + 0.0 is 0.0: '-0' and '0' are one number
        if key in seen:
            raise SerializationError(
                f"{path}: the labels {seen[key]!r} and {str(value)!r} are the same number written two ways, "
                "which would make two classes; write each class's label one way"
            )
        seen[key] = str(value)


def _features(raw: np.ndarray, path: Path) -> np.ndarray:
    if np.iscomplexobj(raw):
        raise SerializationError(f"{path}: features must be real numbers, got complex dtype {np.asarray(raw).dtype}")
    try:
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{path}: features must be numbers ({exc})") from None
    if x.ndim != 2 or x.shape[1] == 0:
        raise SerializationError(f"{path}: features must be 2-D (samples, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise SerializationError(f"{path}: features contain NaN or infinity")
    return x


#: The arrays a ``.npz`` dataset must hold, and nothing else.
NPZ_KEYS = ("x", "y")


def _npz_members(path: Path) -> None:
    """Check the archive's members before NumPy reads any: exactly ``x.npy`` and ``y.npy``, each the size it claims.

    A ``.npy`` header states shape and dtype; an array whose header claims more bytes than the
    member holds (e.g. shape ``(2**40, 2)`` in a few hundred bytes) is refused before allocation.
    """
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        names = sorted(name.removesuffix(".npy") for name in members)
        if sorted(members) != [f"{key}.npy" for key in NPZ_KEYS]:
            raise SerializationError(
                f"{path}: expected exactly the arrays named 'x' (features) and 'y' (labels), found {names}"
            )
        for name, info in members.items():
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise SerializationError(f"{path}: {name} has unknown .npy format version {version}")
                header_bytes = fh.tell()
            if dtype.hasobject:
                raise SerializationError(
                    f"{path}: not a readable .npz file ({name} holds Python objects: pickle refused)"
                )
            claimed = math.prod(shape) * dtype.itemsize
            held = info.file_size - header_bytes
            # the stated uncompressed size must be one the stored bytes can produce (deflate: at most ~1032:1)
            limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else 1100 * info.compress_size + 1024
            if info.file_size > limit:
                raise SerializationError(
                    f"{path}: {name} claims {info.file_size} bytes uncompressed from {info.compress_size} stored"
                )
            if claimed != held:
                raise SerializationError(
                    f"{path}: {name} claims shape {shape} of {dtype} ({claimed} bytes) but holds {held} bytes"
                )


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        _npz_members(path)
        with np.load(path, allow_pickle=False) as archive:
            return archive["x"], archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, SerializationError):
            raise
        raise SerializationError(f"{path}: not a readable .npz file ({exc})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        # utf-8-sig: a byte-order mark (as some spreadsheet programs write) is not part of the first cell
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise SerializationError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start})"
        ) from None
    except csv.Error as exc:
        raise SerializationError(f"{path}: unreadable CSV at line {reader.line_num}: {exc}") from None
    if rows and not any(_is_number(cell) for cell in rows[0][:-1]):
        rows = rows[1:]  # a header line: no feature cell of it is a number
    if not rows:
        raise SerializationError(f"{path}: no data rows")
    widths = {len(row) for row in rows}
    if len(widths) != 1 or widths.pop() < 2:
        raise SerializationError(f"{path}: every row needs the same number (>= 2) of columns: features..., label")
    # an object table: memory in proportion to the file (a fixed-width string table is sized by the longest cell)
    table = np.empty((len(rows), len(rows[0])), dtype=object)
    for index, row in enumerate(rows):
        table[index] = [cell.strip() for cell in row]
    return table[:, :-1], table[:, -1]


def _check_regular_file(path: Path) -> None:
    """Raise ``FileNotFoundError`` / ``SerializationError`` naming what ``path`` is unless it is a regular file.

    Only ``stat`` is used: a FIFO or a device is never opened (opening a FIFO would block).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"data file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise SerializationError(f"data file {str(path)!r}: {exc.strerror or exc}") from None
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    for test, what in kinds:
        if test(mode):
            raise SerializationError(f"data file {str(path)!r} is {what}, not a regular file")
    if not stat.S_ISREG(mode):
        raise SerializationError(f"data file {str(path)!r} is not a regular file")


def load_dataset(path: str | Path) -> Dataset:
    """A classification dataset from ``.npz`` (exactly the arrays ``x`` and ``y``) or ``.csv`` (features..., label).

    ``(x, y)``: see :func:`load_labeled_dataset`, which also returns the label of each class.
    """
    x, y, _ = load_labeled_dataset(path)
    return x, y


def load_labeled_dataset(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """``(x, y, labels)`` from ``.npz`` (exactly the arrays ``x`` and ``y``) or ``.csv`` (features..., label);
    class ``i`` stands for ``labels[i]`` (the distinct label values, sorted).

    A CSV is UTF-8 (a byte-order mark is allowed) and may have one header line; it is held in
    memory in proportion to its size. Labels of any kind (ints, strings) become int64 indices
    ``0..C-1``; text labels that are one number written two ways (``"1"`` and ``"1.0"``) are a
    ``SerializationError`` naming both. Features must be real numbers.
    Raises ``FileNotFoundError``, or ``SerializationError`` (a ``ValueError``) for anything else
    that is wrong, including a path that is a directory, FIFO or device (never opened).
    """
    path = Path(path)
    _check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        raw_x, raw_y = _load_npz(path)
    elif suffix == ".csv":
        raw_x, raw_y = _load_csv(path)
    else:
        raise SerializationError(f"{path}: unsupported data file type {suffix!r}; use .npz or .csv")
    x, (y, labels) = _features(raw_x, path), _labels(np.asarray(raw_y), path)
    if len(x) != len(y):
        raise SerializationError(f"{path}: {len(x)} feature rows but {len(y)} labels")
    return x, y, labels


def train_test_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """A seeded shuffle split: ``((x_train, y_train), (x_test, y_test))``; the test part has >= 1 sample."""
    if not 0 < test_fraction < 1:
        raise ArgumentError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if len(x) < 2:
        raise ArgumentError(f"need at least 2 samples to split, got {len(x)}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = min(max(1, round(len(x) * test_fraction)), len(x) - 1)
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def standardization(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` per feature of ``train`` (N, F), std 1 for constant columns: ``x -> (x - mean) / std``."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale features to zero mean and unit variance using ``train``'s statistics (constant columns kept)."""
    mean, std = standardization(train)
    return [(a - mean) / std for a in (train, *others)]


def batch_indices(n_samples: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch of mini-batch row indices: a fresh permutation from ``rng``, cut into ``batch_size`` pieces.

    The last batch may be smaller. The same ``rng`` state gives the same batches on every backend.
    """
    order = rng.permutation(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]
