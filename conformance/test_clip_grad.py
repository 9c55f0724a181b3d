"""clip_grad_norm_ / clip_grad_value_ against torch.nn.utils at run time, on every backend; Module.set_grads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn._backend import namespace_of
from portable_nn.testing import assert_close, random_array, to_numpy

torch = pytest.importorskip("torch")


def _model(xp, device, dtype, scale):
    model = pnn.Sequential(
        pnn.Linear(3, 4, xp=xp, device=device, dtype=dtype, seed=0),
        pnn.Tanh(),
        pnn.Linear(4, 2, xp=xp, device=device, dtype=dtype, seed=1),
    )
    grads = {}
    for index, (name, param) in enumerate(model.named_parameters().items()):
        grads[name] = random_array(xp, tuple(param.shape), device=device, dtype=dtype, seed=10 + index, scale=scale)
    model.set_grads({name: array for name, (array, _) in grads.items()})
    return model, {name: host for name, (_, host) in grads.items()}


def _torch_params(host_grads):
    params = []
    for host in host_grads.values():
        p = torch.nn.Parameter(torch.zeros(host.shape, dtype=torch.float64))
        p.grad = torch.from_numpy(host.copy())
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=lambda m: f"max{m}")
def test_clip_grad_norm_matches_torch(xp, device, dtype, norm_type, max_norm):
    model, host = _model(xp, device, dtype, scale=2.0)
    held = {name: grad for name, grad in model.named_grads().items()}
    held_values = {name: to_numpy(grad).copy() for name, grad in held.items()}
    params = _torch_params(host)
    expected = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    total = pnn.clip_grad_norm_(model, max_norm, norm_type=norm_type)
    assert namespace_of(total) is xp and total.shape == () and total.dtype == dtype
    assert_close(total, expected.numpy(), xp=xp)
    for (name, grad), p in zip(model.named_grads().items(), params, strict=True):
        assert_close(grad, p.grad.numpy(), xp=xp, msg=name)
    for name, grad in held.items():  # rebinding: arrays the caller held are unchanged
        np.testing.assert_array_equal(to_numpy(grad), held_values[name])


@pytest.mark.parametrize("clip_value", [0.1, 1.0, 10.0])
def test_clip_grad_value_matches_torch(xp, device, dtype, clip_value):
    model, host = _model(xp, device, dtype, scale=1.0)
    params = _torch_params(host)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    assert pnn.clip_grad_value_(model, clip_value) is None
    for (name, grad), p in zip(model.named_grads().items(), params, strict=True):
        assert_close(grad, p.grad.numpy(), xp=xp, msg=name)


def test_clip_grad_norm_nonfinite(xp, device, dtype):
    layer = pnn.Linear(2, 1, xp=xp, device=device, dtype=dtype, seed=0)
    layer.set_grads({"weight": xp.asarray([[float("inf"), 1.0]], dtype=dtype, device=device)})
    layer.set_grads({"bias": xp.zeros((1,), dtype=dtype, device=device)})
    before = layer.grad_weight
    with pytest.raises(pnn.ArgumentError, match="non-finite"):
        pnn.clip_grad_norm_(layer, 1.0, error_if_nonfinite=True)
    assert layer.grad_weight is before
    p = torch.nn.Parameter(torch.zeros(1, 2, dtype=torch.float64))
    p.grad = torch.tensor([[math.inf, 1.0]], dtype=torch.float64)
    expected = torch.nn.utils.clip_grad_norm_([p], 1.0)
    assert_close(pnn.clip_grad_norm_(layer, 1.0), expected.numpy(), xp=xp)
    assert_close(layer.grad_weight, p.grad.numpy(), xp=xp)


def test_clip_without_grads_and_errors(xp, device, dtype):
    layer = pnn.Linear(2, 1, xp=xp, device=device, dtype=dtype, seed=0)
    total = pnn.clip_grad_norm_(layer, 1.0)  # no gradients yet: torch returns 0 too
    assert float(to_numpy(total)) == 0.0 and layer.grad_weight is None
    with pytest.raises(pnn.ArgumentTypeError, match="Module"):
        pnn.clip_grad_norm_([layer.weight], 1.0)
    with pytest.raises(pnn.ArgumentError, match="max_norm"):
        pnn.clip_grad_norm_(layer, -1.0)
    with pytest.raises(pnn.ArgumentError, match="norm_type"):
        pnn.clip_grad_norm_(layer, 1.0, norm_type=0.0)
    with pytest.raises(pnn.ArgumentError, match="clip_value"):
        pnn.clip_grad_value_(layer, -0.5)


def test_set_grads_validates_all_or_nothing(xp, device, dtype):
    model, _ = _model(xp, device, dtype, scale=1.0)
    before = model.named_grads()
    good = xp.zeros((4, 3), dtype=dtype, device=device)
    with pytest.raises(pnn.UnknownParameterError, match=r"no parameter '9\.weight'"):
        model.set_grads({"0.weight": good, "9.weight": good})
    with pytest.raises(pnn.ShapeError):
        model.set_grads({"0.weight": good, "2.weight": good})
    with pytest.raises(pnn.UnknownParameterError):
        model[0].set_grads({"scale": good})
    after = model.named_grads()
    assert all(after[name] is before[name] for name in before)
    model.set_grads({"0.weight": good})
    assert model[0].grad_weight is good


@pytest.mark.parametrize("grad_dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0], ids=lambda p: f"p{p}")
def test_clip_grad_norm_matches_torch_in_every_dtype(xp, device, grad_dtype, norm_type):
    """Half-precision gradients whose sum of squares overflows float16 (norm 316): torch's norm and scaled grads."""
    from portable_nn._backend import from_host, resolve_dtype, supported_dtypes

    if grad_dtype not in supported_dtypes(xp, device):
        pytest.skip(f"{xp.__name__} on {device} has no {grad_dtype}")
    dtype = resolve_dtype(xp, grad_dtype)
    layer = pnn.Linear(10, 10, xp=xp, device=device, dtype=dtype, seed=0)
    host = np.linspace(20.0, 40.0, 100).reshape(10, 10)  # float16 sum of squares: inf
    host_bias = np.linspace(-3.0, 3.0, 10)
    layer.set_grads({"weight": from_host(host, xp, device, dtype), "bias": from_host(host_bias, xp, device, dtype)})
    torch_dtype = getattr(torch, grad_dtype)
    params = []
    for values in (host, host_bias):
        p = torch.nn.Parameter(torch.zeros(values.shape, dtype=torch_dtype))
        p.grad = torch.tensor(values).to(torch_dtype)  # a copy: torch clips in place
        params.append(p)
    expected = torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    total = pnn.clip_grad_norm_(layer, 1.0, norm_type=norm_type)
    assert total.dtype == dtype and math.isfinite(float(to_numpy(total)))
    assert_close(total, expected.double().numpy(), xp=xp)
    for grad, p in zip((layer.grad_weight, layer.grad_bias), params, strict=True):
        assert_close(grad, p.grad.double().numpy(), xp=xp)
        assert float(np.abs(to_numpy(grad)).max()) > 0.0


