"""An optimizer follows its module: after ``model.to(...)`` its buffers move too (issue: raw TypeError before).

Reference: the same model and optimizer moved by hand (``load_state_dict`` of converted
parameters and buffers); training on must give the same numbers, bit for bit.
"""

from __future__ import annotations

import pytest

import portable_nn as pnn
from portable_nn._backend import convert, device_of, namespace_of
from portable_nn.testing import assert_close, random_array

from .helpers import mlp

OPTIMIZERS = {
    "sgd-momentum": lambda m: pnn.SGD(m, lr=0.05, momentum=0.9),
    "adam": lambda m: pnn.Adam(m, lr=0.01),
}


def _model() -> pnn.Sequential:
    return mlp((4, 5, 2), dtype="float64")


def _train(model, optimizer, steps: int, first_seed: int) -> None:
    xp, device, dtype = model.xp, model.device, model.dtype
    for seed in range(first_seed, first_seed + steps):
        x, _ = random_array(xp, (6, 4), device=device, dtype=dtype, seed=seed)
        target, _ = random_array(xp, (6, 2), device=device, dtype=dtype, seed=1000 + seed)
        _, grad = pnn.MSELoss()(model(x), target)
        optimizer.zero_grad()
        model.backward(grad)
        optimizer.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_buffers_follow_model_to(xp, device, dtype, name):
    moved, by_hand = _model(), _model()
    moved_opt, by_hand_opt = OPTIMIZERS[name](moved), OPTIMIZERS[name](by_hand)
    _train(moved, moved_opt, 3, 0)
    _train(by_hand, by_hand_opt, 3, 0)

    moved.to(xp=xp, device=device, dtype=dtype)  # the optimizer is not told
    state = by_hand_opt.state_dict()
    by_hand.to(xp=xp, device=device, dtype=dtype)
    state["state"] = {
        p: {b: convert(a, xp, device, dtype) for b, a in buffers.items()} for p, buffers in state["state"].items()
    }
    by_hand_opt.load_state_dict(state)

    for buffers in moved_opt.state_dict()["state"].values():  # already on the new placement, before any step
        for buffer in buffers.values():
            assert namespace_of(buffer) is xp and device_of(buffer) == device and buffer.dtype == dtype

    _train(moved, moved_opt, 3, 3)
    _train(by_hand, by_hand_opt, 3, 3)
    for (name_a, a), (name_b, b) in zip(
        moved.named_parameters().items(), by_hand.named_parameters().items(), strict=True
    ):
        assert name_a == name_b
        assert_close(a, b, rtol=0, atol=0)
    assert moved_opt.step_count == 6


def test_a_failed_move_of_buffers_changes_nothing():
    model = _model()
    optimizer = pnn.SGD(model, lr=0.1, momentum=0.9)
    _train(model, optimizer, 1, 0)
    before = optimizer.state_dict()["state"]
    model.to(dtype="float32")
    model.layers[0].zero_grad()  # step() now lacks gradients: a CallOrderError after the buffers moved
    with pytest.raises(pnn.CallOrderError):
        optimizer.step()
    after = optimizer.state_dict()["state"]
    for p in before:
        for b in before[p]:
            assert after[p][b].dtype == model.dtype  # moved with the module, values kept
            assert_close(after[p][b], convert(before[p][b], dtype="float32"), rtol=0, atol=0)
