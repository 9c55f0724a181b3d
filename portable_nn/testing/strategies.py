"""Hypothesis strategies for backend-neutral tests: shapes, dtypes, value ranges and backend arrays.

Shapes include empty (0) and singleton (1) axes and N-D leading (batch) axes; sides stay small
so each example is cheap on every backend. Arrays come, like :func:`~portable_nn.testing.random_array`,
with their exact float64 host copy (read back from the backend) for oracle comparisons.

Use them with the plugin's fixtures through ``st.data()``; the fixtures are plain immutable
values, so hypothesis' function-scoped-fixture health check can be suppressed::

    from hypothesis import HealthCheck, given, settings, strategies as st
    from portable_nn.testing import strategies as pst

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_sum(xp, device, dtype, data):
        x, x64 = data.draw(pst.arrays(xp, data.draw(pst.shapes()), device=device, dtype=dtype))
        ...

This module needs ``hypothesis`` (in the ``test`` extra); the rest of ``portable_nn.testing`` does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .._backend import (
    FLOAT_DTYPES,
    dtype_name,
    from_host,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
    to_host,
)

__all__ = [
    "FEATURES",
    "LEADING_SHAPES",
    "MAX_MAGNITUDE",
    "arrays",
    "dtype_names",
    "linear_shapes",
    "scalars",
    "seeds",
    "shapes",
    "sides",
    "values",
]

#: Default bound on |value| per dtype: products of a few such values stay far from overflow
#: (float16 tops out at 65504) while spanning several binades.
MAX_MAGNITUDE: dict[str, float] = {"float16": 8.0, "bfloat16": 8.0, "float32": 100.0, "float64": 100.0}


#: Leading (batch) shapes of :func:`linear_shapes`: none (1-D input), empty, singleton, N-D, N-D empty.
LEADING_SHAPES: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (3,), (2, 3), (2, 0, 1))
#: ``(in_features, out_features)`` of :func:`linear_shapes`: non-square (catches transposes), 1, empty.
FEATURES: tuple[tuple[int, int], ...] = ((3, 2), (1, 1), (0, 2), (2, 0))


def sides(min_side: int = 0, max_side: int = 3) -> st.SearchStrategy[int]:
    """Axis lengths in ``[min_side, max_side]``; shrinks towards ``min_side`` (0 = an empty axis)."""
    return st.integers(min_side, max_side)


def shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 3
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with ``min_dims..max_dims`` axes of length ``min_side..max_side`` (0 and 1 included by default)."""
    return st.lists(sides(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def linear_shapes(
    *,
    leading: st.SearchStrategy[tuple[int, ...]] | None = None,
    features: st.SearchStrategy[tuple[int, int]] | None = None,
) -> st.SearchStrategy[tuple[tuple[int, ...], int, int]]:
    """``(leading, in_features, out_features)`` for a linear layer with input ``(*leading, in_features)``.

    By default both come from small catalogs (:data:`LEADING_SHAPES`, :data:`FEATURES`) that
    cover the shape classes (no/empty/singleton/N-D leading axes; non-square, 1 and 0 features)
    while keeping the number of *distinct* shapes low: JAX compiles every operation anew for
    each new shape (tens of ms each), which would otherwise dominate a run of hundreds of
    examples. Pass ``leading=shapes(...)`` and ``features=st.tuples(sides(), sides())`` to
    explore freely.
    """
    leading = st.sampled_from(LEADING_SHAPES) if leading is None else leading
    features = st.sampled_from(FEATURES) if features is None else features
    return st.tuples(leading, features).map(lambda pair: (pair[0], *pair[1]))


def dtype_names(xp: Any = None, device: Any = None, *, names: tuple[str, ...] = FLOAT_DTYPES) -> st.SearchStrategy[str]:
    """Floating dtype names, restricted to those ``xp`` has on ``device`` when given."""
    if xp is not None:
        usable = supported_dtypes(resolve_namespace(xp), device)
        names = tuple(n for n in names if n in usable)
    return st.sampled_from(names)


def values(dtype: str = "float64", *, max_magnitude: float | None = None) -> st.SearchStrategy[float]:
    """Finite floats in ``[-max_magnitude, max_magnitude]`` (default :data:`MAX_MAGNITUDE` of ``dtype``).

    Drawn as float64; moving them to a backend rounds them to ``dtype`` (the host copy that
    :func:`arrays` returns is read back after that rounding).
    """
    bound = MAX_MAGNITUDE.get(dtype, 100.0) if max_magnitude is None else max_magnitude
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False)


def scalars(*, max_magnitude: float = 4.0) -> st.SearchStrategy[float]:
    """Python float coefficients (e.g. ``a`` and ``b`` in ``a * x1 + b * x2``)."""
    return st.floats(-max_magnitude, max_magnitude, allow_nan=False, allow_infinity=False)


def seeds() -> st.SearchStrategy[int]:
    """Seeds for NumPy's ``default_rng`` (non-negative, up to 2**63 - 1)."""
    return st.integers(0, 2**63 - 1)


@st.composite
def arrays(
    draw: st.DrawFn,
    xp: Any,
    shape: tuple[int, ...],
    *,
    device: Any,
    dtype: Any,
    elements: st.SearchStrategy[float] | None = None,
) -> tuple[Any, np.ndarray]:
    """An array of ``shape`` on ``xp``/``device`` as ``dtype``, and its exact values as host float64.

    ``elements`` defaults to :func:`values` for ``dtype`` (finite, bounded by :data:`MAX_MAGNITUDE`).
    """
    xp = resolve_namespace(xp)
    device, dtype = resolve_device(xp, device), resolve_dtype(xp, dtype)
    name = dtype_name(xp, dtype)
    host = draw(hnp.arrays(np.float64, shape, elements=values(name) if elements is None else elements))
    array = from_host(host, xp, device, dtype)
    if name == "bfloat16":  # cast on the backend: read the rounded values back
        return array, to_host(array).astype(np.float64)
    # from_host casts on the host, so the backend holds exactly these values (no read-back:
    # that would cost a device sync or a Dask compute per array).
    return array, host.astype(name).astype(np.float64)