@pytest.mark.parametrize("clip", ["norm", "value"])
def test_clip_module_without_parameters_is_a_typed_error(clip):
    for module in (pnn.Tanh(), pnn.Sequential(pnn.ReLU(), pnn.Tanh())):
        with pytest.raises(pnn.ArgumentError, match="has no parameters"):
            if clip == "norm":
                pnn.clip_grad_norm_(module, 1.0)
            else:
                pnn.clip_grad_value_(module, 1.0)


@pytest.mark.parametrize("grad_dtype", ["float16", "bfloat16"])
def test_half_precision_clip_matches_torch_over_magnitudes(xp, device, grad_dtype):
    """Gradients from 1e-3 to 3e3 in float16/bfloat16 (sums of squares far past float16's 65504): torch's numbers."""
    from portable_nn._backend import from_host, resolve_dtype, supported_dtypes

    if grad_dtype not in supported_dtypes(xp, device):
        pytest.skip(f"{xp.__name__} on {device} has no {grad_dtype}")
    dtype = resolve_dtype(xp, grad_dtype)
    torch_dtype = getattr(torch, grad_dtype)

    @settings(max_examples=8, deadline=None)
    @given(
        scale=st.floats(1e-3, 3e3),
        max_norm=st.floats(0.01, 1e3),
        norm_type=st.sampled_from([2.0, 1.0, math.inf, 3.0]),
    )
    def clips_like_torch(scale, max_norm, norm_type):
        layer = pnn.Linear(8, 6, xp=xp, device=device, dtype=dtype, seed=0)
        host = np.sin(np.arange(48.0)).reshape(6, 8) * scale
        host_bias = np.cos(np.arange(6.0)) * scale
        params = []
        for values in (host, host_bias):
            p = torch.nn.Parameter(torch.zeros(values.shape, dtype=torch_dtype))
            p.grad = torch.tensor(values).to(torch_dtype)
            params.append(p)
        grads = {"weight": from_host(host, xp, device, dtype), "bias": from_host(host_bias, xp, device, dtype)}
        layer.set_grads(grads)  # both sides start from the same half-precision rounding of the values
        expected = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        total = pnn.clip_grad_norm_(layer, max_norm, norm_type=norm_type)
        assert_close(total, expected.double().numpy(), xp=xp)
        for grad, p in zip((layer.grad_weight, layer.grad_bias), params, strict=True):
            assert_close(grad, p.grad.double().numpy(), xp=xp)

    clips_like_torch()
