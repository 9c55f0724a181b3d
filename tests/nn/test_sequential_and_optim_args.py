"""Argument checking of Sequential and the optimizers (backend-independent, NumPy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import portable_nn as pnn
from conformance.helpers import mlp


def _model() -> pnn.Sequential:
    return mlp((2, 3, 1), seed=0, activation=pnn.ReLU)


def test_sequential_construction_errors():
    with pytest.raises(pnn.ArgumentError, match="at least one layer"):
        pnn.Sequential()
    with pytest.raises(pnn.ArgumentTypeError, match="layer 1: expected a portable_nn Module"):
        pnn.Sequential(pnn.ReLU(), lambda x: x)
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(pnn.NamespaceError, match="one backend"):
        pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.Linear(2, 2, xp=strict, seed=0))
    with pytest.raises(pnn.DeviceError, match="one device"):
        pnn.Sequential(pnn.Linear(2, 2, xp=strict, seed=0), pnn.Linear(2, 2, xp=strict, device="device1", seed=0))


def test_sequential_container_and_repr():
    model = _model()
    assert len(model) == 3 and isinstance(model[1], pnn.ReLU) and list(model) == list(model.layers)
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True, backend=numpy, device=cpu, dtype=float32)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=1, bias=True, backend=numpy, device=cpu, dtype=float32)\n"
        ")"
    )
    activations_only = pnn.Sequential(pnn.Tanh())
    assert activations_only.named_parameters() == {}
    with pytest.raises(AttributeError, match="no layer with parameters"):
        activations_only.xp  # noqa: B018


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda m: pnn.SGD(m, lr=-0.1), pnn.ArgumentError, r"lr must be a finite number in \[0, inf\]"),
        (lambda m: pnn.SGD(m, lr=math.nan), pnn.ArgumentError, "lr"),
        (lambda m: pnn.SGD(m, lr="0.1"), pnn.ArgumentTypeError, "lr must be a real number"),
        (lambda m: pnn.SGD(m, lr=10**400), pnn.ArgumentError, "too large for a float"),
        (lambda m: pnn.SGD(m, lr=np.array([0.1, 0.2])), pnn.ArgumentTypeError, r"or a 0-d array, got shape \(2,\)"),
        (lambda m: pnn.Adam(m, betas=(10**400, 0.9)), pnn.ArgumentError, r"betas\[0\].*too large"),
        (lambda m: pnn.SGD(m, lr=0.1, momentum=-0.5), pnn.ArgumentError, "momentum"),
        (lambda m: pnn.SGD(m, lr=0.1, nesterov=True), pnn.ArgumentError, "nesterov momentum needs momentum > 0"),
        (lambda m: pnn.SGD(m, lr=0.1, momentum=0.9, nesterov=1), pnn.ArgumentTypeError, "nesterov must be a bool"),
        (lambda m: pnn.SGD(m, lr=0.1, dampening=1.5), pnn.ArgumentError, "dampening"),
        (lambda m: pnn.SGD(m, lr=0.1, weight_decay=math.inf), pnn.ArgumentError, "weight_decay"),
        (lambda m: pnn.Adam(m, betas=(0.9, 1.0)), pnn.ArgumentError, r"betas\[1\] must be a finite number in \[0, 1\)"),
        (lambda m: pnn.Adam(m, betas=0.9), pnn.ArgumentTypeError, "betas must be a pair"),
        (lambda m: pnn.Adam(m, eps=-1e-8), pnn.ArgumentError, "eps"),
        (lambda m: pnn.Adam(m, decoupled="yes"), pnn.ArgumentTypeError, "decoupled must be a bool"),
        (lambda m: pnn.AdamW(m, weight_decay=-0.01), pnn.ArgumentError, "weight_decay"),
        (lambda m: pnn.Adam([m[0].weight]), pnn.ArgumentTypeError, "optimizes a portable_nn Module"),
        (lambda m: pnn.SGD(pnn.ReLU(), lr=0.1), pnn.ArgumentError, "no parameters"),
    ],
)
def test_optimizer_hyperparameters_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make(_model())


def test_hyperparameters_accept_0d_arrays():
    optimizer = pnn.SGD(_model(), lr=np.asarray(0.5), momentum=np.float32(0.25))
    assert optimizer.lr == 0.5 and type(optimizer.lr) is float
    assert optimizer.hyperparameters["momentum"] == 0.25
    with pytest.raises(pnn.ArgumentTypeError, match="0-d array"):
        optimizer.lr = np.array([0.1, 0.2])
    assert optimizer.lr == 0.5


def test_optimizer_lr_is_assignable_and_validated():
    optimizer = pnn.Adam(_model(), lr=0.01)
    optimizer.lr = 0.5
    assert optimizer.lr == 0.5 and optimizer.hyperparameters["lr"] == 0.5
    with pytest.raises(pnn.ArgumentError):
        optimizer.lr = -1
    assert optimizer.lr == 0.5
    assert repr(pnn.SGD(_model(), lr=0.1, momentum=0.9)) == (
        "SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)"
    )
    assert pnn.AdamW(_model()).hyperparameters["weight_decay"] == 0.01  # torch.optim.AdamW's default


def test_optimizer_state_before_any_step():
    model = _model()
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    state = optimizer.state_dict()
    hyper = {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "dampening": 0.0}
    assert state == {
        "optimizer": "SGD",
        "step": 0,
        "hyperparameters": {**hyper, "maximize": False},
        "param_groups": [{"params": ["0.weight", "0.bias", "2.weight", "2.bias"], **hyper, "maximize": False}],
        "state": {},
    }
    fresh = pnn.SGD(model, lr=1.0)
    fresh.load_state_dict(state)
    assert fresh.hyperparameters == optimizer.hyperparameters and fresh.step_count == 0
    with pytest.raises(pnn.SerializationError, match="expected a mapping"):
        fresh.load_state_dict([("step", 0)])
    legacy = {"optimizer": "SGD", "step": 0, "hyperparameters": hyper, "state": {}}  # saved before param groups
    fresh.load_state_dict(legacy)
    assert fresh.hyperparameters == {**hyper, "maximize": False}


def test_sequential_sees_a_parameter_declared_after_it_was_read():
    # Sequential keeps its layers' parameters as flat slots: a parameter declared later must show up
    model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.Tanh())
    assert list(model.named_parameters()) == ["0.weight", "0.bias"]
    model.zero_grad()
    model[0].register_parameter("scale", np.ones(3, np.float32))
    model[0].grad_scale = np.ones(3, np.float32)
    assert list(model.named_parameters()) == ["0.weight", "0.bias", "0.scale"]
    model.zero_grad()
    assert model[0].grad_scale is None
    model[0].bias = None  # a parameter set to None is left out, as a layer's own named_parameters does
    assert list(model.named_parameters()) == ["0.weight", "0.scale"]
