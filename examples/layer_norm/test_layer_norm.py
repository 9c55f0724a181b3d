"""The user-defined LayerNorm on every installed backend × device × dtype, through portable_nn's plugin only.

Run with ``python -m pytest examples/layer_norm`` (``--backends``/``--devices``/``--dtypes`` narrow it).
"""

from __future__ import annotations

import numpy as np
import pytest
from layer_norm import LayerNorm, layer_norm, layer_norm_backward

import portable_nn as pnn
from portable_nn.testing import assert_close, check_gradients, random_array, to_numpy, tolerance

SHAPES = [(4,), (5, 4), (2, 3, 4)]


def _oracle(x64: np.ndarray, w64: np.ndarray, b64: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    centered = x64 - x64.mean(axis=-1, keepdims=True)
    return centered / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + eps) * w64 + b64


def _operands(xp, device, dtype, shape):
    x, x64 = random_array(xp, shape, device=device, dtype=dtype, seed=0)
    w, w64 = random_array(xp, shape[-1:], device=device, dtype=dtype, seed=1)
    b, b64 = random_array(xp, shape[-1:], device=device, dtype=dtype, seed=2)
    return (x, w, b), (x64, w64, b64)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_matches_a_float64_oracle(xp, device, dtype, shape):
    (x, w, b), (x64, w64, b64) = _operands(xp, device, dtype, shape)
    assert_close(layer_norm(x, w, b), _oracle(x64, w64, b64), xp=xp, device=device, dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_backward_against_finite_differences_and_autograd(xp, device, dtype, shape):
    operands, _ = _operands(xp, device, dtype, shape)
    report = check_gradients(layer_norm, layer_norm_backward, operands, names=("x", "weight", "bias"))
    assert "finite differences" in " ".join(report.references)


def test_layer_accumulates_the_functional_gradients(xp, device, dtype):
    norm = LayerNorm(4, xp=xp, device=device, dtype=dtype)
    x, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=3)
    g, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=4)
    assert set(norm.named_parameters()) == {"weight", "bias"}
    assert_close(norm.weight, np.ones(4), xp=xp, device=device, dtype=dtype, rtol=0, atol=0)
    norm(x)
    grad_x = norm.backward(g)
    expected = layer_norm_backward(g, x, norm.weight, norm.bias)
    for got, want in zip((grad_x, norm.grad_weight, norm.grad_bias), expected, strict=True):
        assert_close(got, want)
    norm(x)
    norm.backward(g)  # a second backward adds to the gradients
    assert_close(norm.grad_weight, to_numpy(expected[1]) * 2, xp=xp, device=device, dtype=dtype)


def test_errors_are_typed_and_change_nothing(xp, device, dtype):
    norm = LayerNorm(4, xp=xp, device=device, dtype=dtype)
    x, _ = random_array(xp, (3, 5), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError, match=r"expected shape \(\*, 4\)"):
        norm(x)
    with pytest.raises(pnn.CallOrderError, match="no forward was run"):
        norm.backward(x)
    assert norm.grad_weight is None and norm.grad_bias is None


def _train(model, steps: int = 20) -> list[float]:
    xp, device, dtype = model.xp, model.device, model.dtype
    x, _ = random_array(xp, (16, 4), device=device, dtype=dtype, seed=10)
    target, _ = random_array(xp, (16, 2), device=device, dtype=dtype, seed=11)
    optimizer = pnn.Adam(model, lr=0.03)
    losses = []
    for _ in range(steps):
        loss, grad = pnn.MSELoss()(model(x), target)
        optimizer.zero_grad()
        model.backward(grad)
        optimizer.step()
        losses.append(float(to_numpy(loss)))
    return losses


def _model(xp="numpy", device=None, dtype="float64") -> pnn.Sequential:
    return pnn.Sequential(
        pnn.Linear(4, 8, xp=xp, device=device, dtype=dtype, seed=0),
        LayerNorm(8, xp=xp, device=device, dtype=dtype),
        pnn.Tanh(),
        pnn.Linear(8, 2, xp=xp, device=device, dtype=dtype, seed=1),
    )


