"""The placeholder builder of :mod:`portable_nn.init`: zeros instead of random draws, within a size budget."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ShapeError

#: The element budget left while :func:`placeholder` is active (None: not active).
_PLACEHOLDER: contextvars.ContextVar[tuple[np.dtype[Any], list[int]] | None] = contextvars.ContextVar(
    "_PLACEHOLDER", default=None
)


@contextlib.contextmanager
def placeholder(max_elements: int, dtype: str = "float64") -> Iterator[None]:
    """Within the block, :func:`draw` ignores its initializer and returns zeros (no random draw).

    Used to build a module whose parameters are about to be replaced (``pnn.load``): the
    initializers' work is skipped, and the parameters declared in the block may hold at most
    ``max_elements`` elements in all, checked before anything is allocated (a ``ShapeError``
    otherwise), so a config asking for a huge layer cannot exhaust memory. The zeros have the
    host ``dtype`` (pass the target's, e.g. ``"float32"``: then NumPy and torch keep the fresh,
    untouched zero pages instead of copying them).

    Parameters
    ----------
    max_elements : int
        The most elements all parameters declared in the block may hold together.
    dtype : str, optional
        The host dtype of the zeros (default ``"float64"``).

    Yields
    ------
    None
        Nothing: the mode holds while the block runs.

    Raises
    ------
    ShapeError
        Inside the block, from :func:`draw`, when a parameter would exceed the elements left.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> with pnn.init.placeholder(12):
    ...     layer = pnn.Linear(3, 3)
    >>> float(layer.weight.sum())
    0.0
    """
    token = _PLACEHOLDER.set((np.dtype(dtype), [max_elements, max_elements]))
    try:
        yield
    finally:
        _PLACEHOLDER.reset(token)


def _placeholder_draw(shape: tuple[int, ...]) -> np.ndarray:
    active = _PLACEHOLDER.get()
    assert active is not None
    dtype, budget = active
    size = math.prod(shape)
    if size > budget[0]:
        raise ShapeError(
            f"a parameter of shape {shape} ({size} elements) exceeds the {budget[0]} of {budget[1]} elements "
            "left to place"
        )
    budget[0] -= size
    return np.zeros(shape, dtype=dtype)
