"""The hot path works in place only on arrays it just made: nothing a caller gave or holds is ever written.

``forward``, gradient accumulation and ``step`` use the standard's in-place ``+=`` on fresh results to
save a buffer; these tests pin that inputs, parameters, earlier gradients and returned arrays keep their
values (JAX and Dask rebind instead, so they pass trivially there).
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import functional as F
from portable_nn.testing import random_array, to_numpy


def _values(*arrays):
    return [None if a is None else to_numpy(a).copy() for a in arrays]


def _assert_same(arrays, before):
    for array, values in zip(arrays, before, strict=True):
        if values is None:
            assert array is None
        else:
            np.testing.assert_array_equal(to_numpy(array), values)


@pytest.mark.parametrize("shape", [(4,), (6, 4), (2, 3, 4)], ids=["1d", "2d", "3d"])
def test_forward_and_backward_write_no_given_array(xp, device, dtype, shape):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=0)
    x, _ = random_array(xp, shape, device=device, dtype=dtype, seed=1)
    g, _ = random_array(xp, (*shape[:-1], 3), device=device, dtype=dtype, seed=2)
    held = (x, g, layer.weight, layer.bias)
    before = _values(*held)
    y = layer(x)
    y_before = _values(y)
    grad_x = layer.backward(g)
    _assert_same(held, before)
    _assert_same((y,), y_before)
    assert grad_x is not x and grad_x is not g


def test_accumulation_leaves_earlier_gradients_alone(xp, device, dtype):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=3)
    x, _ = random_array(xp, (5, 4), device=device, dtype=dtype, seed=4)
    g, _ = random_array(xp, (5, 3), device=device, dtype=dtype, seed=5)
    layer(x)
    layer.backward(g)
    first = (layer.grad_weight, layer.grad_bias)
    first_values = _values(*first)
    layer(x)
    layer.backward(g)
    _assert_same(first, first_values)
    assert layer.grad_weight is not first[0] and layer.grad_bias is not first[1]


def test_step_writes_neither_parameters_nor_gradients(xp, device, dtype):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=6)
    x, _ = random_array(xp, (5, 4), device=device, dtype=dtype, seed=7)
    layer.backward(xp.ones_like(layer(x)))
    held = (layer.weight, layer.bias, layer.grad_weight, layer.grad_bias)
    before = _values(*held)
    layer.step(0.5)
    _assert_same(held, before)
    assert layer.weight is not held[0] and layer.bias is not held[1]


def test_functional_writes_no_given_array(xp, device, dtype):
    w, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=8)
    b, _ = random_array(xp, (3,), device=device, dtype=dtype, seed=9)
    x, _ = random_array(xp, (2, 5, 4), device=device, dtype=dtype, seed=10)
    g, _ = random_array(xp, (2, 5, 3), device=device, dtype=dtype, seed=11)
    before = _values(w, b, x, g)
    y = F.linear(x, w, b)
    grads = F.linear_backward(g, x, w)
    _assert_same((w, b, x, g), before)
    assert all(a is not y for a in (w, b, x)) and all(a is not g for a in grads)
