"""Backend fused primitives (``portable_nn.fast_paths.array_ops``) against the generic array-API code.

A fast path must give the generic path's numbers within float rounding; the generic code is the
reference and stays tested on every backend. Inputs are drawn by hypothesis, including -inf
logits (a masked class) and large ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn.fast_paths import array_ops
from portable_nn.testing import assert_close

torch = pytest.importorskip("torch")
xp = pytest.importorskip("array_api_compat.torch")

DTYPES = ["float32", "float64"]


def _generic_linear(x, w, b):
    y = x @ w.T
    y += b
    return y


def _generic_log_softmax(z):
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def test_torch_has_fused_ops_and_numpy_uses_the_generic_code():
    assert array_ops(torch.zeros(1)) is not None
    assert array_ops(np.zeros(1)) is None


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 9), n_in=st.integers(1, 7), n_out=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_fused_linear_matches_the_generic_form(dtype, rows, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b = (
        torch.from_numpy(rng.standard_normal(s)).to(getattr(torch, dtype))
        for s in ((rows, n_in), (n_out, n_in), (n_out,))
    )
    assert_close(array_ops(x).linear(x, w, b), _generic_linear(x, w, b), xp=xp)
    assert_close(pnn.functional.linear(x, w, b), _generic_linear(x, w, b), xp=xp)  # the public function uses it


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 9), classes=st.integers(1, 6), scale=st.sampled_from([1.0, 1e3]), seed=st.integers(0, 2**16))
def test_fused_log_softmax_matches_the_generic_form(dtype, rows, classes, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, classes)) * scale
    if classes > 1:
        z[rng.integers(0, rows), rng.integers(0, classes)] = -np.inf  # a masked class
    logits = torch.from_numpy(z).to(getattr(torch, dtype))
    fused, generic = array_ops(logits).log_softmax(logits), _generic_log_softmax(logits)
    np.testing.assert_array_equal(torch.isinf(fused).numpy(), torch.isinf(generic).numpy())
    finite = torch.isfinite(generic)
    assert_close(fused[finite], generic[finite], xp=xp)
