"""``assert_close``: compare arrays of any backend/device on the host, with dtype-aware tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import backend_name, dtype_name, namespace_of, resolve_namespace, to_host
from .tolerances import TOLERANCES, tolerance

__all__ = ["assert_close", "to_numpy"]


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of an array of any backend/device (NumPy arrays and scalars pass through)."""
    if isinstance(x, np.ndarray | np.generic | float | int | list):
        return np.asarray(x)
    return to_host(x)


def _describe(x: Any) -> tuple[str, str]:
    if isinstance(x, np.ndarray | np.generic | float | int | list):
        return "numpy", np.asarray(x).dtype.name
    xp = namespace_of(x)
    return backend_name(xp), dtype_name(xp, x.dtype)


def assert_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    xp: Any = None,
    dtype: str | None = None,
    msg: str = "",
) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise, plus shape and type checks.

    ``actual`` and ``expected`` may live on any backend and device (both are moved to the host).
    If ``expected`` is an array of the same backend as ``actual``, their dtypes must match; a
    NumPy ``expected`` is an oracle (typically float64) and only its values count. ``xp`` and
    ``dtype`` (a name) additionally pin ``actual``'s namespace and dtype. Tolerances default to
    :data:`~portable_nn.testing.tolerances.TOLERANCES` of ``actual``'s dtype.
    """
    prefix = f"{msg}: " if msg else ""
    backend, actual_dtype = _describe(actual)
    if xp is not None and backend != backend_name(resolve_namespace(xp)):
        raise AssertionError(f"{prefix}expected a {backend_name(resolve_namespace(xp))} array, got {backend}")
    if dtype is not None and actual_dtype != dtype:
        raise AssertionError(f"{prefix}expected dtype {dtype}, got {actual_dtype}")
    expected_backend, expected_dtype = _describe(expected)
    if expected_backend == backend and backend != "numpy" and expected_dtype != actual_dtype:
        raise AssertionError(f"{prefix}dtype mismatch: actual {actual_dtype}, expected {expected_dtype}")
    default_rtol, default_atol = tolerance(actual_dtype) if actual_dtype in TOLERANCES else (0.0, 0.0)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    a = to_numpy(actual).astype(np.float64) if actual_dtype != "bool" else to_numpy(actual)
    e = to_numpy(expected).astype(np.float64) if expected_dtype != "bool" else to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shape mismatch: actual {a.shape}, expected {e.shape}")
    if a.size == 0:
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(a - e)
        bad = ~(diff <= atol + rtol * np.abs(e))
        bad &= ~((a == e) | (np.isnan(a) & np.isnan(e)))
    if not bad.any():
        return
    worst = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = diff / np.abs(e)
    raise AssertionError(
        f"{prefix}{int(bad.sum())} of {a.size} elements differ beyond rtol={rtol:g}, atol={atol:g} "
        f"({backend} {actual_dtype}, shape {a.shape})\n"
        f"  max abs error {np.nanmax(diff):.3e} at index {tuple(int(i) for i in worst)}: "
        f"actual {a[worst]!r}, expected {e[worst]!r}\n"
        f"  max rel error {np.nanmax(np.where(np.isfinite(rel), rel, 0)):.3e}"
    )
