"""Property: every public entry point, given a wrong type or value, raises a PortableNNError and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn

#: Not a learning rate / rate-like hyperparameter, whatever the entry point.
BAD_RATES = [None, "0.1", [0.1], {}, float("nan"), float("inf"), -1.0, 10**400, np.array([0.1, 0.2]), True]
#: Not a count (features, step sizes).
BAD_COUNTS = [None, "3", 2.5, -1, True, [3]]
#: Not an input for a float32 Linear(3, 2) on NumPy.
BAD_INPUTS = [
    None,
    [[1.0, 2.0, 3.0]],
    np.ones((2, 3), dtype=np.int64),
    np.ones((2, 4), dtype=np.float32),
    np.ones((2, 3), dtype=np.float64),
    np.ma.masked_array(np.ones((2, 3), dtype=np.float32)),
    np.float32(1.0),
]


def _model():
    return pnn.Sequential(pnn.Linear(3, 2, seed=0), pnn.Tanh())


def _snapshot(model, optimizer):
    state = {name: np.array(p, copy=True) for name, p in model.state_dict().items()}
    grads = {name: None if g is None else np.array(g, copy=True) for name, g in model.named_grads().items()}
    return state, grads, repr(optimizer.state_dict())


def _trained():
    model = _model()
    optimizer = pnn.SGD(model, 0.1, momentum=0.9)
    x = np.ones((2, 3), dtype=np.float32)
    _, grad = pnn.MSELoss()(model(x), np.zeros((2, 2), dtype=np.float32))
    model.backward(grad)
    optimizer.step()
    model(x)
    model.backward(grad)  # grads present, a forward kept: every call below has something to spoil
    return model, optimizer


ENTRY_POINTS = {
    "Module.step(lr)": (BAD_RATES, lambda m, o, v: m.step(lr=v)),
    "SGD(lr)": (BAD_RATES, lambda m, o, v: pnn.SGD(m, lr=v)),
    "SGD(momentum)": (BAD_RATES, lambda m, o, v: pnn.SGD(m, 0.1, momentum=v)),
    "optimizer.lr =": (BAD_RATES, lambda m, o, v: setattr(o, "lr", v)),
    "Adam(betas)": ([*BAD_RATES, 1.0], lambda m, o, v: pnn.Adam(m, betas=(v, 0.999))),
    "RMSprop(alpha)": ([*BAD_RATES, 1.5], lambda m, o, v: pnn.RMSprop(m, alpha=v)),
    "Linear(in_features)": ([*BAD_COUNTS, 2**63, 10**400], lambda m, o, v: pnn.Linear(v, 2)),
    "model(x)": (BAD_INPUTS, lambda m, o, v: m(v)),
    "model.backward(g)": (BAD_INPUTS, lambda m, o, v: m.backward(v)),
    "set_parameters": (BAD_INPUTS, lambda m, o, v: m.set_parameters({"0.bias": v})),
    "set_grads": (BAD_INPUTS, lambda m, o, v: m.set_grads({"0.weight": v})),
    "load_state_dict": (BAD_INPUTS, lambda m, o, v: m.load_state_dict({**m.state_dict(), "0.weight": v})),
    "MSELoss(pred)": (BAD_INPUTS, lambda m, o, v: pnn.MSELoss()(v, np.zeros((2, 3), dtype=np.float32))),
    "CrossEntropyLoss(label_smoothing)": ([*BAD_RATES, 1.5], lambda m, o, v: pnn.CrossEntropyLoss(label_smoothing=v)),
    "clip_grad_norm_(max_norm)": (BAD_RATES, lambda m, o, v: pnn.clip_grad_norm_(m, v)),
    "StepLR(step_size)": (BAD_COUNTS, lambda m, o, v: pnn.lr_scheduler.StepLR(o, step_size=v)),
    "train_step(compile)": ([None, "yes", 1, [True]], lambda m, o, v: pnn.train_step(m, pnn.MSELoss(), o, compile=v)),
    "save(path)": ([None, 3, ["a"], b"m.safetensors"], lambda m, o, v: pnn.save(m, v)),
    "load(path)": ([None, 3, ["a"]], lambda m, o, v: pnn.load(v)),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_bad_arguments_raise_typed_errors_and_change_nothing(entry, data):
    bad_values, call = ENTRY_POINTS[entry]
    value = data.draw(st.sampled_from(bad_values), label="value")
    model, optimizer = _trained()
    before = _snapshot(model, optimizer)
    with pytest.raises(pnn.PortableNNError):
        call(model, optimizer, value)
    after = _snapshot(model, optimizer)
    for name, array in before[0].items():
        np.testing.assert_array_equal(after[0][name], array, err_msg=f"{entry} changed parameter {name}")
    for name, grad in before[1].items():
        assert (grad is None) == (after[1][name] is None), f"{entry} changed grad {name}"
        if grad is not None:
            np.testing.assert_array_equal(after[1][name], grad, err_msg=f"{entry} changed grad {name}")
    assert after[2] == before[2], f"{entry} changed the optimizer"
