"""NumPy's whole-group SGD step (``portable_nn.backends.numpy_optim``) against the generic per-parameter rule.

Both perform the same NumPy operations, so parameters, buffers and losses must be equal bit for bit, in
the eager loop (``opt.step()``: fresh arrays) and in ``train_step`` (private buffers updated in place);
neither may write to an array a user holds (parameters, gradients, ``state_dict()`` buffers).
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.backends.fast_paths import optimizer_fast_path
from portable_nn.backends.numpy_optim import sgd

SGDS = {
    "momentum": {"lr": 0.1, "momentum": 0.9},
    "plain": {"lr": 0.1},
    "nesterov-decay": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True},
    "dampening-maximize": {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "maximize": True},
    "lr-array": {"lr": np.asarray(0.05, np.float32), "momentum": 0.9},
}


def _model() -> pnn.Sequential:
    return pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.Tanh(), pnn.Linear(4, 3, seed=1))


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, 2)).astype(np.float32), rng.integers(0, 3, 5)


def _state(optimizer: pnn.Optimizer) -> dict[str, dict[str, np.ndarray]]:
    return optimizer.state_dict()["state"]


def test_numpy_sgd_has_a_whole_group_step():
    assert optimizer_fast_path("numpy", "sgd") is sgd
    assert optimizer_fast_path("numpy", "adam") is None


@pytest.mark.parametrize("hyper", SGDS.values(), ids=SGDS.keys())
@pytest.mark.parametrize("loop", ["eager", "train_step"])
def test_whole_group_sgd_equals_the_generic_rule_bit_for_bit(hyper, loop):
    runs = []
    for foreach in (None, False):  # None: the NumPy loop; False: the generic per-parameter rule
        model = _model()
        optimizer = pnn.SGD(model, foreach=foreach, **hyper)
        step = pnn.train_step(model, pnn.CrossEntropyLoss(), optimizer, compile=False)
        losses = []
        for seed in range(4):
            x, y = _batch(seed)
            if loop == "train_step":
                losses.append(step(x, y))
                continue
            loss, grad = pnn.CrossEntropyLoss()(model(x), y)
            model.zero_grad()
            model.backward(grad)
            live = [*model.named_parameters().values(), *model.named_grads().values()]
            held = [a.copy() for a in live]
            state = _state(optimizer)
            held_state = {(n, k): v.copy() for n, b in state.items() for k, v in b.items()}
            optimizer.step()
            for before, now in zip(held, live, strict=True):
                np.testing.assert_array_equal(before, now)  # nothing a user holds is written to
            for (n, k), before in held_state.items():
                np.testing.assert_array_equal(before, state[n][k])
            losses.append(loss)
        runs.append((losses, model.named_parameters(), _state(optimizer)))
    (losses, params, state), (generic_losses, generic_params, generic_state) = runs
    np.testing.assert_array_equal(np.asarray(losses), np.asarray(generic_losses), strict=True)
    for name, p in params.items():
        np.testing.assert_array_equal(p, generic_params[name], strict=True)
    assert state.keys() == generic_state.keys()
    for name, buffers in state.items():
        assert buffers.keys() == generic_state[name].keys()
        for key, value in buffers.items():
            np.testing.assert_array_equal(value, generic_state[name][key], strict=True)


def test_whole_group_sgd_keeps_0d_parameters_arrays():
    model = pnn.Linear(1, 1, seed=0)
    model.register_parameter("scale", np.asarray(2.0, np.float32))
    model.scale = np.asarray(2.0, np.float32)
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    for _ in range(3):
        model.zero_grad()
        model.set_grads({name: np.ones_like(p) for name, p in model.named_parameters().items()})
        optimizer.step()
    assert type(model.scale) is np.ndarray and model.scale.shape == ()
    assert type(_state(optimizer)["scale"]["momentum_buffer"]) is np.ndarray
