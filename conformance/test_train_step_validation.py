"""``train_step(compile="auto")`` validates a new input signature with the eager loop's typed errors.

On JAX the compiled step validates by an abstract trace (no eager device op); elsewhere "auto" is
eager. Oracle: the eager loop ``loss_fn(model(x), y)`` on an identical model raises some error;
the step must raise the same class with the same message, and leave the model's parameters and
the optimizer's state (step count, buffers) as they were.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import available_devices, backend_name, device_str, from_host, supported_dtypes
from portable_nn.testing import to_numpy

from .test_train_step import _batch, _eager_loop_step, _from_host_int, _model


def _other_device(xp, device, dtype):
    """Another device of the backend that holds ``dtype`` (JAX's cpu:1, array-api-strict's device1), or None."""
    name = pnn._backend.dtype_name(xp, dtype)
    here = device_str(xp, device)
    for label, native in available_devices(xp).items():
        if label != here and name in supported_dtypes(xp, native):
            return native
    return None


def _bad_inputs(xp, device, dtype):
    """name -> (loss_fn, x, y) that the eager loop refuses with a typed error."""
    x, y = _batch(xp, device, dtype, 0)
    cases = {
        "wrong feature count": (pnn.CrossEntropyLoss(), from_host(np.ones((12, 3)), xp, device, dtype), y),
        "input of another backend": (
            pnn.CrossEntropyLoss(),
            np.ones((12, 2), np.float32) if backend_name(xp) != "numpy" else [[0.0, 0.0]],
            y,
        ),
        "target of another backend": (
            pnn.CrossEntropyLoss(),
            x,
            np.zeros(12, np.int64) if backend_name(xp) != "numpy" else [0] * 12,
        ),
        "wrong target shape": (pnn.CrossEntropyLoss(), x, _from_host_int(np.zeros(5, np.int64), xp, device)),
        "floating target of another dtype": (pnn.CrossEntropyLoss(), x, None),
        "targets out of range": (pnn.CrossEntropyLoss(), x[:7, :], _from_host_int(np.full(7, 7), xp, device)),
        "targets below range": (pnn.NLLLoss(), x[:5, :], _from_host_int(np.array([0, -3, 1, 2, 0]), xp, device)),
        "out of range around ignore_index": (
            pnn.CrossEntropyLoss(ignore_index=1),
            x[:6, :],
            _from_host_int(np.array([0, 1, 1, 5, 2, 0]), xp, device),
        ),
    }
    names = supported_dtypes(xp, device)
    other = next((n for n in names if n != pnn._backend.dtype_name(xp, dtype)), None)
    if other is not None:
        cases["input of another dtype"] = (pnn.CrossEntropyLoss(), from_host(np.ones((12, 2)), xp, device, other), y)
        probabilities = from_host(np.full((12, 3), 1 / 3), xp, device, other)
        cases["floating target of another dtype"] = (pnn.CrossEntropyLoss(), x, probabilities)
    else:
        del cases["floating target of another dtype"]
    elsewhere = _other_device(xp, device, dtype)
    if elsewhere is not None:
        host_x, host_y = to_numpy(x), to_numpy(y)
        cases["input on another device"] = (pnn.CrossEntropyLoss(), from_host(host_x, xp, elsewhere, dtype), y)
        cases["target on another device"] = (pnn.CrossEntropyLoss(), x, _from_host_int(host_y, xp, elsewhere))
        weight = from_host(np.ones(3), xp, elsewhere, dtype)
        cases["class weight on another device"] = (pnn.CrossEntropyLoss(weight), x, y)
    return cases


def _eager_loop_error(xp, device, dtype, loss_fn, x, y) -> BaseException:
    model = _model(xp, device, dtype)
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    with pytest.raises(pnn.PortableNNError) as caught:
        _eager_loop_step(model, optimizer, loss_fn, x, y)
    return caught.value


def _snapshot(model, optimizer):
    params = model.named_parameters()
    state = optimizer.state_dict()
    buffers = {(n, k): to_numpy(b).copy() for n, bs in state["state"].items() for k, b in bs.items()}
    return {n: id(p) for n, p in params.items()}, {n: to_numpy(p).copy() for n, p in params.items()}, state, buffers


CASE_NAMES = [
    "wrong feature count",
    "input of another backend",
    "target of another backend",
    "wrong target shape",
    "floating target of another dtype",
    "targets out of range",
    "targets below range",
    "out of range around ignore_index",
    "input of another dtype",
    "input on another device",
    "target on another device",
    "class weight on another device",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_a_new_signature_raises_the_eager_loops_error_and_changes_nothing(xp, device, dtype, case):
    cases = _bad_inputs(xp, device, dtype)
    if case not in cases:
        pytest.skip(f"{case}: needs another dtype or device than this backend offers here")
    loss_fn, bad_x, bad_y = cases[case]
    expected = _eager_loop_error(xp, device, dtype, loss_fn, bad_x, bad_y)
    model = _model(xp, device, dtype)
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    step = pnn.train_step(model, loss_fn, optimizer)
    assert step.compiled == (backend_name(xp) == "jax")
    good_x, good_y = _batch(xp, device, dtype, 1)
    bad_loss = case == "class weight on another device"  # every call fails: no step before
    if not bad_loss:
        step(good_x, good_y)  # buffers exist: a failed call must leave them too
    ids, values, state, buffers = _snapshot(model, optimizer)
    with pytest.raises(type(expected)) as caught:
        step(bad_x, bad_y)
    assert type(caught.value) is type(expected)
    assert str(caught.value) == str(expected)
    after_ids, after_values, after_state, after_buffers = _snapshot(model, optimizer)
    assert after_ids == ids and after_state["step"] == state["step"] == (0 if bad_loss else 1)
    for name, value in values.items():
        np.testing.assert_array_equal(after_values[name], value)
    assert after_buffers.keys() == buffers.keys()
    for key, value in buffers.items():
        np.testing.assert_array_equal(after_buffers[key], value)
    if not bad_loss:
        step(good_x, good_y)
        assert optimizer.step_count == 2  # still usable


@pytest.mark.backends(only=["jax"], reason="counts XLA compilations")
def test_the_first_compiled_step_compiles_only_itself(xp, device, dtype, caplog):
    """Validation (abstract trace), optimizer buffers, the step's numbers run no eager XLA op (nor does
    looking up the namespace of a JAX array type)."""
    jax = pytest.importorskip("jax")
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1, momentum=0.9))
    x, y = _batch(xp, device, dtype, 0, rows=11)  # a batch size no other test compiles
    caplog.set_level(logging.WARNING)
    with jax.log_compiles(True):
        step(x, y)
    compiled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling ")]
    assert len(compiled) == 1, compiled
    assert "pure_step" in compiled[0]
    caplog.clear()
    with jax.log_compiles(True):
        step(x, y)
    assert not [r for r in caplog.records if r.getMessage().startswith("Compiling ")]


def test_a_loss_fn_deriving_its_targets_still_gets_the_range_check(xp, device, dtype):
    """A target computed inside ``loss_fn`` has no concrete array to check on the host: the eager validation decides."""
    cross_entropy = pnn.CrossEntropyLoss()

    def loss_fn(prediction, y):
        return cross_entropy(prediction, y + 0)

    x, _ = _batch(xp, device, dtype, 0, rows=4)
    bad = _from_host_int(np.array([0, 1, 7, 1]), xp, device)
    expected = _eager_loop_error(xp, device, dtype, loss_fn, x, bad)
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, loss_fn, pnn.SGD(model, lr=0.1))
    with pytest.raises(type(expected)) as caught:
        step(x, bad)
    assert str(caught.value) == str(expected) and step.optimizer.step_count == 0
    step(x, _from_host_int(np.array([0, 1, 2, 1]), xp, device))
    assert step.optimizer.step_count == 1
