"""Backend fused primitives (``portable_nn.backends.fast_paths.array_ops``) against the generic array-API code.

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
from portable_nn.backends.fast_paths import array_ops
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


def test_torch_has_fused_ops_and_array_api_strict_uses_the_generic_code():
    assert array_ops(torch.zeros(1)) is not None
    strict = pytest.importorskip("array_api_strict")
    assert array_ops(strict.zeros(1)) is None


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


def _generic_index_cross_entropy(z, target, mean):
    log_probs = _generic_log_softmax(z)
    onehot = target[:, None] == xp.arange(z.shape[1])[None, :]
    total = -xp.sum(xp.where(onehot, log_probs, xp.zeros_like(log_probs)))
    grad = xp.exp(log_probs) - xp.astype(onehot, z.dtype)
    rows = z.shape[0]
    return (total / rows, grad / rows) if mean else (total, grad)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 9),
    classes=st.integers(1, 6),
    mean=st.booleans(),
    index_dtype=st.sampled_from(["int64", "int32", "uint8"]),
    scale=st.sampled_from([1.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_fused_index_cross_entropy_matches_the_generic_form(dtype, rows, classes, mean, index_dtype, scale, seed):
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(rng.standard_normal((rows, classes)) * scale).to(getattr(torch, dtype))
    target = torch.from_numpy(rng.integers(0, classes, rows)).to(getattr(torch, index_dtype))
    held = z.clone(), target.clone()
    loss, grad = array_ops(z).index_cross_entropy(z, target, mean)
    expected_loss, expected_grad = _generic_index_cross_entropy(z, target, mean)
    assert_close(loss, expected_loss, xp=xp)
    assert_close(grad, expected_grad, xp=xp)
    assert torch.equal(z, held[0]) and torch.equal(target, held[1])  # inputs are not written to
    reduction = "mean" if mean else "sum"
    through_loss = pnn.CrossEntropyLoss(reduction=reduction)(z, target)  # the loss takes the fused path
    assert_close(through_loss[0], expected_loss, xp=xp)
    assert_close(through_loss[1], expected_grad, xp=xp)


@pytest.mark.parametrize("bad", [[0, 3, 1], [0, -1, 2], [-100, 1, 2]])
def test_fused_index_cross_entropy_leaves_targets_outside_the_classes_to_the_generic_code(bad):
    z = torch.zeros((3, 3))
    target = torch.tensor(bad)
    assert array_ops(z).index_cross_entropy(z, target, True) is None
    if -100 in bad:  # the default ignore_index: masked by the generic code, as torch does
        loss, grad = pnn.CrossEntropyLoss()(z, target)
        expected = torch.nn.functional.cross_entropy(z, target)
        assert_close(loss, expected, xp=xp)
        assert float(grad[0].abs().sum()) == 0.0
    else:  # out of range: the generic code's typed error, as on every other backend
        with pytest.raises(pnn.PortableNNError) as fused:
            pnn.CrossEntropyLoss()(z, target)
        with pytest.raises(pnn.PortableNNError) as generic:
            pnn.CrossEntropyLoss()(np.zeros((3, 3), np.float32), np.array(bad))
        assert type(fused.value) is type(generic.value) and str(fused.value) == str(generic.value)
