"""Sequential: forward/backward against torch.nn.Sequential + autograd and finite differences; routing; atomicity."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import from_host, is_lazy, resolve_dtype, supported_dtypes
from portable_nn.testing import assert_close, check_gradients, random_array, to_numpy


def _mlp(xp, device, dtype) -> pnn.Sequential:
    return pnn.Sequential(
        pnn.Linear(4, 5, xp=xp, device=device, dtype=dtype, seed=1),
        pnn.Tanh(),
        pnn.Linear(5, 3, xp=xp, device=device, dtype=dtype, seed=2),
        pnn.ReLU(),
        pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=3),
        pnn.Sigmoid(),
    )


def test_matches_torch_sequential_and_autograd(xp, device, dtype):
    torch = pytest.importorskip("torch")
    model = _mlp(xp, device, dtype)
    x, x64 = random_array(xp, (6, 4), device=device, dtype=dtype, seed=4)
    g, g64 = random_array(xp, (6, 2), device=device, dtype=dtype, seed=5)

    reference = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2),
        torch.nn.Sigmoid(),
    ).double()  # fmt: skip
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(torch.from_numpy(to_numpy(model.named_parameters()[name]).astype(np.float64)))
    tx = torch.from_numpy(x64).requires_grad_(True)
    ty = reference(tx)
    ty.backward(torch.from_numpy(g64))

    y = model(x)
    grad_x = model.backward(g)
    assert_close(y, ty.detach().numpy(), xp=xp)
    assert_close(grad_x, tx.grad.numpy(), xp=xp)
    grads = model.named_grads()
    assert list(grads) == [name for name, _ in reference.named_parameters()]
    for name, p in reference.named_parameters():
        assert_close(grads[name], p.grad.numpy(), xp=xp, msg=name)


@pytest.mark.requires_float64
def test_gradients_match_finite_differences(xp, device):
    float64 = resolve_dtype(xp, "float64")
    model = pnn.Sequential(
        pnn.Linear(3, 4, xp=xp, device=device, dtype=float64, seed=6),
        pnn.Tanh(),
        pnn.Linear(4, 2, xp=xp, device=device, dtype=float64, seed=7),
    )
    x, _ = random_array(xp, (2, 3), device=device, dtype=float64, seed=8)
    names = list(model.named_parameters())

    def forward(x, *params):
        model.set_parameters(dict(zip(names, params, strict=True)))
        with pnn.no_grad():
            return model(x)

    def backward(g, x, *params):
        model.set_parameters(dict(zip(names, params, strict=True)))
        model.zero_grad()
        model(x)
        grad_x = model.backward(g)
        return (grad_x, *model.named_grads().values())

    # finite differences on the backend in float64 (torch.autograd cannot run a model placed on another backend)
    params = list(model.named_parameters().values())
    check_gradients(forward, backward, [x, *params], names=["x", *names], seed=9, autograd=False)


def test_parameters_are_routed_to_the_layers(xp, device, dtype):
    inner = pnn.Sequential(pnn.Linear(3, 3, xp=xp, device=device, dtype=dtype, seed=10), pnn.ReLU())
    model = pnn.Sequential(pnn.Linear(2, 3, bias=False, xp=xp, device=device, dtype=dtype, seed=11), inner)
    assert list(model.named_parameters()) == ["0.weight", "1.0.weight", "1.0.bias"]
    assert model.parameters() == list(model.named_parameters().values())
    assert model.xp is xp and model.device == device and model.dtype == dtype
    new_bias, host_bias = random_array(xp, (3,), device=device, dtype=dtype, seed=12)
    model.set_parameters({"1.0.bias": new_bias})
    assert inner[0].bias is model.named_parameters()["1.0.bias"]
    if not is_lazy(xp):  # Dask values are persisted on the way in (see _backend.materialize)
        assert inner[0].bias is new_bias
    assert_close(model.named_parameters()["1.0.bias"], host_bias)


def test_set_parameters_is_all_or_nothing(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    before = {name: id(p) for name, p in model.named_parameters().items()}
    good, _ = random_array(xp, (5, 4), device=device, dtype=dtype, seed=13)
    wrong_shape, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=14)
    with pytest.raises(pnn.ShapeError, match=r"weight: expected shape \(3, 5\), got \(3, 4\)"):
        model.set_parameters({"0.weight": good, "2.weight": wrong_shape})
    with pytest.raises(pnn.UnknownParameterError, match=r"no parameter '1\.weight'"):
        model.set_parameters({"0.weight": good, "1.weight": good})
    assert {name: id(p) for name, p in model.named_parameters().items()} == before


def test_a_failing_layer_leaves_every_layer_unchanged(xp, device, dtype):
    model = pnn.Sequential(
        pnn.Linear(3, 4, xp=xp, device=device, dtype=dtype, seed=15),
        pnn.Tanh(),
        pnn.Linear(5, 2, xp=xp, device=device, dtype=dtype, seed=16),  # mis-composed: 4 -> 5
    )
    x, _ = random_array(xp, (2, 3), device=device, dtype=dtype, seed=17)
    with pytest.raises(pnn.ShapeError, match=r"\(\*, 5\)"):
        model(x)
    assert model[0]._saved is None and model[1]._saved is None, "forward of the first layers was kept"

    good = _mlp(xp, device, dtype)
    y = good(x_in := random_array(xp, (6, 4), device=device, dtype=dtype, seed=18)[0])
    with pnn.no_grad():
        good[0](x_in)  # a layer called on its own keeps its own state: the model's forward is unaffected
    with pytest.raises(pnn.ShapeError, match="grad_output"):
        good.backward(xp.ones((6, 3), dtype=dtype, device=device))
    assert all(g is None for g in good.named_grads().values()), "layers kept gradients of a failed backward"
    good.backward(xp.ones_like(y))  # the model's own forward is still there
    assert all(g is not None for g in good.named_grads().values())


def test_zero_grad_step_and_no_grad(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    x, _ = random_array(xp, (6, 4), device=device, dtype=dtype, seed=19)
    model.backward(xp.ones_like(model(x)))
    params = {n: to_numpy(p).astype(np.float64) for n, p in model.named_parameters().items()}
    grads = {n: to_numpy(g).astype(np.float64) for n, g in model.named_grads().items()}
    model.step(lr=0.1)  # Module.step, through Sequential's named_grads / set_parameters
    for name, p in model.named_parameters().items():
        assert_close(p, params[name] - 0.1 * grads[name], msg=name)
    model.zero_grad()
    assert all(g is None for g in model.named_grads().values())
    with pnn.no_grad():
        y = model(x)
    with pytest.raises(pnn.CallOrderError):
        model.backward(xp.ones_like(y))


def test_layers_must_share_placement(xp, device):
    usable = supported_dtypes(xp, device)
    if len(usable) < 2:
        pytest.skip(f"needs two dtypes on this device, has {usable}")
    first, second = usable[0], usable[1]
    with pytest.raises(pnn.DTypeError, match="layer 1 vs layer 0"):
        pnn.Sequential(
            pnn.Linear(2, 2, xp=xp, device=device, dtype=first, seed=0),
            pnn.Linear(2, 2, xp=xp, device=device, dtype=second, seed=0),
        )


def test_host_round_trip_of_parameters(xp, device, dtype):
    """set_parameters accepts the model's own arrays back from the host (what checkpoints do)."""
    model = _mlp(xp, device, dtype)
    host = {n: to_numpy(p) for n, p in model.named_parameters().items()}
    model.set_parameters({n: from_host(v, xp, device, dtype) for n, v in host.items()})
    for name, p in model.named_parameters().items():
        assert_close(p, host[name].astype(np.float64), rtol=0, atol=0)


def test_to_moves_every_layer_and_keeps_outputs(xp, device, dtype):
    """``Sequential.to`` delegates to each layer: a NumPy float64 model moved here computes the same."""
    model = pnn.Sequential(
        pnn.Linear(4, 5, xp="numpy", dtype="float64", seed=1),
        pnn.Tanh(),
        pnn.Linear(5, 2, xp="numpy", dtype="float64", seed=2),
    )
    x64 = np.random.default_rng(0).standard_normal((3, 4))
    expected = model(x64)
    assert model.to(xp=xp, device=device, dtype=dtype) is model
    assert model.xp is xp and model.device == device and model.dtype == dtype
    with pytest.raises(pnn.CallOrderError, match="no forward"):
        model[1].backward(from_host(np.ones((3, 5)), xp, device, dtype))  # kept forward values were dropped
    assert_close(model(from_host(x64, xp, device, dtype)), expected)


def test_failed_to_leaves_every_layer_unchanged(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    before = {name: to_numpy(p) for name, p in model.named_parameters().items()}
    placement = (model.xp, model.device, model.dtype)
    with pytest.raises(pnn.PortableNNError):
        model.to(xp="no_such_backend")
    assert (model.xp, model.device, model.dtype) == placement
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(to_numpy(p), before[name])
