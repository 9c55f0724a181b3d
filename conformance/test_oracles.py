"""Against independent implementations: ``torch.nn.Linear`` + autograd, and ``jax.jit`` of the functional API."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import functional as F
from portable_nn.testing import assert_close, random_array, to_numpy

from .helpers import oracle_backward, oracle_forward


def _random_shape(seed: int) -> tuple[tuple[int, ...], int, int]:
    rng = np.random.default_rng(seed)
    leading = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(0, 3)))
    return leading, int(rng.integers(1, 40)), int(rng.integers(1, 40))


@pytest.mark.parametrize("case", range(6))
def test_matches_torch_nn_linear_and_autograd(xp, device, dtype, case):
    torch = pytest.importorskip("torch")
    leading, in_f, out_f = _random_shape(case)
    layer = pnn.Linear(in_f, out_f, xp=xp, device=device, dtype=dtype, seed=case)
    x, x64 = random_array(xp, (*leading, in_f), device=device, dtype=dtype, seed=100 + case)
    g, g64 = random_array(xp, (*leading, out_f), device=device, dtype=dtype, seed=200 + case)

    reference = torch.nn.Linear(in_f, out_f, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(to_numpy(layer.weight).astype(np.float64)))
        reference.bias.copy_(torch.from_numpy(to_numpy(layer.bias).astype(np.float64)))
    tx = torch.from_numpy(x64).requires_grad_(True)
    ty = reference(tx)
    ty.backward(torch.from_numpy(g64))

    y = layer(x)
    grad_x = layer.backward(g)
    assert_close(y, ty.detach().numpy())
    assert_close(grad_x, tx.grad.numpy())
    assert_close(layer.grad_weight, reference.weight.grad.numpy())
    assert_close(layer.grad_bias, reference.bias.grad.numpy())


@pytest.mark.backends(only=["jax"], reason="jax.jit is JAX's own")
def test_functional_api_under_jax_jit(xp, device, dtype):
    jax = pytest.importorskip("jax")
    w, w64 = random_array(xp, (3, 4), device=device, dtype=dtype, seed=1)
    b, b64 = random_array(xp, (3,), device=device, dtype=dtype, seed=2)
    x, x64 = random_array(xp, (2, 5, 4), device=device, dtype=dtype, seed=3)
    g, g64 = random_array(xp, (2, 5, 3), device=device, dtype=dtype, seed=4)
    y = jax.jit(F.linear)(x, w, b)
    assert_close(y, oracle_forward(x64, w64, b64))
    grads = jax.jit(F.linear_backward, static_argnames="has_bias")(g, x, w, has_bias=True)
    for got, want in zip(grads, oracle_backward(g64, x64, w64), strict=True):
        assert_close(got, want)
    assert list(y.devices()) == [device]


@pytest.mark.backends(only=["jax"], reason="jax.grad is JAX's own")
def test_functional_backward_equals_jax_vjp(xp, device, dtype):
    jax = pytest.importorskip("jax")
    w, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=5)
    b, _ = random_array(xp, (3,), device=device, dtype=dtype, seed=6)
    x, _ = random_array(xp, (7, 4), device=device, dtype=dtype, seed=7)
    g, _ = random_array(xp, (7, 3), device=device, dtype=dtype, seed=8)
    _, vjp = jax.vjp(F.linear, x, w, b)
    for got, want in zip(F.linear_backward(g, x, w), vjp(g), strict=True):
        assert_close(got, want)


def test_backend_result_placement(xp, device, dtype):
    """Outputs and grads stay on the layer's namespace, device and dtype."""
    from portable_nn._backend import device_of, namespace_of

    layer = pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=0)
    x, _ = random_array(xp, (4, 3), device=device, dtype=dtype)
    y = layer(x)
    grad_x = layer.backward(xp.ones_like(y))
    for arr in (y, grad_x, layer.grad_weight, layer.grad_bias):
        assert namespace_of(arr) is xp
        assert device_of(arr) == device
        assert arr.dtype == dtype