def test_trains_inside_sequential_like_the_float64_numpy_run(xp, device, dtype, dtype_name):
    model, reference = _model(xp, device, dtype), _model()
    losses = _train(model)
    _train(reference)
    assert losses[-1] < 0.75 * losses[0]
    rtol, atol = tolerance(dtype_name)  # 20 Adam steps: the rounding of each step adds up
    for (name, got), want in zip(model.named_parameters().items(), reference.named_parameters().values(), strict=True):
        assert_close(got, to_numpy(want), xp=xp, device=device, dtype=dtype, rtol=rtol * 100, atol=atol * 100), name


def test_saved_model_reloads_on_the_host_and_training_resumes(xp, device, dtype, dtype_name, tmp_path):
    """A trained Sequential holding the user layer saves whole (architecture + parameters + optimizer state):
    loaded as float64 NumPy it predicts what it predicted here, and training resumes where it stopped."""
    x, _ = random_array(xp, (16, 4), device=device, dtype=dtype, seed=10)
    target, _ = random_array(xp, (16, 2), device=device, dtype=dtype, seed=11)
    model = _model(xp, device, dtype)
    optimizer = pnn.Adam(model, lr=0.03)

    def step(model, optimizer):
        _, grad = pnn.MSELoss()(model(x), target)
        optimizer.zero_grad()
        model.backward(grad)
        optimizer.step()

    for _ in range(3):
        step(model, optimizer)
    path = tmp_path / "model.safetensors"
    pnn.save(model, path, optimizer=optimizer)

    on_host = pnn.load(path, xp="numpy", dtype="float64")
    assert isinstance(on_host[1], LayerNorm) and on_host[1].get_config() == model[1].get_config()
    with pnn.no_grad():
        rtol, atol = tolerance(dtype_name)
        assert_close(model(x), on_host(np.asarray(to_numpy(x), dtype=np.float64)), rtol=rtol, atol=atol)

    resumed = pnn.load(path, xp=xp, device=device)
    resumed_optimizer = pnn.load_optimizer(path, resumed)
    for _ in range(2):
        step(model, optimizer)
        step(resumed, resumed_optimizer)
    for name, got in resumed.named_parameters().items():  # same backend, same arithmetic: bit for bit
        assert_close(got, model.named_parameters()[name], rtol=0, atol=0, msg=name)


def test_train_step_runs_the_same_pure_pair(xp, device, dtype):
    """The layer's one pure pair serves the eager loop and train_step alike: bit for bit (compile=False), and the
    functional call leaves the layer as it was."""

    def model():
        return pnn.Sequential(
            pnn.Linear(3, 4, xp=xp, device=device, dtype=dtype, seed=0),
            LayerNorm(4, xp=xp, device=device, dtype=dtype),
            pnn.Linear(4, 2, xp=xp, device=device, dtype=dtype, seed=1),
        )

    eager, stepped = model(), model()
    eager_opt = pnn.Adam(eager, lr=0.01)
    step = pnn.train_step(stepped, pnn.MSELoss(), pnn.Adam(stepped, lr=0.01), compile=False)
    x, _ = random_array(xp, (5, 3), device=device, dtype=dtype, seed=0)
    target, _ = random_array(xp, (5, 2), device=device, dtype=dtype, seed=1)
    norm_attributes = dict(vars(stepped[1]))
    for _ in range(3):
        _, grad = pnn.MSELoss()(eager(x), target)
        eager_opt.zero_grad()
        eager.backward(grad)
        eager_opt.step()
        step(x, target)
    for name, p in eager.named_parameters().items():
        assert_close(stepped.named_parameters()[name], p, rtol=0, atol=0)
    assert set(vars(stepped[1])) == set(norm_attributes) and stepped[1].grad_weight is None
