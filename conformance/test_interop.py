"""Interop: ``Linear.from_torch`` / ``to_torch`` against ``torch.autograd``, ``Linear.from_arrays`` layouts."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import assert_close, random_array, to_numpy

from .helpers import oracle_forward
from .io_helpers import host_bytes


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="interop with torch.nn.Linear needs torch")


def _torch_linear(torch, dtype_name: str, bias: bool = True):
    torch.manual_seed(0)
    return torch.nn.Linear(5, 3, bias=bias, dtype=getattr(torch, dtype_name))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_torch_weights_give_torch_s_forward_and_backward(torch, xp, device, dtype, bias):
    """A torch.nn.Linear loaded into any backend matches torch.autograd on the same inputs."""
    name = _backend.dtype_name(xp, dtype)
    module = _torch_linear(torch, name, bias)
    layer = pnn.Linear.from_torch(module, xp=xp, device=device)
    assert (layer.xp, layer.device, layer.dtype) == (xp, device, dtype)
    assert host_bytes(layer.weight) == host_bytes(module.weight)
    x, x64 = random_array(xp, (2, 4, 5), device=device, dtype=dtype, seed=1)
    g, g64 = random_array(xp, (2, 4, 3), device=device, dtype=dtype, seed=2)
    x_t = torch.tensor(x64, dtype=module.weight.dtype, requires_grad=True)
    y_t = module(x_t)
    (y_t * torch.tensor(g64, dtype=y_t.dtype)).sum().backward()
    y = layer(x)
    grad_x = layer.backward(g)
    assert_close(y, y_t.detach().double().numpy())
    assert_close(grad_x, x_t.grad.double().numpy())
    assert_close(layer.grad_weight, module.weight.grad.double().numpy())
    if bias:
        assert_close(layer.grad_bias, module.bias.grad.double().numpy())
    else:
        assert layer.bias is None and layer.grad_bias is None


def test_torch_state_dict_with_requires_grad_tensors(torch, xp, device, dtype):
    module = _torch_linear(torch, _backend.dtype_name(xp, dtype))
    layer = pnn.Linear(5, 3, xp=xp, device=device, dtype=dtype, seed=4)
    state = module.state_dict(keep_vars=True)  # nn.Parameter values, requires_grad=True
    assert state["weight"].requires_grad
    layer.load_state_dict(state)
    assert host_bytes(layer.weight) == host_bytes(module.weight)
    assert host_bytes(layer.bias) == host_bytes(module.bias)
    layer.load_state_dict(module.state_dict())  # the plain (detached) form as well
    assert host_bytes(layer.weight) == host_bytes(module.weight)


def test_torch_optimizer_steps_do_not_reach_the_copy(torch, xp, device, dtype):
    """from_torch copies: a later in-place update of the torch module (optimizer.step) leaves the layer alone."""
    module = _torch_linear(torch, _backend.dtype_name(xp, dtype))
    layer = pnn.Linear.from_torch(module, xp=xp, device=device)
    before = host_bytes(layer.weight)
    with torch.no_grad():
        module.weight.add_(1.0)
    assert host_bytes(layer.weight) == before


def test_to_torch(torch, xp, device, dtype):
    layer = pnn.Linear(5, 3, xp=xp, device=device, dtype=dtype, seed=0)
    rng_state = torch.get_rng_state()
    module = layer.to_torch()
    assert torch.equal(torch.get_rng_state(), rng_state), "to_torch must not draw from torch's RNG"
    assert isinstance(module, torch.nn.Linear)
    assert (module.in_features, module.out_features) == (5, 3)
    assert isinstance(module.weight, torch.nn.Parameter) and module.weight.requires_grad
    assert _backend.dtype_name(_backend.resolve_namespace("torch"), module.weight.dtype) == _backend.dtype_name(
        xp, dtype
    )
    assert host_bytes(module.weight) == host_bytes(layer.weight)
    assert host_bytes(module.bias) == host_bytes(layer.bias)
    x, x64 = random_array(xp, (4, 5), device=device, dtype=dtype, seed=1)
    with torch.no_grad():
        module.weight.mul_(0.0)  # its parameters are copies: the layer keeps its own
    assert np.any(to_numpy(layer.weight) != 0)
    module = layer.to_torch()
    y_t = module(torch.tensor(x64, dtype=module.weight.dtype))
    assert_close(layer(x), y_t.detach().double().numpy())
    assert pnn.Linear(5, 3, bias=False, xp=xp, device=device, dtype=dtype).to_torch().bias is None


def test_from_torch_refuses_other_objects(xp):
    for other in (pnn.Linear(5, 3, xp=xp), {"weight": np.ones((3, 5))}):
        with pytest.raises(pnn.ArgumentTypeError, match=r"expects a torch\.nn\.Linear"):
            pnn.Linear.from_torch(other)


# --------------------------------------------------------------------------- from_arrays


def test_from_arrays_in_out_kernel(xp, device, dtype):
    """A (in, out) kernel W of ``Z = X W + b`` (Keras Dense, seeds 002/004) loads without transposing by hand."""
    kernel, kernel64 = random_array(xp, (5, 3), device=device, dtype=dtype, seed=1)
    b, b64 = random_array(xp, (3,), device=device, dtype=dtype, seed=2)
    layer = pnn.Linear.from_arrays(kernel, b, layout="in_out")
    assert (layer.in_features, layer.out_features) == (5, 3)
    assert (layer.xp, layer.device, layer.dtype) == (xp, device, dtype)
    np.testing.assert_array_equal(to_numpy(layer.weight), to_numpy(kernel).T)
    x, x64 = random_array(xp, (4, 5), device=device, dtype=dtype, seed=3)
    assert_close(layer(x), x64 @ kernel64 + b64)  # the (in, out) text's own formula, float64


def test_from_arrays_out_in_from_host_arrays(xp, device, dtype):
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((3, 5)), rng.standard_normal(3)
    layer = pnn.Linear.from_arrays(weight, bias, xp=xp, device=device, dtype=dtype)  # float64 host -> dtype: explicit
    assert (layer.xp, layer.device, layer.dtype) == (xp, device, dtype)
    assert host_bytes(layer.weight) == host_bytes(_backend.from_host(weight, xp, device, dtype))
    x, x64 = random_array(xp, (4, 5), device=device, dtype=dtype, seed=3)
    weight_used, bias_used = to_numpy(layer.weight).astype(np.float64), to_numpy(layer.bias).astype(np.float64)
    assert_close(layer(x), oracle_forward(x64, weight_used, bias_used))
    weight[...] = 0.0  # the caller's arrays are copied
    assert np.any(to_numpy(layer.weight) != 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"layout": "oi"}, pnn.ArgumentError, "layout must be"),
        ({"weight": "vector"}, pnn.ShapeError, "expected a 2-D array"),
        ({"bias": "wrong-shape"}, pnn.ShapeError, r"bias: expected shape \(3,\)"),
        ({"weight": "list"}, pnn.NamespaceError, "weight: expected an array"),
        ({"weight": "integer"}, pnn.DTypeError, "weight: expected a floating array"),
        ({"bias": "other-dtype"}, pnn.DTypeError, "bias: dtype float64 differs"),
    ],
    ids=["layout", "1-d-weight", "bias-shape", "list", "integer", "mixed-dtypes"],
)
def test_from_arrays_errors(xp, device, kwargs, error, message):
    weight, _ = random_array(xp, (3, 5), device=device, dtype=_backend.resolve_dtype(xp, "float32"))
    bias, _ = random_array(xp, (3,), device=device, dtype=_backend.resolve_dtype(xp, "float32"))
    arrays = {
        "vector": np.ones(5, dtype=np.float32),
        "wrong-shape": np.ones(5, dtype=np.float32),
        "list": [[1.0] * 5] * 3,
        "integer": np.ones((3, 5), dtype=np.int64),
        "other-dtype": np.ones(3, dtype=np.float64),
    }
    args = {"weight": weight, "bias": bias, "layout": "out_in"}
    args.update({k: arrays.get(v, v) for k, v in kwargs.items()})
    with pytest.raises(error, match=message):
        pnn.Linear.from_arrays(args["weight"], args["bias"], layout=args["layout"])
