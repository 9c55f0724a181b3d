"""need_input_grad=False (value_and_grad drops the model's dL/dx): the first Linear skips it, every gradient stays."""

from __future__ import annotations

import portable_nn as pnn
from portable_nn.testing import assert_close, random_array

from .helpers import mlp


def _mlp(xp, device, dtype) -> pnn.Sequential:
    return mlp((4, 5, 3), xp, device, dtype)


def test_first_linear_skips_input_grad_and_gradients_are_unchanged(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    params = model.named_parameters()
    x, _ = random_array(xp, (6, 4), device=device, dtype=dtype, seed=3)
    g, _ = random_array(xp, (6, 3), device=device, dtype=dtype, seed=4)
    _, ctx = model.functional_forward(params, x)
    grad_x, grads = model.functional_backward(params, ctx, g)
    skipped_x, skipped = model.functional_backward(params, ctx, g, need_input_grad=False)
    assert grad_x is not None and skipped_x is None  # the first Linear did not compute dL/dx
    assert list(skipped) == list(grads)
    for name in grads:  # later layers still got their dL/dx: every gradient is the same
        assert_close(skipped[name], grads[name], dtype=dtype)


def test_value_and_grad_matches_explicit_backward(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    params = model.named_parameters()
    x, _ = random_array(xp, (6, 4), device=device, dtype=dtype, seed=3)
    y, _ = random_array(xp, (6, 3), device=device, dtype=dtype, seed=4)
    loss_fn = pnn.MSELoss()
    _, grads = pnn.value_and_grad(model, loss_fn)(params, x, y)
    prediction, ctx = model.functional_forward(params, x)
    _, grad = loss_fn(prediction, y)
    _, expected = model.functional_backward(params, ctx, grad)
    for name in expected:
        assert_close(grads[name], expected[name], dtype=dtype)
