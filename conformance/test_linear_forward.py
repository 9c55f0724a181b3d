"""Forward pass of ``Linear`` and ``functional.linear`` against a float64 NumPy oracle."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import functional as F
from portable_nn.testing import assert_close, random_array

from .helpers import host_params, oracle_forward

SHAPES = [(5,), (4, 5), (2, 3, 5), (2, 1, 3, 5), (0, 5), (0, 3, 5)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x" + "x".join(map(str, s)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_forward_matches_oracle(xp, device, dtype, shape, bias):
    layer = pnn.Linear(5, 3, bias=bias, xp=xp, device=device, dtype=dtype, seed=1)
    x, x64 = random_array(xp, shape, device=device, dtype=dtype, seed=2)
    y = layer(x)
    assert tuple(y.shape) == (*shape[:-1], 3)
    assert y.dtype == dtype
    assert_close(y, oracle_forward(x64, *host_params(layer)), xp=xp)


def test_forward_non_contiguous_input(xp, device, dtype):
    layer = pnn.Linear(6, 4, xp=xp, device=device, dtype=dtype, seed=3)
    xt, xt64 = random_array(xp, (6, 7), device=device, dtype=dtype, seed=4)
    wide, wide64 = random_array(xp, (7, 12), device=device, dtype=dtype, seed=5)
    for x, x64 in ((xt.T, xt64.T), (wide[:, ::2], wide64[:, ::2])):
        assert_close(layer(x), oracle_forward(x64, *host_params(layer)))


def test_functional_linear_matches_oracle(xp, device, dtype):
    w, w64 = random_array(xp, (3, 4), device=device, dtype=dtype, seed=6)
    b, b64 = random_array(xp, (3,), device=device, dtype=dtype, seed=7)
    x, x64 = random_array(xp, (2, 5, 4), device=device, dtype=dtype, seed=8)
    assert_close(F.linear(x, w, b), oracle_forward(x64, w64, b64), xp=xp)
    assert_close(F.linear(x, w), oracle_forward(x64, w64, None), xp=xp)


def test_in_out_layout_is_the_transpose(xp, device, dtype):
    """Seeds 002/004 write ``Z = X W + b`` with W (in, out): the same layer with ``weight = W.T``."""
    w_in_out, w64 = random_array(xp, (4, 3), device=device, dtype=dtype, seed=9)
    b, b64 = random_array(xp, (3,), device=device, dtype=dtype, seed=10)
    x, x64 = random_array(xp, (6, 4), device=device, dtype=dtype, seed=11)
    assert_close(F.linear(x, w_in_out.T, b), x64 @ w64 + b64)


def test_no_grad_forward_keeps_nothing(xp, device, dtype):
    layer = pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=0)
    x, x64 = random_array(xp, (4, 3), device=device, dtype=dtype, seed=1)
    with pnn.no_grad():
        assert not pnn.is_grad_enabled()
        y = layer(x)
    assert pnn.is_grad_enabled()
    assert layer._saved is None
    assert_close(y, oracle_forward(x64, *host_params(layer)))
    with pytest.raises(pnn.CallOrderError, match="no_grad"):
        layer.backward(xp.ones_like(y))


def test_parameters_and_repr(xp, device, dtype, backend):
    layer = pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=0)
    assert layer.parameters() == [layer.weight, layer.bias] or all(
        a is b for a, b in zip(layer.parameters(), [layer.weight, layer.bias], strict=True)
    )
    assert tuple(layer.weight.shape) == (2, 3) and tuple(layer.bias.shape) == (2,)
    assert layer.grad_weight is None and layer.grad_bias is None
    text = repr(layer)
    assert "in_features=3" in text and "out_features=2" in text and f"backend={backend}" in text
    no_bias = pnn.Linear(3, 2, bias=False, xp=xp, device=device, dtype=dtype, seed=0)
    assert no_bias.bias is None and len(no_bias.parameters()) == 1 and "bias=False" in repr(no_bias)


def test_zero_features(xp, device, dtype):
    """``in_features=0`` gives the bias alone, like torch.nn.Linear(0, n)."""
    layer = pnn.Linear(0, 2, xp=xp, device=device, dtype=dtype, seed=0)
    x, _ = random_array(xp, (3, 0), device=device, dtype=dtype)
    expected = np.broadcast_to(host_params(layer)[1], (3, 2))
    assert_close(layer(x), expected)
