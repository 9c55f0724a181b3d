"""Inputs that looked like arrays but meant something else, and forwards run under a compiler's trace."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own warning
@pytest.mark.parametrize(
    "make",
    [
        lambda x: np.ma.masked_array(x, mask=np.eye(*x.shape, dtype=bool)),
        lambda x: np.matrix(x),
    ],
    ids=["masked_array", "matrix"],
)
def test_numpy_subclasses_are_refused_and_change_nothing(make):
    """A masked array would compute with its masked values and np.matrix turns * into a matrix product."""
    layer = pnn.Linear(2, 2, seed=0)
    before = {name: p.copy() for name, p in layer.named_parameters().items()}
    x = make(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(pnn.NamespaceError, match=r"subclass of numpy\.ndarray"):
        layer(x)
    with pytest.raises(pnn.NamespaceError, match=r"subclass of numpy\.ndarray"):
        layer.set_parameters({"bias": make(np.ones((1, 2), dtype=np.float32))[0]})
    for name, p in layer.named_parameters().items():
        np.testing.assert_array_equal(p, before[name])
    assert type(layer.weight) is np.ndarray and layer.grad_weight is None
    with pytest.raises(pnn.CallOrderError):
        layer.backward(np.ones((2, 2), dtype=np.float32))


def test_jit_of_a_layer_forward_works_and_backward_points_to_the_functional_api():
    jax = pytest.importorskip("jax")
    layer = pnn.Linear(3, 2, xp="jax", seed=0)
    x = jax.numpy.ones((4, 3), dtype=jax.numpy.float32)
    y = jax.jit(layer.forward)(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(layer(x)), rtol=1e-6)
    jax.jit(layer.forward)(x)  # the eager call above kept x: run the traced one last
    with pytest.raises(pnn.CallOrderError, match=r"jax\.jit.*value_and_grad"):
        layer.backward(jax.numpy.ones_like(y))
    assert layer.grad_weight is None
    y = layer(x)  # an eager forward afterwards works as usual
    assert layer.backward(jax.numpy.ones_like(y)).shape == (4, 3)


def test_a_user_layer_still_runs_inside_jit_through_the_functional_form():
    """A user layer's pure pair runs inside the caller's trace (value_and_grad under jax.jit)."""
    jax = pytest.importorskip("jax")

    class Scale(pnn.Module):
        def __init__(self, *, xp="jax"):
            super().__init__(xp=xp)
            self.add_parameter("scale", (3,), init="ones")

        def functional_forward(self, params, x, call):
            return x * params["scale"], x

        def functional_backward(self, params, x, grad_output, need_input_grad, call):
            return grad_output * params["scale"], {"scale": self.xp.sum(grad_output * x, axis=0)}

    layer = Scale()
    x = jax.numpy.arange(6.0, dtype=jax.numpy.float32).reshape(2, 3)
    target = jax.numpy.zeros((2, 3), dtype=jax.numpy.float32)
    step = jax.jit(pnn.value_and_grad(layer, pnn.MSELoss()))
    _, grads = step(layer.named_parameters(), x, target)
    np.testing.assert_allclose(np.asarray(grads["scale"]), np.asarray(jax.numpy.sum(x * x, axis=0)) / 3, rtol=1e-6)
