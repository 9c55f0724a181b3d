"""Pickle, deepcopy and joblib round trips of every layer, model and optimizer, on every backend x device x dtype.

A round trip gives the same class, the same parameters and optimizer buffers bit for bit, on the same backend,
device and dtype, sharing no array with the original; training the copy and the original one more step gives
the same numbers. ``load_state_dict`` takes the ``np.memmap`` values joblib hands back and still refuses masked
arrays and matrices.
"""

from __future__ import annotations

import copy
import io
import pickle
from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.testing import to_numpy

LAYERS = {
    "linear": lambda **p: pnn.Linear(3, 2, seed=0, **p),
    "linear_no_bias": lambda **p: pnn.Linear(3, 2, bias=False, seed=0, **p),
    "relu": lambda **p: pnn.ReLU(),
    "tanh": lambda **p: pnn.Tanh(),
    "sigmoid": lambda **p: pnn.Sigmoid(),
    "sequential": lambda **p: pnn.Sequential(
        pnn.Linear(3, 4, seed=0, **p), pnn.Tanh(), pnn.Sequential(pnn.Linear(4, 2, seed=1, **p), pnn.ReLU())
    ),
    "dropout": lambda **p: pnn.Dropout(0.3, seed=2),
    "batchnorm": lambda **p: pnn.BatchNorm1d(3, momentum=None, **p),
    "layernorm_no_bias": lambda **p: pnn.LayerNorm((2, 3), bias=False, **p),
    "layernorm_no_affine": lambda **p: pnn.LayerNorm(3, elementwise_affine=False, **p),
    "embedding": lambda **p: pnn.Embedding(5, 3, padding_idx=1, seed=3, **p),
    "every_layer": lambda **p: _every_layer(**p),
}


def _every_layer(**placement: Any) -> pnn.Sequential:
    """Every built-in layer in one model: indices (N,) -> Embedding -> BatchNorm1d -> LayerNorm -> Dropout ->
    Linear -> each activation -> Linear."""
    return pnn.Sequential(
        pnn.Embedding(5, 3, seed=3, **placement),
        pnn.BatchNorm1d(3, **placement),
        pnn.LayerNorm(3, **placement),
        pnn.Dropout(0.3, seed=4),
        pnn.Linear(3, 4, seed=5, **placement),
        pnn.ReLU(),
        pnn.Tanh(),
        pnn.Sigmoid(),
        pnn.Sequential(pnn.Linear(4, 2, seed=6, **placement)),
    )


