"""Every optimizer and option combination against ``torch.optim`` at run time, plus the pure ``init``/``update`` form.

Hypothesis draws the hyperparameters (incl. maximize, amsgrad, nesterov, centered) and a param
group for the biases; each step the gradients our backend computes are handed to torch's float64
parameters too, so the comparison isolates the update rule. On torch the multi-tensor (foreach)
path and the generic path are both drawn. Dask (each step a graph compute) is covered by the
fixed cases of ``test_optim.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn._backend import backend_name
from portable_nn.testing import assert_close, random_array, to_numpy

from .helpers import mlp

STEPS = 4
EXAMPLES = max(4, settings.default.max_examples // 25)  # dev 25 -> 4, ci 200 -> 8 per combination

OPTIMIZERS = {
    "SGD": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([0.0, 0.05, 0.2]),
            "momentum": st.sampled_from([0.0, 0.5, 0.9]),
            "dampening": st.sampled_from([0.0, 0.3]),
            "weight_decay": st.sampled_from([0.0, 0.01]),
            "nesterov": st.booleans(),
            "maximize": st.booleans(),
        }
    ).map(lambda h: {**h, "nesterov": h["nesterov"] and h["momentum"] > 0 and h["dampening"] == 0}),
    "Adam": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-3, 0.02]),
            "betas": st.tuples(st.sampled_from([0.0, 0.8, 0.9]), st.sampled_from([0.99, 0.999])),
            "eps": st.sampled_from([1e-8, 1e-6]),
            "weight_decay": st.sampled_from([0.0, 0.05]),
            "amsgrad": st.booleans(),
            "maximize": st.booleans(),
        }
    ),
    "AdamW": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-3, 0.02]),
            "betas": st.tuples(st.sampled_from([0.8, 0.9]), st.sampled_from([0.99, 0.999])),
            "weight_decay": st.sampled_from([0.0, 0.01, 0.1]),
            "amsgrad": st.booleans(),
            "maximize": st.booleans(),
        }
    ),
    "RMSprop": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([1e-3, 0.01]),
            "alpha": st.sampled_from([0.9, 0.99]),
            "weight_decay": st.sampled_from([0.0, 0.01]),
            "momentum": st.sampled_from([0.0, 0.5]),
            "centered": st.booleans(),
            "maximize": st.booleans(),
        }
    ),
    "Adagrad": st.fixed_dictionaries(
        {
            "lr": st.sampled_from([0.01, 0.1]),
            "lr_decay": st.sampled_from([0.0, 0.1]),
            "weight_decay": st.sampled_from([0.0, 0.01]),
            "initial_accumulator_value": st.sampled_from([0.0, 0.1]),
            "eps": st.sampled_from([1e-10, 1e-6]),
            "maximize": st.booleans(),
        }
    ),
}
#: a bias group: overrides drawn per example (None: no group)
BIAS_GROUP = st.one_of(
    st.none(), st.fixed_dictionaries({"lr": st.sampled_from([0.0, 0.005, 0.03]), "weight_decay": st.just(0.0)})
)


def _model(xp, device, dtype) -> pnn.Sequential:
    return mlp((4, 5, 2), xp, device, dtype)


def _grads(model, xp, device, dtype, step: int) -> None:
    x, _ = random_array(xp, (6, 4), device=device, dtype=dtype, seed=100 + step)
    target, _ = random_array(xp, (6, 2), device=device, dtype=dtype, seed=200 + step)
    _, grad = pnn.MSELoss()(model(x), target)
    model.zero_grad()
    model.backward(grad)


def _torch_optimizer(torch, name, reference, hyper, group, bias_names):
    kwargs = {k: v for k, v in hyper.items() if k != "decoupled"}
    if group is None:
        return getattr(torch.optim, name)(list(reference.values()), **kwargs)
    rest = [p for n, p in reference.items() if n not in bias_names]
    groups = [{"params": rest}, {"params": [reference[n] for n in bias_names], **group}]
    return getattr(torch.optim, name)(groups, **kwargs)


@pytest.mark.eager
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_matches_torch_optim(xp, device, dtype, name, data):
    torch = pytest.importorskip("torch")
    hyper = data.draw(OPTIMIZERS[name], label="hyperparameters")
    group = data.draw(BIAS_GROUP, label="bias group")
    foreach = data.draw(st.sampled_from([None, False]), label="foreach") if backend_name(xp) == "torch" else None
    model = _model(xp, device, dtype)
    bias_names = ["0.bias", "2.bias"]
    groups = None if group is None else [{"params": lambda n: n.endswith(".bias"), **group}]
    optimizer = getattr(pnn, name)(model, **hyper, param_groups=groups, foreach=foreach)
    reference = {
        n: torch.tensor(to_numpy(p).astype(np.float64), requires_grad=True) for n, p in model.named_parameters().items()
    }
    torch_optimizer = _torch_optimizer(torch, name, reference, hyper, group, bias_names)
    for step in range(STEPS):
        _grads(model, xp, device, dtype, step)
        for n, grad in model.named_grads().items():
            reference[n].grad = torch.from_numpy(to_numpy(grad).astype(np.float64))
        torch_optimizer.step()
        optimizer.step()
        for n, p in model.named_parameters().items():
            assert_close(p, reference[n].detach().numpy(), xp=xp, msg=f"{name} {hyper} {group} step {step + 1} {n}")
    for n, buffers in optimizer.state_dict()["state"].items():
        for key, value in buffers.items():
            assert_close(value, torch_optimizer.state[reference[n]][key].numpy(), xp=xp, msg=f"{n} {key}")


@pytest.mark.eager
@pytest.mark.parametrize(
    "make",
    [
        lambda m: pnn.SGD(m, 0.1, 0.9, 0.2, 0.01),
        lambda m: pnn.SGD(m, 0.1, 0.9, nesterov=True, maximize=True),
        lambda m: pnn.Adam(m, 0.01, (0.8, 0.99), 1e-6, 0.05, True),
        lambda m: pnn.AdamW(m, 0.01, amsgrad=True),
        lambda m: pnn.RMSprop(m, 0.01, momentum=0.5, centered=True),
        lambda m: pnn.Adagrad(m, 0.1, lr_decay=0.1, initial_accumulator_value=0.1),
    ],
    ids=["sgd-dampening", "sgd-nesterov-maximize", "adam-amsgrad", "adamw-amsgrad", "rmsprop-centered", "adagrad"],
)
def test_pure_update_matches_step(xp, device, dtype, make):
    """init/update with a 0-d step array (bias corrections traced) == the stateful step (Python-int step)."""
    stateful, pure = _model(xp, device, dtype), _model(xp, device, dtype)
    opt, pure_opt = make(stateful), make(pure)
    params = pure.named_parameters()
    state = pure_opt.init(params)
    before = {n: to_numpy(p) for n, p in params.items()}
    for step in range(STEPS):
        _grads(stateful, xp, device, dtype, step)
        _grads(pure, xp, device, dtype, step)
        opt.step()
        params, state = pure_opt.update(params, pure.named_grads(), state)
        pure.set_parameters(params)
    assert int(to_numpy(state["step"])) == STEPS
    for n, p in stateful.named_parameters().items():
        assert_close(params[n], p, xp=xp, msg=n)
    for n, buffers in opt.state_dict()["state"].items():
        for key, value in buffers.items():
            assert_close(state["buffers"][n][key], value, xp=xp, msg=f"{n} {key}")
    for n, p in pure_opt.init(pure.named_parameters())["buffers"].items():  # init allocates every buffer
        assert set(p) == set(opt.state_dict()["state"][n])
    assert all(not np.array_equal(before[n], to_numpy(p)) for n, p in params.items())


@pytest.mark.eager
def test_update_lr_forms(xp, device, dtype):
    model = _model(xp, device, dtype)
    _grads(model, xp, device, dtype, 0)
    opt = pnn.SGD(model, lr=0.1, momentum=0.9)
    params, grads = model.named_parameters(), model.named_grads()
    state = opt.init(params)
    by_default, _ = opt.update(params, grads, state)
    by_float, _ = opt.update(params, grads, state, lr=0.1)
    by_array, _ = opt.update(params, grads, state, lr=xp.asarray(0.1, dtype=dtype, device=device))
    by_name, _ = opt.update(params, grads, state, lr=dict.fromkeys(params, 0.1))
    for n in params:
        for other in (by_float, by_array, by_name):
            assert_close(other[n], by_default[n], xp=xp, msg=n)
            assert other[n].dtype == dtype
    half, _ = opt.update(params, grads, state, lr={n: 0.0 if n.endswith("bias") else 0.1 for n in params})
    assert_close(half["0.bias"], params["0.bias"], rtol=0, atol=0)
    with pytest.raises(pnn.ArgumentError, match=r"lr must be a number or a 0-d array, got an array of shape \(2,\)"):
        opt.update(params, grads, state, lr=xp.asarray([0.1, 0.2], dtype=dtype, device=device))
    with pytest.raises(pnn.ArgumentError, match="missing parameters"):
        opt.update(params, grads, state, lr={"0.weight": 0.1})
    with pytest.raises(pnn.ArgumentError, match="lr"):
        opt.update(params, grads, state, lr=-1.0)
    with pytest.raises(pnn.ArgumentError, match="missing parameters"):
        opt.update({"0.weight": params["0.weight"]}, grads, state)
    wrong, _ = random_array(xp, (3, 3), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError, match=r"grads\['0.weight'\]"):
        opt.update(params, {**grads, "0.weight": wrong}, state)
    with pytest.raises(pnn.ArgumentError, match="state"):
        opt.update(params, grads, {"buffers": state["buffers"]})


@pytest.mark.backends(only=["jax"], reason="jax.jit is JAX's own")
def test_update_is_traceable_by_jax_jit(xp, device, dtype):
    jax = pytest.importorskip("jax")
    model = _model(xp, device, dtype)
    _grads(model, xp, device, dtype, 0)
    for opt in (pnn.SGD(model, 0.1, 0.9, 0.3), pnn.Adam(model, 0.01, amsgrad=True), pnn.Adagrad(model, lr_decay=0.1)):
        params, grads = model.named_parameters(), model.named_grads()
        state = opt.init(params)
        jitted = jax.jit(opt.update)
        lr = xp.asarray(opt.lr, dtype=dtype)
        for _ in range(3):
            eager_params, _ = opt.update(params, grads, state, lr=lr)
            params, state = jitted(params, grads, state, lr=lr)
            for n in params:
                assert_close(params[n], eager_params[n], xp=xp, msg=f"{opt!r} {n}")
        assert int(state["step"]) == 3


def test_float32_buffers_follow_a_float64_move_and_are_not_promoted():
    model = _model("numpy", None, "float32")
    opt = pnn.Adam(model, lr=0.01)
    _grads(model, model.xp, model.device, model.dtype, 0)
    opt.step()
    model.to(dtype="float64")
    _grads(model, model.xp, model.device, model.dtype, 1)
    opt.step()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert all(b.dtype == np.float64 for bs in opt.state_dict()["state"].values() for b in bs.values())
    float32_state = pnn.Adam(_model("numpy", None, "float32"), lr=0.01)
    float32_state.module.zero_grad()
    state = opt.state_dict()
    state["state"] = {n: {k: v.astype(np.float32) for k, v in bs.items()} for n, bs in state["state"].items()}
    with pytest.raises(pnn.DTypeError, match="float64"):  # loading float32 buffers into a float64 model: no cast
        opt.load_state_dict(state)
    float32_params = {n: p.astype(np.float32) for n, p in model.named_parameters().items()}
    with pytest.raises(pnn.DTypeError):  # the pure form never mixes dtypes either
        opt.update(float32_params, model.named_grads(), opt.init(model.named_parameters()))
