"""Central finite differences on the host, for checking backward passes in float64 on any backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_nn._backend import from_host
from portable_nn.testing import to_numpy

#: Step of the central difference: error O(h²) from truncation + O(eps/h) from rounding, ~1e-10 at h = 1e-5.
STEP = 1e-5
#: Tolerance of finite differences against float64 analytic gradients (both errors above, with margin).
RTOL, ATOL = 1e-6, 1e-8


def numerical_gradient(
    f: Callable[[Any], Any], x64: np.ndarray, xp: Any, device: Any, dtype: Any, *, entries: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, dF/dx at them)`` for a scalar function ``f`` of a backend array, by central differences.

    ``x64`` is the host float64 point; each perturbed copy is moved to ``xp``/``device`` as
    ``dtype`` (float64). ``entries`` limits the check to that many seeded random flat indices.
    """
    flat = x64.reshape(-1)
    indices = np.arange(flat.size)
    if entries is not None and entries < flat.size:
        indices = np.sort(np.random.default_rng(0).choice(flat.size, size=entries, replace=False))
    grads = np.empty(len(indices))
    for k, index in enumerate(indices):
        values = []
        for sign in (1.0, -1.0):
            moved = flat.copy()
            moved[index] += sign * STEP
            values.append(float(to_numpy(f(from_host(moved.reshape(x64.shape), xp, device, dtype)))))
        grads[k] = (values[0] - values[1]) / (2 * STEP)
    return indices, grads


def assert_matches_numerical(analytic: Any, indices: np.ndarray, numerical: np.ndarray, what: str) -> None:
    got = to_numpy(analytic).astype(np.float64).reshape(-1)[indices]
    np.testing.assert_allclose(got, numerical, rtol=RTOL, atol=ATOL, err_msg=f"{what}: backward vs finite differences")