OPTIMIZERS = {
    "sgd": lambda m: pnn.SGD(m, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda m: pnn.Adam(m, lr=0.01, param_groups=[{"params": lambda n: n.endswith("bias"), "lr": 0.02}]),
    "adamw": lambda m: pnn.AdamW(m, lr=0.01, amsgrad=True),
    "rmsprop": lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda m: pnn.Adagrad(m, lr=0.1),
}


def _round_trips() -> dict[str, Any]:
    trips = {"pickle": lambda obj: pickle.loads(pickle.dumps(obj)), "deepcopy": copy.deepcopy}
    try:
        import joblib
    except ImportError:  # joblib comes with scikit-learn (the test extra)
        return trips

    def through_joblib(obj: Any) -> Any:
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        buffer.seek(0)
        return joblib.load(buffer)

    trips["joblib"] = through_joblib
    return trips


ROUND_TRIPS = _round_trips()


def _same_arrays(copied: dict[str, Any], original: dict[str, Any], xp: Any, device: Any, dtype: Any) -> None:
    assert list(copied) == list(original)
    for name, value in copied.items():
        assert pnn.backend_of(value) == pnn.backend_of(original[name])
        assert value.dtype == original[name].dtype and value is not original[name]
        if name.endswith("num_batches_tracked"):  # an integer buffer stays integer
            assert xp.isdtype(value.dtype, "integral")
        else:
            assert value.dtype == dtype
            assert pnn.place_on(value, _Where(xp, device, dtype)) is value  # same backend, device and dtype
        np.testing.assert_array_equal(to_numpy(value), to_numpy(original[name]))


class _Where:
    def __init__(self, xp: Any, device: Any, dtype: Any) -> None:
        self.xp, self.device, self.dtype = xp, device, dtype


@pytest.mark.parametrize("trip", sorted(ROUND_TRIPS))
def test_every_layer_round_trips(trip, xp, device, dtype):
    """Every layer alone and all in one model: the same state (buffers included), mode and random stream. (After
    train-mode steps, with the next forward compared: conformance/test_state_layers.py.)"""
    for name, make in LAYERS.items():
        module = make(xp=xp, device=device, dtype=dtype)
        copied = ROUND_TRIPS[trip](module)
        assert type(copied) is type(module) and repr(copied) == repr(module)
        _same_arrays(copied.state_dict(), module.state_dict(), xp, device, dtype)
        assert copied.random_streams() == module.random_streams() and copied.training, name
        if module.state_dict():
            assert copied.xp is module.xp and copied.device == module.device and copied.dtype == module.dtype
        assert not ROUND_TRIPS[trip](module.eval()).training, name


def test_every_optimizer_round_trips_with_its_model_and_trains_on(xp, device, dtype):
    rng = np.random.default_rng(0)
    trips = sorted(ROUND_TRIPS)
    for index, name in enumerate(sorted(OPTIMIZERS)):  # each optimizer through one round trip, in turn (cheap)
        trip = ROUND_TRIPS[trips[index % len(trips)]]
        model = LAYERS["sequential"](xp=xp, device=device, dtype=dtype)
        optimizer = OPTIMIZERS[name](model)
        step = pnn.train_step(model, pnn.MSELoss(), optimizer, compile=False)
        x = pnn.place_on(rng.standard_normal((5, 3)), model, dtype=dtype, move=True)
        y = pnn.place_on(rng.standard_normal((5, 2)), model, dtype=dtype, move=True)
        step(x, y)
        model_copy, optimizer_copy = trip((model, optimizer))
        assert optimizer_copy.module is model_copy  # one object graph: the copy optimizes the copied model
        assert optimizer_copy.param_groups == optimizer.param_groups
        state, copied_state = optimizer.state_dict(), optimizer_copy.state_dict()
        assert copied_state["step"] == state["step"] == 1
        for param in state["state"]:
            _same_arrays(copied_state["state"][param], state["state"][param], xp, device, dtype)
        step(x, y)
        pnn.train_step(model_copy, pnn.MSELoss(), optimizer_copy, compile=False)(x, y)
        for key, value in model_copy.state_dict().items():
            np.testing.assert_array_equal(to_numpy(value), to_numpy(model.state_dict()[key]))


def test_an_optimizer_of_a_model_with_every_layer_round_trips_and_trains_on():
    """Buffers and the dropout stream travel with the model, never into the optimizer; after the round trip the
    copy's next step (mask, running statistics, update) is the original's, bit for bit (NumPy: the matrix run of
    the copies themselves is above)."""
    trips = sorted(ROUND_TRIPS)
    index = np.array([0, 4, 2, 2, 1])
    for position, name in enumerate(sorted(OPTIMIZERS)):
        model = _every_layer(dtype="float64")
        optimizer = OPTIMIZERS[name](model)

        def step(model: Any, optimizer: Any) -> None:
            optimizer.zero_grad()
            y = model(index)
            model.backward(y - 1.0)
            optimizer.step()

        step(model, optimizer)
        model_copy, optimizer_copy = ROUND_TRIPS[trips[position % len(trips)]]((model, optimizer))
        assert optimizer_copy.module is model_copy
        assert not any("running" in key or "num_batches" in key for key in optimizer.state_dict()["state"])
        step(model, optimizer)
        step(model_copy, optimizer_copy)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(model_copy.state_dict()[key], value, err_msg=f"{name}: {key}")
        assert model_copy.random_streams() == model.random_streams()


def test_a_copy_keeps_no_forward_values():
    layer = pnn.Linear(3, 2, seed=0)
    layer(np.ones((2, 3), np.float32))
    copied = copy.deepcopy(layer)
    with pytest.raises(pnn.CallOrderError, match="no forward was run"):
        copied.backward(np.ones((2, 2), np.float32))
    layer.backward(np.ones((2, 2), np.float32))  # the original still has its forward


def test_the_namespace_travels_by_name(xp):
    layer = pnn.Linear(2, 2, xp=xp, seed=0)
    state = layer.__getstate__()
    assert not any(isinstance(value, type(np)) for value in state.values())  # no module object in the state
    assert pickle.loads(pickle.dumps(layer)).xp is layer.xp


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_load_state_dict_copies_memmap_and_refuses_masked_arrays_and_matrices(tmp_path):
    layer = pnn.Linear(3, 2, seed=0, dtype="float64")
    values = np.arange(6.0).reshape(2, 3)
    mapped = np.memmap(tmp_path / "w.bin", dtype="float64", mode="w+", shape=(2, 3))
    mapped[:] = values
    layer.load_state_dict({"weight": mapped, "bias": np.zeros(2)})
    assert type(layer.weight) is np.ndarray and not np.shares_memory(layer.weight, mapped)
    np.testing.assert_array_equal(layer.weight, values)
    before = layer.weight
    for refused in (np.ma.masked_array(values), np.matrix(values)):
        with pytest.raises(pnn.NamespaceError, match=r"subclass of numpy\.ndarray"):
            layer.load_state_dict({"weight": refused, "bias": np.zeros(2)})
        assert layer.weight is before


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_buffers_load_from_memmap_and_refuse_masked_arrays_and_matrices(tmp_path):
    norm = pnn.BatchNorm1d(2, dtype="float64")
    state = {key: np.asarray(value) for key, value in norm.state_dict().items()}
    mapped = np.memmap(tmp_path / "mean.bin", dtype="float64", mode="w+", shape=(2,))
    mapped[:] = [0.5, -0.5]
    count = np.memmap(tmp_path / "count.bin", dtype="int64", mode="w+", shape=())
    count[...] = 7
    norm.load_state_dict({**state, "running_mean": mapped, "num_batches_tracked": count})
    assert type(norm.running_mean) is np.ndarray and not np.shares_memory(norm.running_mean, mapped)
    assert type(norm.num_batches_tracked) is np.ndarray and int(norm.num_batches_tracked) == 7
    np.testing.assert_array_equal(norm.running_mean, [0.5, -0.5])
    before = norm.running_var
    for refused in (np.ma.masked_array(np.ones(2)), np.matrix(np.ones(2))):
        with pytest.raises(pnn.NamespaceError, match=r"subclass of numpy\.ndarray"):
            norm.load_state_dict({**state, "running_var": refused})
        assert norm.running_var is before and int(norm.num_batches_tracked) == 7
