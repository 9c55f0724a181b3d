"""Batches assembled with ``xp.concat``, including empty pieces, through forward and backward.

Regression cases found by the property tests: Dask keeps the pieces as chunks, and its
reshape/matmul fail on empty arrays split into several chunks (e.g. chunks ``(0, 2)`` along
the batch axis of a ``(2, 0, 3)`` input). The layer builds empty row matrices itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.testing import assert_close, random_array

from .helpers import host_params, oracle_backward, oracle_forward

CASES = [
    # (first batch, second batch, other leading axes, in_features, out_features)
    (0, 2, (0,), 1, 2),
    (0, 1, (0,), 0, 1),
    (0, 0, (0,), 2, 2),
    (0, 1, (), 0, 0),
    (0, 2, (), 3, 2),
    (2, 0, (3,), 3, 0),
    (1, 2, (2,), 3, 2),
]


@pytest.mark.parametrize(("n1", "n2", "rest", "n_in", "n_out"), CASES, ids=lambda v: str(v).replace(" ", ""))
def test_concatenated_batches(xp, device, dtype, n1, n2, rest, n_in, n_out):
    def piece(n: int, features: int, seed: int):
        return random_array(xp, (n, *rest, features), device=device, dtype=dtype, seed=seed)

    (x1, h1), (x2, h2) = piece(n1, n_in, 1), piece(n2, n_in, 2)
    (g1, hg1), (g2, hg2) = piece(n1, n_out, 3), piece(n2, n_out, 4)
    x, g = xp.concat([x1, x2], axis=0), xp.concat([g1, g2], axis=0)
    x64, g64 = np.concatenate([h1, h2]), np.concatenate([hg1, hg2])

    layer = pnn.Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=0)
    w64, b64 = host_params(layer)
    assert_close(layer(x), oracle_forward(x64, w64, b64), xp=xp)
    grad_x = layer.backward(g)
    expected_x, expected_w, expected_b = oracle_backward(g64, x64, w64)
    assert_close(grad_x, expected_x, xp=xp)
    assert_close(layer.grad_weight, expected_w, xp=xp)
    assert_close(layer.grad_bias, expected_b, xp=xp)
