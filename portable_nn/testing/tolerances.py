"""Comparison tolerances, written down once per dtype.

They bound the error of float32/float16/bfloat16 results against a float64 oracle for the
moderate sizes the suites use (reductions of up to a few hundred terms of O(1) values).
"""

from __future__ import annotations

__all__ = ["TOLERANCES", "tolerance"]

#: dtype name -> (rtol, atol)
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 2e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (4e-2, 4e-2),
}


def tolerance(dtype_name: str) -> tuple[float, float]:
    """``(rtol, atol)`` for results computed in ``dtype_name``.

    Parameters
    ----------
    dtype_name : str
        A floating dtype's name: ``"float64"``, ``"float32"``, ``"float16"`` or ``"bfloat16"``.

    Returns
    -------
    tuple of (float, float)
        ``(rtol, atol)`` from :data:`TOLERANCES`.

    Raises
    ------
    KeyError
        If the dtype has no tolerance written down.

    Examples
    --------
    >>> from portable_nn.testing import tolerance
    >>> tolerance("float32")
    (2e-05, 2e-05)
    """
    try:
        return TOLERANCES[dtype_name]
    except KeyError:
        raise KeyError(f"no tolerance for dtype {dtype_name!r}; known: {sorted(TOLERANCES)}") from None
