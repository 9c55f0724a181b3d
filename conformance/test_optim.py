"""Optimizers against ``torch.optim`` (float64, CPU) step for step, plus state save/restore and failure atomicity.

Each step, the gradients our backend computes are handed to torch's parameters too, so the
comparison isolates the update rule: our float32/float64 parameters must track torch's float64
ones within the dtype's tolerance for 20 steps.
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import from_host, is_lazy
from portable_nn.testing import assert_close, random_array, to_numpy

from .helpers import mlp

STEPS = 20

CASES = {
    "sgd": (pnn.SGD, {"lr": 0.1}, "SGD", {"lr": 0.1}),
    "sgd-momentum": (pnn.SGD, {"lr": 0.05, "momentum": 0.9}, "SGD", {"lr": 0.05, "momentum": 0.9}),
    "sgd-nesterov-decay": (
        pnn.SGD,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    "sgd-dampening-decay": (
        pnn.SGD,
        {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1},
        "SGD",
        {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1},
    ),
    "adam": (pnn.Adam, {"lr": 0.01}, "Adam", {"lr": 0.01}),
    "adam-betas-l2": (
        pnn.Adam,
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05},
        "Adam",
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05},
    ),
    "adamw-defaults": (pnn.AdamW, {"lr": 0.01}, "AdamW", {"lr": 0.01}),
}

#: The cases run on lazy backends (Dask), where every comparison computes a graph.
LAZY_CASES = {"sgd-momentum", "adam"}


def _model(xp, device, dtype) -> pnn.Sequential:
    return mlp((6, 5, 3), xp, device, dtype)


def _backward(model, xp, device, dtype, step: int) -> None:
    """One forward + MSE backward on fresh seeded data (so every step has new gradients)."""
    x, _ = random_array(xp, (8, 6), device=device, dtype=dtype, seed=100 + step)
    target, _ = random_array(xp, (8, 3), device=device, dtype=dtype, seed=200 + step)
    _, grad = pnn.MSELoss()(model(x), target)
    model.zero_grad()
    model.backward(grad)


def _bound_lazy_graph(model, optimizer, xp, device, dtype) -> None:
    """On a lazy backend (Dask), replace parameters and buffers by their computed values (same values).

    Without it every step's graph holds the whole training history and each comparison
    recomputes it (minutes for 20 steps); the round trip also exercises load_state_dict.
    """
    if not is_lazy(xp):
        return
    model.set_parameters({n: from_host(to_numpy(p), xp, device, dtype) for n, p in model.named_parameters().items()})
    state = optimizer.state_dict()
    state["state"] = {
        n: {b: from_host(to_numpy(a), xp, device, dtype) for b, a in buffers.items()}
        for n, buffers in state["state"].items()
    }
    optimizer.load_state_dict(state)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_optim_for_20_steps(xp, device, dtype, case):
    torch = pytest.importorskip("torch")
    if is_lazy(xp) and case not in LAZY_CASES:
        pytest.skip(f"{case} on a lazy backend: ~5 s of graph computes; {sorted(LAZY_CASES)} cover the lazy path")
    ours_cls, ours_kwargs, torch_name, torch_kwargs = CASES[case]
    model = _model(xp, device, dtype)
    optimizer = ours_cls(model, **ours_kwargs)
    reference = {
        name: torch.tensor(to_numpy(p).astype(np.float64), requires_grad=True)
        for name, p in model.named_parameters().items()
    }
    torch_optimizer = getattr(torch.optim, torch_name)(list(reference.values()), **torch_kwargs)
    for step in range(STEPS):
        _backward(model, xp, device, dtype, step)
        for name, grad in model.named_grads().items():
            reference[name].grad = torch.from_numpy(to_numpy(grad).astype(np.float64))
        torch_optimizer.step()
        optimizer.step()
        _bound_lazy_graph(model, optimizer, xp, device, dtype)
        for name, p in model.named_parameters().items():
            assert_close(p, reference[name].detach().numpy(), xp=xp, msg=f"{case} step {step + 1} {name}")
    assert optimizer.step_count == STEPS


@pytest.mark.parametrize("case", ["sgd-momentum", "adam-betas-l2", "adamw-defaults"])
def test_state_dict_resumes_bit_for_bit(xp, device, dtype, case):
    ours_cls, ours_kwargs, _, _ = CASES[case]
    model = _model(xp, device, dtype)
    optimizer = ours_cls(model, **ours_kwargs)
    for step in range(3):
        _backward(model, xp, device, dtype, step)
        optimizer.step()
        _bound_lazy_graph(model, optimizer, xp, device, dtype)
    saved_params, saved_state = model.named_parameters(), optimizer.state_dict()
    for step in range(3, 6):
        _backward(model, xp, device, dtype, step)
        optimizer.step()
        _bound_lazy_graph(model, optimizer, xp, device, dtype)

    resumed = _model(xp, device, dtype)
    resumed.set_parameters(saved_params)
    resumed_optimizer = ours_cls(resumed, lr=1.0)  # hyperparameters come back with the state
    resumed_optimizer.load_state_dict(saved_state)
    assert resumed_optimizer.hyperparameters == optimizer.hyperparameters
    assert resumed_optimizer.step_count == 3
    for step in range(3, 6):
        _backward(resumed, xp, device, dtype, step)
        resumed_optimizer.step()
        _bound_lazy_graph(resumed, resumed_optimizer, xp, device, dtype)
    assert resumed_optimizer.step_count == optimizer.step_count == 6
    for name, p in model.named_parameters().items():
        assert_close(resumed.named_parameters()[name], p, rtol=0, atol=0)
    for name, buffers in optimizer.state_dict()["state"].items():
        for buffer_name, value in buffers.items():
            assert_close(resumed_optimizer.state_dict()["state"][name][buffer_name], value, rtol=0, atol=0)


def _snapshot(model, optimizer) -> tuple:
    """Identities of parameters and buffers (updates rebind, never mutate), step and hyperparameters."""
    state = optimizer.state_dict()
    arrays = {n: id(p) for n, p in model.named_parameters().items()}
    buffers = {(n, b): id(a) for n, bs in state["state"].items() for b, a in bs.items()}
    return arrays, buffers, state["step"], state["hyperparameters"]


def _assert_same(before: tuple, after: tuple, why: str = "") -> None:
    assert after == before, f"a failed call changed the model or the optimizer: {why}"


@pytest.fixture
def stepped(xp, device, dtype):
    """A model and an Adam optimizer after two steps (so buffers exist), with fresh gradients."""
    model = _model(xp, device, dtype)
    optimizer = pnn.Adam(model, lr=0.01)
    for step in range(2):
        _backward(model, xp, device, dtype, step)
        optimizer.step()
    _backward(model, xp, device, dtype, 2)
    return model, optimizer


def test_step_without_gradients_changes_nothing(stepped):
    model, optimizer = stepped
    model.zero_grad()
    before = _snapshot(model, optimizer)
    with pytest.raises(pnn.CallOrderError, match="backward"):
        optimizer.step()
    _assert_same(before, _snapshot(model, optimizer))


def test_step_with_a_bad_gradient_changes_nothing(stepped, xp, device, dtype):
    model, optimizer = stepped
    last = model[2]
    last.grad_weight = xp.ones((3, 6), dtype=dtype, device=device)  # wrong shape: broadcasting must not sneak in
    before = _snapshot(model, optimizer)
    with pytest.raises(pnn.ShapeError, match=r"gradient of 2.weight: expected .*\(3, 5\), got \(3, 6\)"):
        optimizer.step()
    _assert_same(before, _snapshot(model, optimizer))


def test_load_state_dict_rejects_bad_state_and_changes_nothing(stepped, xp, device, dtype):
    model, optimizer = stepped
    good = optimizer.state_dict()
    before = _snapshot(model, optimizer)
    name = "0.weight"
    wrong_shape, _ = random_array(xp, (2, 2), device=device, dtype=dtype)
    bad_states = {
        "missing key": ({k: v for k, v in good.items() if k != "step"}, pnn.SerializationError),
        "other optimizer": ({**good, "optimizer": "SGD"}, pnn.SerializationError),
        "negative step": ({**good, "step": -1}, pnn.SerializationError),
        "bad hyperparameter": (
            {**good, "hyperparameters": {**good["hyperparameters"], "eps": -1.0}},
            pnn.ArgumentError,
        ),
        "missing buffers": (
            {**good, "state": {k: v for k, v in good["state"].items() if k != name}},
            pnn.SerializationError,
        ),
        "wrong buffer name": (
            {**good, "state": {**good["state"], name: {"exp_avg": good["state"][name]["exp_avg"]}}},
            pnn.SerializationError,
        ),
        "wrong buffer shape": (
            {**good, "state": {**good["state"], name: {**good["state"][name], "exp_avg": wrong_shape}}},
            pnn.ShapeError,
        ),
        "host list buffer": (
            {**good, "state": {**good["state"], name: {**good["state"][name], "exp_avg": [[0.0]]}}},
            pnn.NamespaceError,
        ),
    }
    for why, (state, error) in bad_states.items():
        with pytest.raises(error):
            optimizer.load_state_dict(state)
        _assert_same(before, _snapshot(model, optimizer), why)


def test_updates_rebind_never_mutate(xp, device, dtype):
    model = _model(xp, device, dtype)
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    _backward(model, xp, device, dtype, 0)
    old = {n: (p, to_numpy(p)) for n, p in model.named_parameters().items()}
    optimizer.step()
    for name, (array, values) in old.items():
        np.testing.assert_array_equal(to_numpy(array), values)  # the old arrays were not written to
        assert model.named_parameters()[name] is not array


_APPLY_OPTIMIZERS = {
    "sgd-dampening": lambda m: pnn.SGD(m, 0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "adamw-amsgrad": lambda m: pnn.AdamW(m, 0.01, amsgrad=True, maximize=True),
    "rmsprop-centered": lambda m: pnn.RMSprop(m, 0.01, momentum=0.5, centered=True, weight_decay=0.01),
    "adagrad-decay": lambda m: pnn.Adagrad(m, 0.05, lr_decay=0.1),
}


@pytest.mark.parametrize("name", list(_APPLY_OPTIMIZERS))
def test_apply_with_step_scalars_is_step(xp, device, dtype, name):
    """``apply(params, grads, buffers, step_scalars(t))`` (what a compiled step runs) gives ``step()``'s values."""
    rng = np.random.default_rng(0)
    model, other = (pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, seed=0) for _ in range(2))
    opt, pure = _APPLY_OPTIMIZERS[name](model), _APPLY_OPTIMIZERS[name](other)
    assert pure.structure() == opt.structure()
    params = other.named_parameters()
    buffers = pure.init(params)["buffers"]
    for count in (1, 2, 3):
        grads = {n: from_host(rng.standard_normal(p.shape), xp, device, dtype) for n, p in params.items()}
        for n, g in grads.items():
            setattr(model, f"grad_{n}", g)
        opt.step()
        params, buffers = pure.apply(params, grads, buffers, pure.step_scalars(count))
    for n, p in model.named_parameters().items():
        assert_close(params[n], p, xp=xp, msg=f"{name} {n}")
    with pytest.raises(pnn.ArgumentError):
        pure.step_scalars(0)
