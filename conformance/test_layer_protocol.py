"""The one layer protocol: a layer writes the pure pair; forward, backward and the functional API all run it.

What each entry point hands the pair (``call.validate``, ``need_input_grad``), that the stateful
API keeps ``saved`` on the module with the parameters it was computed with, and that a layer
defining the derived methods itself is refused.
"""

from __future__ import annotations

import pytest

import portable_nn as pnn
from portable_nn.nn.module import CHECKED, UNCHECKED, Call
from portable_nn.testing import assert_close, random_array


class _Recording(pnn.Module):
    """``y = x * scale``, recording the ``call`` and ``need_input_grad`` of every call of its pure pair."""

    def __init__(self, *, xp, device, dtype):
        super().__init__(xp=xp, device=device, dtype=dtype)
        self.add_parameter("scale", (3,), init="ones")
        self.calls: list[tuple[str, bool, bool | None]] = []

    def functional_forward(self, params, x, call):
        self.calls.append(("forward", call.validate, None))
        if call.validate:
            self.check_input(x, last_axis=3)
        return x * params["scale"], x

    def functional_backward(self, params, x, grad_output, need_input_grad, call):
        self.calls.append(("backward", call.validate, need_input_grad))
        grad_x = grad_output * params["scale"] if need_input_grad else None
        return grad_x, {"scale": self.xp.sum(grad_output * x, axis=0)}


def _batch(xp, device, dtype):
    x, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=0)
    y, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=1)
    return x, y


def test_the_stateful_api_runs_the_pure_pair_checked(xp, device, dtype):
    layer = _Recording(xp=xp, device=device, dtype=dtype)
    x, g = _batch(xp, device, dtype)
    y = layer(x)
    grad_x = layer.backward(g)
    assert layer.calls == [("forward", True, None), ("backward", True, True)]
    assert_close(y, x, rtol=0, atol=0)
    assert_close(grad_x, g, rtol=0, atol=0)
    assert_close(layer.grad_scale, xp.sum(g * x, axis=0), rtol=0, atol=0)


def test_backward_uses_the_parameters_forward_ran_with(xp, device, dtype):
    layer = _Recording(xp=xp, device=device, dtype=dtype)
    x, g = _batch(xp, device, dtype)
    ones = layer.scale
    layer(x)
    layer.set_parameters({"scale": 2 * ones})  # rebound between forward and backward
    assert_close(layer.backward(g), g * ones, rtol=0, atol=0)


def test_value_and_grad_drops_the_input_gradient_and_train_step_skips_checks_once_validated(xp, device, dtype):
    layer = _Recording(xp=xp, device=device, dtype=dtype)
    x, y = _batch(xp, device, dtype)
    pnn.value_and_grad(layer, pnn.MSELoss())(layer.named_parameters(), x, y)
    assert layer.calls == [("forward", True, None), ("backward", True, False)]
    layer.calls.clear()
    step = pnn.train_step(layer, pnn.MSELoss(), pnn.SGD(layer, lr=0.1), compile=False)
    step(x, y)
    step(x, y)
    # the first batch of a signature runs checked, the next unchecked: validation once per signature
    checked, unchecked = [("forward", True, None), ("backward", True, False)], [("forward", False, None)]
    assert layer.calls == [*checked, *unchecked, ("backward", False, False)]


def test_a_container_hands_its_call_to_every_layer(xp, device, dtype):
    first, second = _Recording(xp=xp, device=device, dtype=dtype), _Recording(xp=xp, device=device, dtype=dtype)
    model = pnn.Sequential(first, pnn.Tanh(), second)
    x, g = _batch(xp, device, dtype)
    params = model.named_parameters()
    _, saved = model.functional_forward(params, x, UNCHECKED)
    grad_x, grads = model.functional_backward(params, saved, g, False, UNCHECKED)
    assert grad_x is None and list(grads) == ["0.scale", "2.scale"]
    assert first.calls == [("forward", False, None), ("backward", False, False)]
    assert second.calls == [("forward", False, None), ("backward", False, True)]  # its dL/dx feeds the Tanh


def test_call_is_frozen():
    assert Call() == CHECKED and CHECKED.validate and not UNCHECKED.validate
    with pytest.raises(AttributeError):
        CHECKED.validate = False  # type: ignore[misc]


@pytest.mark.parametrize("method", ["forward", "backward", "__call__"])
def test_defining_a_derived_method_is_refused(method):
    with pytest.raises(TypeError, match="functional_forward"):
        type("Old", (pnn.Module,), {method: lambda self, x: x})


def test_a_layer_without_the_pure_pair_says_what_to_write():
    class Empty(pnn.Module):
        pass

    with pytest.raises(NotImplementedError, match="functional_forward"):
        Empty()(1.0)
