"""NumPy's primitives (``portable_nn.backends.numpy_ops``) against the generic array-API code: equal bit for bit.

They perform the generic code's operations without NumPy's Python wrappers around its reductions, so
unlike a fused kernel they must give exactly its numbers (train_step on NumPy is bit-identical either way).
"""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn.backends import numpy_ops
from portable_nn.backends.fast_paths import array_ops


def _generic_log_softmax(z):
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def _generic_index_cross_entropy(z, target, mean):  # the generic path of CrossEntropyLoss, step by step
    log_probs = _generic_log_softmax(z)
    onehot = xp.reshape(target, (-1, 1)) == xp.reshape(xp.arange(z.shape[1], dtype=target.dtype), (1, -1))
    probs = xp.exp(log_probs)
    total = -xp.sum(xp.where(onehot, log_probs, xp.zeros_like(log_probs)))
    probs -= xp.astype(onehot, z.dtype)
    rows = z.shape[0]
    if not mean:
        return xp.asarray(total), probs
    probs *= 1 / rows
    return xp.asarray(total / rows), probs


def _same(a, b):
    assert type(a) is type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b, strict=True)


def test_numpy_has_primitives_without_a_fused_linear():
    assert array_ops(np.zeros(1)) is numpy_ops
    assert numpy_ops.linear is None and numpy_ops.CONCRETE


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=20, deadline=None)
@given(
    rows=st.integers(1, 9),
    classes=st.integers(1, 6),
    mean=st.booleans(),
    index_dtype=st.sampled_from(["int64", "int32", "uint8"]),
    scale=st.sampled_from([1.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_primitives_equal_the_generic_code_bit_for_bit(dtype, rows, classes, mean, index_dtype, scale, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((rows, classes)) * scale).astype(dtype)
    if classes > 1:
        z[rng.integers(0, rows), rng.integers(0, classes)] = -np.inf  # a masked class
    target = rng.integers(0, classes, rows).astype(index_dtype)
    held = z.copy(), target.copy()
    _same(numpy_ops.log_softmax(z), _generic_log_softmax(z))
    _same(numpy_ops.sum_rows(z), xp.sum(z, axis=0))
    for got, expected in zip(
        numpy_ops.index_cross_entropy(z, target, mean), _generic_index_cross_entropy(z, target, mean), strict=True
    ):
        _same(got, expected)
    _same(z, held[0])  # inputs are not written to
    _same(target, held[1])


@pytest.mark.parametrize("bad", [[0, 3, 1], [0, -1, 2], [-100, 1, 2]])
def test_targets_outside_the_classes_go_to_the_generic_code(bad):
    z, target = np.zeros((3, 3), np.float32), np.array(bad)
    assert numpy_ops.index_cross_entropy(z, target, True) is None
    if -100 in bad:  # the default ignore_index: masked by the generic code
        loss, grad = pnn.CrossEntropyLoss()(z, target)
        assert float(loss) == pytest.approx(np.log(3)) and float(np.abs(grad[0]).sum()) == 0.0
    else:
        with pytest.raises(pnn.ArgumentError, match="class indices must be in"):
            pnn.CrossEntropyLoss()(z, target)
