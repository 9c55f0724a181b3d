"""Testing a layer of your own on every installed backend × device × dtype with portable_nn's plugin.

Nothing here is specific to a backend, and there is no conftest: installing portable_nn
registers the pytest plugin, whose fixtures ``xp``, ``device`` and ``dtype`` parametrize each
test over what is installed (``--backends``/``--devices``/``--dtypes`` narrow it down), and
``portable_nn.testing`` supplies the oracles' tools. Run it with::

    python -m pytest examples/user_layer            # or --backends numpy,torch --dtypes float32
"""

from __future__ import annotations

import numpy as np
import pytest
from scaled_tanh import ScaledTanh, scaled_tanh, scaled_tanh_backward

import portable_nn as pnn
from portable_nn.testing import assert_close, check_gradients, random_array

SHAPES = [(3,), (5, 3), (2, 4, 3), (0, 3)]


def _operands(xp, device, dtype, shape):
    """x of ``shape`` and per-feature scale/shift on the test's backend, with float64 host copies."""
    x, x64 = random_array(xp, shape, device=device, dtype=dtype, seed=0)
    scale, scale64 = random_array(xp, shape[-1:], device=device, dtype=dtype, seed=1)
    shift, shift64 = random_array(xp, shape[-1:], device=device, dtype=dtype, seed=2)
    return (x, scale, shift), (x64, scale64, shift64)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_matches_a_float64_numpy_oracle(xp, device, dtype, shape):
    (x, scale, shift), (x64, scale64, shift64) = _operands(xp, device, dtype, shape)
    y = scaled_tanh(x, scale, shift)
    # Same namespace, device and dtype as the input, values within the dtype's tolerance.
    assert_close(y, scale64 * np.tanh(x64) + shift64, xp=xp, device=device, dtype=dtype)


@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 2, 3)], ids=str)
def test_backward_against_finite_differences_and_autograd(xp, device, dtype, shape):
    operands, _ = _operands(xp, device, dtype, shape)
    report = check_gradients(scaled_tanh, scaled_tanh_backward, operands, names=("x", "scale", "shift"))
    assert report.references  # finite differences, plus torch.autograd when torch is installed


def test_layer_uses_the_functional_backward(xp, device, dtype):
    (x, _, _), _ = _operands(xp, device, dtype, (4, 3))
    g, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=3)
    layer = ScaledTanh(3, xp=xp, device=device, dtype=dtype)
    assert_close(layer(x), xp.tanh(x))
    grad_x = layer.backward(g)
    expected = scaled_tanh_backward(g, x, layer.scale, layer.shift)
    for got, want in zip((grad_x, layer.grad_scale, layer.grad_shift), expected, strict=True):
        assert_close(got, want, xp=xp, device=device, dtype=dtype)


def test_value_and_grad_gives_the_eager_gradients(xp, device, dtype):
    """The same pure pair serves the functional API: value_and_grad's gradients are backward's."""
    (x, _, _), _ = _operands(xp, device, dtype, (4, 3))
    target, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=4)
    layer = ScaledTanh(3, xp=xp, device=device, dtype=dtype)
    loss_fn = pnn.MSELoss()
    loss, grads = pnn.value_and_grad(layer, loss_fn)(layer.named_parameters(), x, target)
    eager_loss, grad = loss_fn(layer(x), target)
    layer.backward(grad)
    assert_close(loss, eager_loss, rtol=0, atol=0)
    for name, got in grads.items():
        assert_close(got, layer.named_grads()[name], rtol=0, atol=0)
