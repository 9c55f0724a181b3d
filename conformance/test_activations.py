"""ReLU, Tanh, Sigmoid: forward against float64 NumPy, backward against torch.autograd and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import device_of, namespace_of, resolve_dtype
from portable_nn.testing import assert_close, check_gradients, random_array, to_numpy

ORACLES = {
    "ReLU": lambda x: np.maximum(x, 0.0),
    "Tanh": np.tanh,
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}
TORCH_NAMES = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}
SHAPES = [(2, 3, 5), (0, 3)]  # elementwise: any shape; one N-D and one empty case


def _make(name: str) -> pnn.Module:
    return getattr(pnn, name)()


@pytest.mark.parametrize("name", list(ORACLES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x" + "x".join(map(str, s)))
def test_forward_matches_oracle(xp, device, dtype, name, shape):
    x, x64 = random_array(xp, shape, device=device, dtype=dtype, seed=1, scale=3.0)
    y = _make(name)(x)
    assert namespace_of(y) is xp and device_of(y) == device and y.dtype == dtype
    assert_close(y, ORACLES[name](x64), xp=xp)


@pytest.mark.parametrize("name", list(ORACLES))
def test_backward_matches_torch_autograd(xp, device, dtype, name):
    torch = pytest.importorskip("torch")
    x, x64 = random_array(xp, (5, 6), device=device, dtype=dtype, seed=2, scale=3.0)
    g, g64 = random_array(xp, (5, 6), device=device, dtype=dtype, seed=3)
    layer = _make(name)
    layer(x)
    grad_x = layer.backward(g)

    tx = torch.from_numpy(x64).requires_grad_(True)
    getattr(torch, TORCH_NAMES[name])(tx).backward(torch.from_numpy(g64))
    assert grad_x.dtype == dtype and device_of(grad_x) == device
    assert_close(grad_x, tx.grad.numpy(), xp=xp)


@pytest.mark.requires_float64
@pytest.mark.parametrize("name", list(ORACLES))
def test_backward_matches_finite_differences(xp, device, name):
    float64 = resolve_dtype(xp, "float64")
    x, _ = random_array(xp, (3, 4), device=device, dtype=float64, seed=4, scale=2.0)

    def backward(g, x):
        layer = _make(name)
        layer(x)
        return (layer.backward(g),)

    check_gradients(lambda x: _make(name)(x), backward, [x], names=["x"], seed=5)


def test_relu_gradient_is_zero_at_zero(xp, device, dtype):
    """PyTorch's convention: d relu / dx at x = 0 is 0."""
    x = xp.zeros((2, 3), dtype=dtype, device=device)
    layer = pnn.ReLU()
    layer(x)
    assert_close(layer.backward(xp.ones_like(x)), np.zeros((2, 3)), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["Tanh", "Sigmoid"])
def test_saturating_inputs_stay_finite(xp, device, dtype, name):
    """exp never overflows: Sigmoid computes from exp(-|x|), so ±1e4 gives exactly 0 and 1."""
    x, x64 = random_array(xp, (8,), device=device, dtype=dtype, seed=6, scale=1e4)
    layer = _make(name)
    y = layer(x)
    grad_x = layer.backward(xp.ones_like(y))
    expected = np.sign(x64) if name == "Tanh" else (x64 > 0).astype(np.float64)
    assert_close(y, expected, atol=0, rtol=0)
    assert np.all(np.isfinite(to_numpy(grad_x).astype(np.float64)))


@pytest.mark.parametrize("name", list(ORACLES))
def test_no_grad_forward_keeps_nothing(xp, device, dtype, name):
    x, _ = random_array(xp, (2, 3), device=device, dtype=dtype)
    layer = _make(name)
    with pnn.no_grad():
        y = layer(x)
    assert layer._saved is None
    with pytest.raises(pnn.CallOrderError, match="no_grad"):
        layer.backward(xp.ones_like(y))


@pytest.mark.parametrize("name", list(ORACLES))
def test_misuse_raises_typed_errors_and_keeps_state(xp, device, dtype, name):
    layer = _make(name)
    g, _ = random_array(xp, (2, 3), device=device, dtype=dtype)
    with pytest.raises(pnn.CallOrderError, match="no forward"):
        layer.backward(g)
    x, _ = random_array(xp, (2, 3), device=device, dtype=dtype)
    layer(x)
    kept = layer._saved
    wrong_shape, _ = random_array(xp, (3, 2), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError, match=r"expected shape \(2, 3\) \(the last output's\), got \(3, 2\)"):
        layer.backward(wrong_shape)
    with pytest.raises(pnn.DTypeError):
        layer.backward(xp.ones((2, 3), dtype=xp.int32, device=device))
    with pytest.raises(pnn.DTypeError, match="real floating"):
        layer(xp.ones((2, 3), dtype=xp.int32, device=device))
    with pytest.raises(pnn.NamespaceError):
        layer([[1.0, 2.0, 3.0]])
    assert layer._saved is kept, "a failed call replaced what forward kept"


def test_repr_and_no_parameters():
    for name in ORACLES:
        layer = _make(name)
        assert repr(layer) == f"{name}()"
        assert layer.named_parameters() == {} and layer.parameters() == []
