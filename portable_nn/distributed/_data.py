"""Data of :mod:`portable_nn.distributed`: a lazily generated chunked regression set and the default loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

from .._backend import resolve_dtype, resolve_namespace
from ..errors import ArgumentError
from ..losses import MSELoss
from ..typing import Array

LossFn = Callable[[Array, Array], tuple[Array, Array]]


def _regression_block(
    seed: int, weight: np.ndarray, bias: np.ndarray, noise: float, dtype: str, block_id: Any, block_info: Any
) -> np.ndarray:
    """Rows of ``[x | x @ weight.T + bias + noise]`` for one chunk, drawn from ``(seed, chunk index)``."""
    rows, _ = block_info[None]["chunk-shape"]
    rng = np.random.default_rng([seed, block_id[0]])
    work = np.float64 if dtype == "float64" else np.float32
    x = rng.standard_normal((rows, weight.shape[1]), dtype=work)
    y = x @ weight.T.astype(work) + bias.astype(work) + noise * rng.standard_normal((rows, weight.shape[0]), dtype=work)
    return np.concatenate([x, y], axis=1, dtype=dtype)


def synthetic_regression(
    n_samples: int,
    in_features: int,
    out_features: int = 1,
    *,
    chunk_rows: int = 65536,
    seed: int = 0,
    noise: float = 0.1,
    dtype: str = "float32",
) -> tuple[Array, Array]:
    """A lazily generated regression set ``(x, y)``: (n_samples, in) and (n_samples, out) dask arrays.

    Nothing is held in memory: chunk ``i`` (``chunk_rows`` rows along the batch axis) is drawn
    from ``numpy.random.default_rng([seed, i])`` when a task needs it, so the set can be far
    larger than the workers' memory and is the same whatever the scheduler or worker count.
    Targets are ``x @ w.T + b + noise * N(0, 1)`` for a ``w``, ``b`` drawn from ``seed``.

    Parameters
    ----------
    n_samples : int
        Rows of the set, ``>= 0``.
    in_features : int
        Columns of ``x``, ``>= 1``.
    out_features : int
        Columns of ``y``, ``>= 1`` (default 1).
    chunk_rows : int
        Rows per chunk, ``>= 1`` (default 65536; the last chunk may be smaller).
    seed : int
        Seed of the weights and of every chunk's draw (default 0).
    noise : float
        Standard deviation of the Gaussian noise added to the targets (default 0.1).
    dtype : str or dtype
        Floating dtype of both arrays (default ``"float32"``; drawn in float64 for ``"float64"``).

    Returns
    -------
    x : dask.array.Array
        Inputs of shape (n_samples, in_features), chunked by ``chunk_rows`` along the batch axis.
    y : dask.array.Array
        Targets of shape (n_samples, out_features), chunked as ``x``.

    Raises
    ------
    ArgumentError
        ``n_samples < 0``, or ``in_features``, ``out_features`` or ``chunk_rows`` below 1.

    Examples
    --------
    >>> x, y = synthetic_regression(100, 3, 2, chunk_rows=40, seed=0)
    >>> x.shape, y.shape, x.chunks[0], str(x.dtype)
    ((100, 3), (100, 2), (40, 40, 20), 'float32')
    >>> bool((x[:40].compute() == synthetic_regression(40, 3, 2, chunk_rows=40, seed=0)[0].compute()).all())
    True
    """
    if n_samples < 0 or in_features < 1 or out_features < 1 or chunk_rows < 1:
        raise ArgumentError(
            f"need n_samples >= 0 and in_features, out_features, chunk_rows >= 1; got "
            f"{n_samples}, {in_features}, {out_features}, {chunk_rows}"
        )
    rng = np.random.default_rng([seed, 2**32 - 1])
    weight = rng.standard_normal((out_features, in_features)) / math.sqrt(in_features)
    bias = rng.standard_normal(out_features)
    rows = (chunk_rows,) * (n_samples // chunk_rows) + ((n_samples % chunk_rows,) if n_samples % chunk_rows else ())
    host_dtype = np.dtype(resolve_dtype(resolve_namespace("numpy"), dtype))
    data = da.map_blocks(
        _regression_block,
        seed,
        weight,
        bias,
        noise,
        host_dtype.name,
        chunks=(rows, (in_features + out_features,)),
        dtype=host_dtype,
        meta=np.empty((0, 0), dtype=host_dtype),
    )
    return data[:, :in_features], data[:, in_features:]


# --------------------------------------------------------------------------- training


_MSE = MSELoss()


def mse_loss(prediction: Array, target: Array) -> tuple[Array, Array]:
    """Mean squared error and its gradient w.r.t. ``prediction`` (both lazy on Dask), any shape.

    The default ``loss`` of :func:`train` and :func:`train_epoch`: :class:`portable_nn.losses.MSELoss`
    with its default ``reduction="mean"``, kept under this name (the one loss, not a copy).

    Parameters
    ----------
    prediction : array
        The model's output, any shape (a Dask array, or any array-API array).
    target : array
        Of ``prediction``'s shape, namespace and dtype.

    Returns
    -------
    loss : array
        0-d: the mean over every element of ``(prediction - target) ** 2``.
    grad : array
        ``2 * (prediction - target) / prediction.size``, of ``prediction``'s shape.

    Examples
    --------
    >>> import dask.array as da
    >>> loss, grad = mse_loss(da.asarray([1.0, 2.0]), da.asarray([0.0, 0.0]))
    >>> float(loss), grad.compute().tolist()
    (2.5, [1.0, 2.0])
    """
    return _MSE(prediction, target)
