"""The command line's data: a seeded synthetic set or the ``--data`` file, split 80/20 and standardized on the host."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import dtype_name, from_host
from . import datasets
from .arguments import UsageError

__all__ = ["MAX_CLASSES", "Data", "device_labels", "index_dtype", "prepare_data"]

#: The most classes the command line trains (the output layer's width): a data file with more
#: distinct labels is a usage error before any training (200,000 labels would train for hours).
MAX_CLASSES = 1000


@dataclass
class Data:
    """Host-side float64 features (N, F) and int64 labels (N,) in ``[0, classes)``, split into train and test.

    The features are standardized: raw ``x`` becomes ``(x - mean) / std`` (train statistics, (F,)); class
    ``i`` stands for ``labels[i]`` (the data file's label values; ``0..C-1`` for the synthetic sets).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))
    labels: list[Any] = field(default_factory=list)

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def prepare_data(args: argparse.Namespace, data_seed: int) -> Data:
    """The host-side dataset: loaded (``args.data``) or generated, split 80/20 (seeded), standardized on train.

    A file that cannot be used (missing, a directory, a FIFO, bad contents) raises :class:`UsageError`.
    """
    if args.data is not None:
        try:
            x, y, labels = datasets.load_labeled_dataset(args.data)
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        name = str(args.data)
        if len(labels) > MAX_CLASSES:
            raise UsageError(
                f"{name}: {len(labels)} distinct labels; the command line trains at most {MAX_CLASSES} classes "
                "(is the last column the label?)"
            )
    else:
        x, y = datasets.SYNTHETIC[args.dataset](args.samples, seed=data_seed)
        name, labels = args.dataset, [int(c) for c in np.unique(y)]
    try:
        (x_train, y_train), (x_test, y_test) = datasets.train_test_split(x, y, 0.2, seed=data_seed)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    mean, std = datasets.standardization(x_train)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Data(name, x_train, y_train, x_test, y_test, mean, std, labels)


def index_dtype(xp: Any, device: Any) -> Any:
    """The backend's default index dtype on ``device`` (int64; int32 on JAX without x64): what labels become."""
    return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]


def device_labels(y: np.ndarray, xp: Any, device: Any, dtype: Any = None) -> Any:
    """Host class labels ``y`` on ``xp``/``device`` as ``dtype`` (default :func:`index_dtype`), cast on the host.

    Casting on the host leaves the device one transfer and no cast: on JAX, an int64 host array
    given to ``asarray`` is converted by an eager device op (an XLA compilation of its own).
    """
    target = index_dtype(xp, device) if dtype is None else dtype
    return from_host(np.asarray(y, dtype=dtype_name(xp, target)), xp, device, target)
