"""The command line's data: a seeded synthetic set or the ``--data`` file, split 80/20 and standardized on the host."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from .. import datasets
from .arguments import UsageError

__all__ = ["Data", "prepare_data"]


@dataclass
class Data:
    """Host-side float64 features (N, F) and int64 labels (N,) in ``[0, classes)``, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

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
            x, y = datasets.load_dataset(args.data)
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        name = str(args.data)
    else:
        x, y = datasets.SYNTHETIC[args.dataset](args.samples, seed=data_seed)
        name = args.dataset
    try:
        (x_train, y_train), (x_test, y_test) = datasets.train_test_split(x, y, 0.2, seed=data_seed)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    x_train, x_test = datasets.standardize(x_train, x_test)
    return Data(name, x_train, y_train, x_test, y_test)
