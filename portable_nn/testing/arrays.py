"""Seeded test inputs that come with their exact float64 host copy, for oracle comparisons."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import from_host, resolve_device, resolve_dtype, resolve_namespace, to_host

__all__ = ["random_array"]


def random_array(
    xp: Any, shape: tuple[int, ...], *, device: Any, dtype: Any, seed: int | np.random.Generator = 0, scale: float = 1.0
) -> tuple[Any, np.ndarray]:
    """A standard-normal array on ``xp``/``device`` as ``dtype``, and its values as host float64.

    The host copy is read back from the backend array, so it holds exactly the (rounded)
    values the backend computes with: differences against an oracle are the backend's own.
    ``xp`` may be a namespace or a backend name, ``device`` and ``dtype`` portable names
    (``"cpu"``, ``"float32"``) or the backend's own objects.

    Parameters
    ----------
    xp : str or module
        The namespace, or a backend name (``"numpy"``, ``"torch"``...).
    shape : tuple of int
        The array's shape.
    device : str or device
        Where the array lives (``"cpu"``, ``"cuda:0"``, or the backend's own device).
    dtype : str or dtype
        Its floating dtype (``"float32"``, or the backend's own dtype).
    seed : int or numpy.random.Generator, optional
        Where the values come from (default 0).
    scale : float, optional
        Standard deviation of the values (default 1).

    Returns
    -------
    tuple of (array, numpy.ndarray)
        The backend array and its exact values as a host float64 array.

    Examples
    --------
    >>> from portable_nn.testing import random_array
    >>> x, host = random_array("numpy", (2, 3), device="cpu", dtype="float32", seed=1)
    >>> x.dtype, host.dtype, bool((x == host).all())
    (dtype('float32'), dtype('float64'), True)
    """
    xp = resolve_namespace(xp)
    device, dtype = resolve_device(xp, device), resolve_dtype(xp, dtype)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    array = from_host(rng.standard_normal(shape) * scale, xp, device, dtype)
    return array, to_host(array).astype(np.float64)
