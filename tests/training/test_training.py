"""portable_nn.training.run_epoch: the one training loop (the CLI and distributed.train_epoch use it)."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import from_host, resolve_namespace
from portable_nn.testing import assert_close, to_numpy
from portable_nn.training import make_step, run_epoch


def _batches(xp, device, n_batches=3, batch=4):
    xp = resolve_namespace(xp)
    rng = np.random.default_rng(0)
    return [
        (
            from_host(rng.standard_normal((batch, 3)), xp, device, "float64"),
            xp.asarray(rng.integers(0, 2, batch), device=device),
        )
        for _ in range(n_batches)
    ]


def test_run_epoch_matches_torch_autograd_and_optim(xp, device):
    """Three SGD-with-momentum steps of a Linear + cross-entropy against torch.nn/torch.optim run now."""
    torch = pytest.importorskip("torch")
    model = pnn.Linear(3, 2, xp=xp, device=device, dtype="float64", seed=1)
    reference = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(to_numpy(model.weight)))
        reference.bias.copy_(torch.from_numpy(to_numpy(model.bias)))
    batches = _batches(xp, device)
    seen = []
    losses = run_epoch(
        model,
        pnn.CrossEntropyLoss(),
        pnn.SGD(model, lr=0.1, momentum=0.9),
        batches,
        on_step=lambda i, v: seen.append(i),
    )
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    expected = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(to_numpy(x))), torch.from_numpy(to_numpy(y))
        )
        loss.backward()
        expected.append(loss.item())
        optimizer.step()
    assert seen == [0, 1, 2]
    assert losses == pytest.approx(expected, rel=1e-12)
    assert_close(to_numpy(model.weight), reference.weight.detach().numpy())
    assert_close(to_numpy(model.bias), reference.bias.detach().numpy())


def test_a_given_step_replaces_the_default_one():
    model = pnn.Linear(3, 2, seed=0)
    calls = []

    def step(x, y):
        calls.append(x.shape)
        return 0.5

    before = to_numpy(model.weight).copy()
    losses = run_epoch(None, None, None, _batches("numpy", None), step=step)
    assert losses == [0.5, 0.5, 0.5] and calls == [(4, 3)] * 3
    np.testing.assert_array_equal(to_numpy(model.weight), before)  # the default step did not run


def test_a_given_step_never_silently_ignores_model_loss_or_optimizer():
    """An opaque step given with model/loss_fn/optimizer, or a step training other objects, is an ArgumentError."""
    model, other = pnn.Linear(3, 2, seed=0, dtype="float64"), pnn.Linear(3, 2, seed=1, dtype="float64")
    loss_fn, opt = pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1)
    batches = _batches("numpy", None)
    with pytest.raises(pnn.ArgumentError, match="which it would ignore"):
        run_epoch(model, loss_fn, opt, batches, step=lambda x, y: 0.5)
    with pytest.raises(pnn.ArgumentError, match="another model"):
        run_epoch(other, loss_fn, pnn.SGD(other, lr=0.1), batches, step=pnn.train_step(model, loss_fn, opt))
    with pytest.raises(pnn.ArgumentError, match="another optimizer"):
        run_epoch(model, loss_fn, pnn.SGD(model, lr=0.1), batches, step=make_step(model, loss_fn, opt))
    with pytest.raises(pnn.ArgumentError, match="another loss_fn"):
        run_epoch(model, pnn.MSELoss(), opt, batches, step=pnn.train_step(model, loss_fn, opt))
    assert opt.step_count == 0
    assert len(run_epoch(model, loss_fn, opt, batches, step=pnn.train_step(model, loss_fn, opt))) == 3


def test_the_default_step_is_train_step(monkeypatch):
    """run_epoch without a step trains through pnn.train_step (the one step), with the eager loop's numbers."""
    from portable_nn.training.step import TrainStep

    calls = []
    original = TrainStep.__call__
    monkeypatch.setattr(TrainStep, "__call__", lambda self, x, y: calls.append(1) or original(self, x, y))
    model, reference = pnn.Linear(3, 2, seed=0, dtype="float64"), pnn.Linear(3, 2, seed=0, dtype="float64")
    run_epoch(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1, momentum=0.9), _batches("numpy", None))
    ref_opt = pnn.SGD(reference, lr=0.1, momentum=0.9)
    for x, y in _batches("numpy", None):
        make_step(reference, pnn.CrossEntropyLoss(), ref_opt)(x, y)
    assert len(calls) == 3
    np.testing.assert_array_equal(to_numpy(model.weight), to_numpy(reference.weight))


def test_make_step_reads_the_loss_before_the_optimizer_steps():
    model = pnn.Linear(3, 2, seed=0, dtype="float64")
    order = []

    class Recorder:
        def zero_grad(self):
            order.append("zero_grad")

        def step(self):
            order.append("step")

    def read(loss):
        order.append("read")
        return float(loss)

    step = make_step(model, pnn.CrossEntropyLoss(), Recorder(), read=read)
    x, y = _batches("numpy", None, 1)[0]
    assert isinstance(step(x, y), float)
    assert order == ["zero_grad", "read", "step"]
