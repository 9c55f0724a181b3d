"""Param groups, torch's signatures and argument errors of the optimizers (NumPy only; torch where it is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from conformance.helpers import mlp
from portable_nn.testing import assert_close


def _model() -> pnn.Sequential:
    return mlp((2, 3, 1), seed=0)


def _backward(model: pnn.Sequential, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    out = model(rng.standard_normal((4, 2)).astype(np.float32))
    _, grad = pnn.MSELoss()(out, rng.standard_normal((4, 1)).astype(np.float32))
    model.zero_grad()
    model.backward(grad)


def test_groups_select_by_names_or_predicate_and_the_rest_is_the_default_group():
    opt = pnn.SGD(
        _model(),
        lr=0.1,
        param_groups=[{"params": ["0.bias", "2.bias"], "weight_decay": 0.5}, {"params": lambda n: n == "2.weight"}],
    )
    assert [g["params"] for g in opt.param_groups] == [["0.weight"], ["0.bias", "2.bias"], ["2.weight"]]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.5, 0.0]
    assert all(g["lr"] == 0.1 for g in opt.param_groups) and opt.lr == 0.1
    single = pnn.SGD(_model(), lr=0.1, param_groups=[{"params": "0.bias"}])
    assert single.param_groups[1]["params"] == ["0.bias"]


def test_torch_positional_order_and_old_keywords():
    sgd = pnn.SGD(_model(), 0.1, 0.9, 0.0, 0.01, True, maximize=True)
    assert sgd.hyperparameters == {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "weight_decay": 0.01,
        "nesterov": True,
        "maximize": True,
    }
    old = pnn.SGD(_model(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, dampening=0.0)
    assert old.hyperparameters["nesterov"] is True
    adam = pnn.Adam(_model(), 0.01, (0.8, 0.9), 1e-6, 0.1, True)
    assert adam.hyperparameters["amsgrad"] is True and adam.hyperparameters["betas"] == (0.8, 0.9)
    zero_d = pnn.Adam(_model(), np.asarray(0.01), (np.float32(0.5), np.asarray(0.9)), np.asarray(1e-6))
    assert zero_d.hyperparameters["betas"] == (0.5, 0.9) and type(zero_d.lr) is float
    assert pnn.RMSprop(_model()).lr == 0.01 and pnn.Adagrad(_model()).hyperparameters["eps"] == 1e-10
    assert pnn.SGD(_model()).lr == 1e-3  # torch's default


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        ([{"params": ["0.bias", "9.bias"]}], pnn.UnknownParameterError, "no parameter '9.bias'"),
        ([{"params": ["0.bias"]}, {"params": lambda n: "bias" in n}], pnn.ArgumentError, "exactly one group"),
        ([{"params": lambda n: False}], pnn.ArgumentError, "selects no parameter"),
        ([{"params": np.array(["0.bias"])}], pnn.ArgumentTypeError, "a parameter name, a list of names"),
        ([{"params": [np.str_("0.bias"), 3]}], pnn.ArgumentTypeError, "names must be str"),
        ([{"params": lambda n: np.array([True])}], pnn.ArgumentTypeError, "must return a bool"),
        ([{"params": "0.bias", "betas": (0.9, 0.9)}], pnn.ArgumentError, "unknown hyperparameters"),
        ([{"lr": 0.1}], pnn.ArgumentError, "no 'params'"),
        ([{"params": "0.bias", "lr": -1.0}], pnn.ArgumentError, "lr"),
        ([{"params": "0.bias", "nesterov": True}], pnn.ArgumentError, "nesterov"),
        ({"params": "0.bias"}, pnn.ArgumentTypeError, "list of dicts"),
        (["0.bias"], pnn.ArgumentTypeError, "must be a dict"),
    ],
)
def test_bad_groups_are_typed_errors(groups, error, match):
    with pytest.raises(error, match=match):
        pnn.SGD(_model(), lr=0.1, param_groups=groups)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda m: pnn.SGD(m, lr=0.1, momentum=0.9, nesterov=np.array(True)), pnn.ArgumentTypeError),
        (lambda m: pnn.Adam(m, amsgrad=np.bool_(True)), pnn.ArgumentTypeError),
        (lambda m: pnn.Adam(m, betas=np.array([0.9, 0.99])), pnn.ArgumentTypeError),
        (lambda m: pnn.RMSprop(m, centered=np.array([True, False])), pnn.ArgumentTypeError),
        (lambda m: pnn.Adagrad(m, lr_decay=np.array([0.1, 0.2])), pnn.ArgumentTypeError),
        (lambda m: pnn.SGD(m, foreach="yes"), pnn.ArgumentTypeError),
        (lambda m: pnn.Adam(m, foreach=True).step(), pnn.ArgumentError),  # numpy has no whole-group Adam
        (lambda m: pnn.RMSprop(m, alpha=1.5), pnn.ArgumentError),
        (lambda m: pnn.Adagrad(m, initial_accumulator_value=-1), pnn.ArgumentError),
    ],
)
def test_array_or_bad_hyperparameters_are_typed_errors_not_truth_value_errors(make, error):
    model = _model()
    _backward(model)
    with pytest.raises(error):
        make(model)


def test_a_scheduler_writes_group_lr_and_a_bad_value_fails_the_step_without_changes():
    model = _model()
    opt = pnn.SGD(model, lr=0.1, momentum=0.9, param_groups=[{"params": lambda n: n.startswith("2.")}])
    _backward(model)
    opt.param_groups[1]["lr"] = 0.0  # freeze layer 2, like a scheduler writing param_groups[i]["lr"]
    frozen = {n: p for n, p in model.named_parameters().items() if n.startswith("2.")}
    opt.step()
    assert all(model.named_parameters()[n] is not p for n, p in frozen.items())  # rebound...
    for n, p in frozen.items():
        np.testing.assert_array_equal(model.named_parameters()[n], p)  # ...to the same values
    before = (model.named_parameters(), opt.state_dict())
    opt.param_groups[1]["lr"] = float("nan")  # any finite value is used as given (torch checks only at construction)
    with pytest.raises(pnn.ArgumentError, match="lr"):
        opt.step()
    assert model.named_parameters() == before[0] and opt.step_count == 1
    opt.param_groups[1]["lr"] = np.asarray(0.05)  # a 0-d array is accepted like in the constructor
    opt.step()
    assert opt.step_count == 2
    opt.param_groups[1]["initial_lr"] = 0.1  # extra keys (a torch-style scheduler's) are allowed and ignored
    opt.step()
    assert opt.step_count == 3
    opt.param_groups[1]["params"] = ["0.weight"]
    with pytest.raises(pnn.ArgumentError, match="fixed at construction"):
        opt.step()


def test_state_dict_round_trips_groups():
    model = _model()
    opt = pnn.Adam(model, lr=0.01, param_groups=[{"params": ["0.bias", "2.bias"], "lr": 0.1, "amsgrad": True}])
    for seed in range(2):
        _backward(model, seed)
        opt.step()
    state = opt.state_dict()
    assert state["param_groups"][1] == {
        "params": ["0.bias", "2.bias"],
        "lr": 0.1,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": True,
        "maximize": False,
        "decoupled": False,
    }
    assert set(state["state"]["0.bias"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert set(state["state"]["0.weight"]) == {"exp_avg", "exp_avg_sq"}
    fresh = pnn.Adam(model, lr=1.0, param_groups=[{"params": ["0.bias", "2.bias"], "amsgrad": True}])
    fresh.load_state_dict(state)
    assert fresh.state_dict()["param_groups"] == state["param_groups"] and fresh.step_count == 2
    other_groups = pnn.Adam(model, lr=1.0)
    with pytest.raises(pnn.SerializationError, match="param_groups"):
        other_groups.load_state_dict(state)
    legacy = {k: v for k, v in state.items() if k != "param_groups"}
    with pytest.raises(pnn.SerializationError, match="without param_groups"):
        fresh.load_state_dict(legacy)


@pytest.mark.parametrize(
    "make",
    [
        lambda m, f: pnn.SGD(m, 0.1, 0.9, weight_decay=0.01, nesterov=True, foreach=f),
        lambda m, f: pnn.SGD(m, 0.1, 0.9, dampening=0.3, maximize=True, foreach=f),
        lambda m, f: pnn.AdamW(m, 0.01, amsgrad=True, maximize=True, foreach=f),
        lambda m, f: pnn.Adam(m, 0.01, weight_decay=0.1, foreach=f),
        lambda m, f: pnn.RMSprop(m, 0.01, foreach=f),
        lambda m, f: pnn.RMSprop(m, 0.01, momentum=0.9, centered=True, weight_decay=0.1, foreach=f),
        lambda m, f: pnn.RMSprop(m, 0.01, alpha=0.9, momentum=0.5, maximize=True, foreach=f),
        lambda m, f: pnn.Adagrad(m, 0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, foreach=f),
        lambda m, f: pnn.Adagrad(m, 0.1, maximize=True, foreach=f),
    ],
    ids=["sgd-nesterov", "sgd-dampening", "adamw-amsgrad", "adam-decay", "rmsprop", "rmsprop-centered-momentum",
         "rmsprop-momentum-max", "adagrad-decays", "adagrad-max"],
)  # fmt: skip
def test_torch_foreach_and_generic_paths_agree(make):
    torch = pytest.importorskip("torch")
    results = []
    for foreach in (True, False):
        model = pnn.Sequential(pnn.Linear(2, 3, xp=torch, seed=0), pnn.Tanh(), pnn.Linear(3, 1, xp=torch, seed=1))
        optimizer = make(model, foreach)
        for seed in range(6):
            x = torch.from_numpy(np.random.default_rng(seed).standard_normal((4, 2)).astype(np.float32))
            _, grad = pnn.MSELoss()(model(x), torch.ones((4, 1)))
            model.zero_grad()
            model.backward(grad)
            live, grads = model.named_parameters(), model.named_grads()
            state = optimizer.state_dict()["state"]
            held = [a.clone() for a in (*live.values(), *grads.values())]
            held_state = {n: {k: v.clone() for k, v in b.items()} for n, b in state.items()}
            optimizer.step()
            for before, now in zip(held, (*live.values(), *grads.values()), strict=True):
                assert torch.equal(before, now), "a parameter or gradient the user holds was written to"
            for n, buffers in state.items():
                for k, v in buffers.items():
                    assert torch.equal(v, held_state[n][k]), f"a state_dict() buffer was written to: {n} {k}"
        results.append((model.named_parameters(), optimizer.state_dict()["state"]))
    (params, state), (generic_params, generic_state) = results
    for n, p in params.items():  # the float32 tolerances written down in portable_nn.testing.tolerances
        assert_close(p, generic_params[n], msg=n)
    for n, buffers in state.items():
        for k, v in buffers.items():
            assert_close(v, generic_state[n][k], msg=f"{n} {k}")


def test_a_schedule_rounding_just_below_zero_steps_like_torch():
    """LinearLR ending at 0 writes -1.9e-18 by rounding (torch too); the step uses it instead of failing."""
    model = _model()
    opt = pnn.SGD(model, lr=0.1)
    _backward(model)
    opt.param_groups[0]["lr"] = -1.850371707708594e-18
    opt.step()
    assert opt.step_count == 1 and opt.lr == -1.850371707708594e-18
    with pytest.raises(pnn.ArgumentError, match="lr"):
        opt.lr = -0.1  # the setter and the constructor still refuse a negative lr


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_zero_d_parameters_stay_zero_d_arrays(name):
    """NumPy returns scalars from operations on 0-d arrays; an optimizer step never hands one back."""

    class Scale(pnn.Module):
        def __init__(self):
            super().__init__()
            self.add_parameter("s", (), init="ones")

        def functional_forward(self, params, x, call):
            return x * params["s"], x

        def functional_backward(self, params, x, grad_output, need_input_grad, call):
            return grad_output * params["s"], {"s": grad_output * x}

    model = Scale()
    opt = getattr(pnn, name)(model, lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    for _ in range(2):
        model(np.asarray(2.0, dtype=np.float32))
        opt.zero_grad()
        model.backward(np.asarray(1.0, dtype=np.float32))
        opt.step()
    assert type(model.s) is np.ndarray and model.s.shape == ()
    for value in opt.state_dict()["state"]["s"].values():
        assert type(value) is np.ndarray
