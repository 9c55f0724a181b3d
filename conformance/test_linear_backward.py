"""Backward, gradient accumulation, ``zero_grad`` and ``step`` against a float64 NumPy oracle."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import functional as F
from portable_nn.testing import assert_close, random_array, to_numpy

from .helpers import host_params, oracle_backward

SHAPES = [(5,), (4, 5), (2, 3, 5), (0, 5)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x" + "x".join(map(str, s)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_backward_matches_oracle(xp, device, dtype, shape, bias):
    layer = pnn.Linear(5, 3, bias=bias, xp=xp, device=device, dtype=dtype, seed=1)
    x, x64 = random_array(xp, shape, device=device, dtype=dtype, seed=2)
    g, g64 = random_array(xp, (*shape[:-1], 3), device=device, dtype=dtype, seed=3)
    layer(x)
    grad_x = layer.backward(g)
    ex, ew, eb = oracle_backward(g64, x64, host_params(layer)[0])
    assert tuple(grad_x.shape) == shape and grad_x.dtype == dtype
    assert_close(grad_x, ex, xp=xp)
    assert_close(layer.grad_weight, ew, xp=xp)
    if bias:
        assert_close(layer.grad_bias, eb, xp=xp)
    else:
        assert layer.grad_bias is None


def test_functional_backward_matches_oracle(xp, device, dtype):
    w, w64 = random_array(xp, (3, 4), device=device, dtype=dtype, seed=4)
    x, x64 = random_array(xp, (2, 5, 4), device=device, dtype=dtype, seed=5)
    g, g64 = random_array(xp, (2, 5, 3), device=device, dtype=dtype, seed=6)
    grad_x, grad_w, grad_b = F.linear_backward(g, x, w)
    for got, want in zip((grad_x, grad_w, grad_b), oracle_backward(g64, x64, w64), strict=True):
        assert_close(got, want, xp=xp)
    assert F.linear_backward(g, x, w, has_bias=False)[2] is None


def test_gradients_accumulate_until_zero_grad(xp, device, dtype):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=7)
    x1, x1_64 = random_array(xp, (5, 4), device=device, dtype=dtype, seed=8)
    x2, x2_64 = random_array(xp, (2, 4), device=device, dtype=dtype, seed=9)
    g1, g1_64 = random_array(xp, (5, 3), device=device, dtype=dtype, seed=10)
    g2, g2_64 = random_array(xp, (2, 3), device=device, dtype=dtype, seed=11)
    w64 = host_params(layer)[0]
    layer(x1)
    layer.backward(g1)
    layer(x2)
    layer.backward(g2)
    _, w1, b1 = oracle_backward(g1_64, x1_64, w64)
    _, w2, b2 = oracle_backward(g2_64, x2_64, w64)
    assert_close(layer.grad_weight, w1 + w2)
    assert_close(layer.grad_bias, b1 + b2)
    layer.zero_grad()
    assert layer.grad_weight is None and layer.grad_bias is None
    layer(x2)
    layer.backward(g2)
    assert_close(layer.grad_weight, w2)


@pytest.mark.parametrize("lr", [0.01, 0.5, 0.0])
def test_step_is_gradient_descent_by_rebinding(xp, device, dtype, lr):
    layer = pnn.Linear(4, 2, xp=xp, device=device, dtype=dtype, seed=12)
    old_weight, old_bias = layer.weight, layer.bias
    w64, b64 = host_params(layer)
    x, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=13)
    g, _ = random_array(xp, (3, 2), device=device, dtype=dtype, seed=14)
    layer(x)
    layer.backward(g)
    gw, gb = to_numpy(layer.grad_weight).astype(np.float64), to_numpy(layer.grad_bias).astype(np.float64)
    layer.step(lr=lr)
    assert_close(layer.weight, w64 - lr * gw)
    assert_close(layer.bias, b64 - lr * gb)
    # The old arrays were not written to (rebinding, not in-place): JAX-safe.
    assert_close(old_weight, w64, rtol=0, atol=0)
    assert_close(old_bias, b64, rtol=0, atol=0)
    assert layer.grad_weight is not None, "step must not clear the gradients"


def test_step_default_lr(xp, device, dtype):
    layer = pnn.Linear(2, 2, xp=xp, device=device, dtype=dtype, seed=15)
    w64, _ = host_params(layer)
    x, _ = random_array(xp, (1, 2), device=device, dtype=dtype, seed=16)
    layer(x)
    layer.backward(xp.ones_like(layer(x)))
    gw = to_numpy(layer.grad_weight).astype(np.float64)
    layer.step()
    assert_close(layer.weight, w64 - 0.01 * gw)
