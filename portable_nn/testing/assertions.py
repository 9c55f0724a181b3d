"""``assert_close``: compare arrays of any backend/device on the host, with dtype-aware tolerances."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import (
    backend_name,
    device_of,
    device_str,
    dtype_name,
    namespace_of,
    resolve_device,
    resolve_namespace,
    to_host,
)
from .tolerances import TOLERANCES, tolerance

__all__ = ["assert_close", "to_numpy"]

_HOST_TYPES = (np.ndarray, np.generic, float, int, bool, list)


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of an array of any backend/device (NumPy arrays and scalars pass through).

    Parameters
    ----------
    x : array, scalar or list
        An array of any supported backend and device, or a host value.

    Returns
    -------
    numpy.ndarray
        The values on the host.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from portable_nn.testing import to_numpy
    >>> to_numpy(xp.asarray([1.0, 2.0]))
    array([1., 2.])
    """
    if isinstance(x, _HOST_TYPES):
        return np.asarray(x)
    return np.asarray(to_host(x))


def _describe(x: Any) -> tuple[str, str]:
    """(backend name, dtype name) of an array; host values count as NumPy."""
    if isinstance(x, _HOST_TYPES):
        return "numpy", np.asarray(x).dtype.name
    xp = namespace_of(x)
    return backend_name(xp), dtype_name(xp, x.dtype)


def _as_float(x: Any) -> np.ndarray:
    host = to_numpy(x)
    return host.astype(np.complex128 if np.iscomplexobj(host) else np.float64)


def _index(flat: int | np.integer, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def _check_kind(actual: Any, expected: Any, xp: Any, device: Any, dtype: Any, prefix: str) -> str:
    """Check namespace, device and dtype; return ``actual``'s dtype name."""
    __tracebackhide__ = True
    backend, actual_dtype = _describe(actual)
    if xp is not None:
        wanted = backend_name(resolve_namespace(xp))
        if backend != wanted:
            raise AssertionError(f"{prefix}expected a {wanted} array, got a {backend} array")
    if device is not None and backend != "numpy":
        ns = namespace_of(actual)
        want, got = device_str(ns, resolve_device(ns, device)), device_str(ns, device_of(actual))
        if got != want:
            raise AssertionError(f"{prefix}expected an array on device {want!r}, got one on {got!r}")
    if dtype is not None:
        own = namespace_of(actual) if backend != "numpy" else None
        wanted_dtype = dtype if isinstance(dtype, str) else (dtype_name(own, dtype) if own else np.dtype(dtype).name)
        if actual_dtype != wanted_dtype:
            raise AssertionError(f"{prefix}expected dtype {wanted_dtype}, got {actual_dtype}")
    expected_backend, expected_dtype = _describe(expected)
    if expected_backend != "numpy" and expected_backend != backend:
        raise AssertionError(
            f"{prefix}namespace mismatch: actual is a {backend} array, expected a {expected_backend} array "
            "(pass a NumPy oracle, e.g. to_numpy(expected), to compare across backends)"
        )
    if expected_backend == backend != "numpy" and expected_dtype != actual_dtype:
        raise AssertionError(f"{prefix}dtype mismatch: actual {actual_dtype}, expected {expected_dtype}")
    return actual_dtype


def assert_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    xp: Any = None,
    device: Any = None,
    dtype: Any = None,
    msg: str = "",
) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise, after kind and shape checks.

    ``actual`` and ``expected`` may live on any backend and device: both are copied to the host
    as float64. ``expected`` is either a NumPy array/scalar (an oracle, typically float64: only
    its values count) or an array of ``actual``'s own backend, whose dtype must then match.
    ``xp`` (namespace or name), ``device`` (portable string or device object) and ``dtype``
    (name or backend dtype) additionally pin what ``actual`` must be. Tolerances default to
    :data:`~portable_nn.testing.tolerances.TOLERANCES` of ``actual``'s dtype (exact for others).
    Equal infinities and NaN in the same places count as equal.

    The error names how many elements differ, the worst one (index, both values, abs and
    rel error), the largest abs/rel errors and any NaN present on one side only.

    Parameters
    ----------
    actual : array
        The array under test, of any backend and device.
    expected : array or scalar
        A NumPy oracle (only its values count) or an array of ``actual``'s backend (its dtype must match).
    rtol, atol : float, optional
        Relative and absolute tolerances (default: :data:`~portable_nn.testing.tolerances.TOLERANCES` of
        ``actual``'s dtype).
    xp : str or module, optional
        The namespace (or backend name) ``actual`` must belong to.
    device : str or device, optional
        The device ``actual`` must be on.
    dtype : str or dtype, optional
        The dtype ``actual`` must have.
    msg : str, optional
        A prefix for the error message.

    Raises
    ------
    AssertionError
        If the namespace, device, dtype or shape differ from what is pinned or expected, or values differ beyond
        the tolerances.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.testing import assert_close
    >>> assert_close(np.float32([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]), dtype="float32")
    >>> assert_close(np.array([1.0]), np.array([1.1]), atol=0.5)
    """
    __tracebackhide__ = True  # pytest shows the caller's line and the message, not this function's source
    prefix = f"{msg}: " if msg else ""
    actual_dtype = _check_kind(actual, expected, xp, device, dtype, prefix)
    default_rtol, default_atol = tolerance(actual_dtype) if actual_dtype in TOLERANCES else (0.0, 0.0)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    a, e = _as_float(actual), _as_float(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shape mismatch: actual {a.shape}, expected {e.shape}")
    if a.size == 0:
        return
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        bad = ~same & (~(diff <= allowed) | np.isinf(a) | np.isinf(e))
        if not bad.any():
            return
        one_nan = bad & (np.isnan(a) | np.isnan(e))
        numeric = bad & ~one_nan
        rel = diff / np.abs(e)
    backend = _describe(actual)[0]
    lines = [
        f"{prefix}{int(bad.sum())} of {a.size} elements differ beyond atol={atol:g} + rtol={rtol:g} * |expected| "
        f"({backend} {actual_dtype}, shape {a.shape})"
    ]
    if numeric.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.where(numeric, diff / np.maximum(allowed, np.finfo(np.float64).tiny), -np.inf)
        worst = _index(np.argmax(excess), a.shape)
        finite_rel = np.where(numeric & np.isfinite(rel), rel, 0.0)
        lines += [
            f"  worst at index {worst}: actual {a[worst].item()!r}, expected {e[worst].item()!r}, "
            f"abs error {diff[worst]:.3e}, rel error {rel[worst]:.3e}",
            f"  max abs error {np.max(np.where(numeric, diff, 0.0)):.3e}, max rel error {np.max(finite_rel):.3e}",
        ]
    if one_nan.any():
        first = _index(np.flatnonzero(one_nan)[0], a.shape)
        lines.append(
            f"  {int(one_nan.sum())} element(s) NaN on one side only, first at index {first}: "
            f"actual {a[first].item()!r}, expected {e[first].item()!r}"
        )
    raise AssertionError("\n".join(lines))
