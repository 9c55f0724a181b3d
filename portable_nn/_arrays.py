"""Small array helpers shared by the layers and losses, written against the array API only."""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["as_array"]


def as_array(xp: ModuleType, value: Any) -> Any:
    """``value`` as an array of ``xp``: NumPy returns scalars from operations on 0-d arrays, never hand one back.

    Arrays pass through unchanged (``asarray`` of an array is the array itself), so this is
    cheap; callers use it on results that can be 0-d (full reductions, elementwise ops on 0-d inputs).

    >>> import array_api_compat.numpy as xp
    >>> type(as_array(xp, xp.asarray(-1.0) * 2)).__name__
    'ndarray'
    """
    return xp.asarray(value)
