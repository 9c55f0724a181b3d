"""``distributed.train_epoch`` / ``train`` train through ``pnn.train_step`` with a real optimizer.

Oracles computed here at run time: a float64 NumPy loop of plain SGD on the MSE, the old
``forward → backward → Module.step(lr)`` loop (bit for bit), and ``torch.optim.SGD`` with momentum.
All on dask's threads scheduler with tiny data; the cluster tests are in ``test_distributed.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.testing import assert_close, to_numpy

dask = pytest.importorskip("dask", reason="dask is not installed")
pytest.importorskip("distributed", reason="distributed is not installed")
pd = pytest.importorskip("portable_nn.distributed", reason="dask is not installed")
callbacks = pytest.importorskip("dask.callbacks", reason="dask is not installed")

LR = 0.05
BATCH = 32
ROWS = 100  # three batches of 32 and one of 4


def _data(dtype: str = "float64", rows: int = ROWS) -> tuple[Any, Any]:
    return pd.synthetic_regression(rows, 5, 2, chunk_rows=8, seed=3, dtype=dtype)


def _batches(x: Any, y: Any, batch: int = BATCH) -> list[tuple[np.ndarray, np.ndarray]]:
    xs, ys = dask.compute(x, y)
    return [(xs[start : start + batch], ys[start : start + batch]) for start in range(0, len(xs), batch)]


def test_train_epoch_matches_a_float64_numpy_oracle():
    x, y = _data()
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    weight, bias = to_numpy(model.weight), to_numpy(model.bias)
    seen: list[float] = []
    with pd.dask_scheduler("threads"):
        stats = pd.train_epoch(
            model, x, y, batch_size=BATCH, lr=LR, progress=False, on_step=lambda step, loss: seen.append(loss)
        )
    expected = []
    for xb, yb in _batches(x, y):
        diff = xb @ weight.T + bias - yb
        expected.append(float(np.mean(diff * diff)))
        grad = 2 * diff / diff.size
        weight, bias = weight - LR * (grad.T @ xb), bias - LR * grad.sum(axis=0)
    assert_close(model.weight, weight)
    assert_close(model.bias, bias)
    assert seen == pytest.approx(expected, rel=1e-12)
    sizes = [BATCH, BATCH, BATCH, ROWS - 3 * BATCH]
    assert (stats.steps, stats.samples) == (4, ROWS)
    assert stats.loss == pytest.approx(np.dot(expected, sizes) / ROWS, rel=1e-12)


def test_default_plain_sgd_is_bit_identical_to_the_old_module_step_loop():
    """``lr=`` (a fresh ``pnn.SGD(model, lr)``, momentum 0) gives the numbers of the loop it replaced."""
    x, y = _data("float32")
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    old = pnn.Linear(5, 2, xp="dask", seed=0)
    old_losses = []
    with pd.dask_scheduler("threads"):
        stats = pd.train_epoch(model, x, y, batch_size=BATCH, lr=LR, progress=False)
        for start in range(0, ROWS, BATCH):
            loss, grad = pd.mse_loss(old(x[start : start + BATCH]), y[start : start + BATCH])
            old.zero_grad()
            old.backward(grad)
            old_losses.append(float(loss.compute()) * min(BATCH, ROWS - start))
            old.step(LR)
    np.testing.assert_array_equal(to_numpy(model.weight), to_numpy(old.weight))
    np.testing.assert_array_equal(to_numpy(model.bias), to_numpy(old.bias))
    assert stats.loss == sum(old_losses) / ROWS


def test_every_step_is_a_train_step_call(monkeypatch):
    """train_epoch steps through pnn.train_step (fails if it goes back to a loop of its own)."""
    from portable_nn.training.step import TrainStep

    calls: list[int] = []
    original = TrainStep.__call__

    def spy(self: TrainStep, x: Any, y: Any) -> Any:
        calls.append(x.shape[0])
        return original(self, x, y)

    monkeypatch.setattr(TrainStep, "__call__", spy)
    x, y = _data()
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    with pd.dask_scheduler("threads"):
        pd.train_epoch(model, x, y, batch_size=BATCH, lr=LR, progress=False)
    assert calls == [BATCH, BATCH, BATCH, ROWS - 3 * BATCH]


def test_optimizer_keyword_matches_torch_sgd_with_momentum_across_epochs():
    """``train(optimizer=SGD(momentum=0.9))``: two epochs equal torch.optim.SGD's, buffers kept between epochs."""
    torch = pytest.importorskip("torch")
    x, y = _data()
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    optimizer = pnn.SGD(model, lr=LR, momentum=0.9)
    reference = torch.nn.Linear(5, 2, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(to_numpy(model.weight)))
        reference.bias.copy_(torch.from_numpy(to_numpy(model.bias)))
    stats = pd.train(model, x, y, epochs=2, batch_size=BATCH, optimizer=optimizer, scheduler="threads", progress=False)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=LR, momentum=0.9)
    batches = _batches(x, y)
    for epoch in range(2):
        total = 0.0
        for xb, yb in batches:
            torch_optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            torch_optimizer.step()
            total += loss.item() * len(xb)
        assert stats[epoch].loss == pytest.approx(total / ROWS, rel=1e-10)
    assert_close(model.weight, reference.weight.detach().numpy())
    assert_close(model.bias, reference.bias.detach().numpy())
    assert optimizer.step_count == 8
    buffers = optimizer.state_dict()["state"]
    assert_close(
        buffers["weight"]["momentum_buffer"], torch_optimizer.state[reference.weight]["momentum_buffer"].numpy()
    )
    # host-rooted afterwards, as the parameters: one stored chunk each
    assert all(len(b.__dask_graph__()) == 1 for group in buffers.values() for b in group.values())


class _Count(callbacks.Callback):
    """Counts the graphs dask's local schedulers run (persist and compute alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    def _start(self, dsk: Any) -> None:
        self.runs += 1


def test_a_step_runs_the_batch_persist_one_materialize_and_one_loss_read():
    """Per step: persist the batch, store parameters + buffers + loss (one persist), read the stored loss; no more."""
    x, y = _data()
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    optimizer = pnn.SGD(model, lr=LR, momentum=0.9)
    with pd.dask_scheduler("threads"), _Count() as counter:
        stats = pd.train_epoch(model, x, y, batch_size=BATCH, optimizer=optimizer, checkpoint_every=2, progress=False)
    checkpoints = 2  # after steps 2 and 4: one compute each (their rebinds from the host run nothing locally)
    assert counter.runs <= 3 * stats.steps + checkpoints, counter.runs


def test_cluster_error_resets_model_and_optimizer_to_the_last_checkpoint():
    """A ClusterError mid-epoch (raised here by on_step) leaves the model and its optimizer as after step 5."""
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    optimizer = pnn.SGD(model, lr=LR, momentum=0.9)

    def fail(step: int, loss: float) -> None:
        if step == 6:
            raise pnn.ClusterError("no progress on the Dask cluster (simulated)")

    x6, y6 = _data(rows=8 * 16)
    with pd.dask_scheduler("threads"):
        with pytest.raises(pnn.ClusterError, match=r"simulated.*after step 5") as info:
            pd.train_epoch(
                model, x6, y6, batch_size=16, optimizer=optimizer, checkpoint_every=5, progress=False, on_step=fail
            )
        reference = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
        reference_optimizer = pnn.SGD(reference, lr=LR, momentum=0.9)
        pd.train_epoch(reference, x6[:80], y6[:80], batch_size=16, optimizer=reference_optimizer, progress=False)
    assert info.value.step == 5 and optimizer.step_count == reference_optimizer.step_count == 5
    np.testing.assert_array_equal(to_numpy(model.weight), info.value.checkpoint["weight"])
    np.testing.assert_array_equal(to_numpy(model.weight), to_numpy(reference.weight))
    mine, theirs = optimizer.state_dict()["state"], reference_optimizer.state_dict()["state"]
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(
            to_numpy(mine[name]["momentum_buffer"]), to_numpy(theirs[name]["momentum_buffer"])
        )


def test_lr_and_optimizer_are_checked_before_anything_changes():
    x, y = _data(rows=16)
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    other = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=1)
    before = [to_numpy(p) for p in model.parameters()]
    with pd.dask_scheduler("threads"):
        with pytest.raises(pnn.ArgumentError, match=r"give lr .* or optimizer, got neither"):
            pd.train_epoch(model, x, y, batch_size=8, progress=False)
        with pytest.raises(pnn.ArgumentError, match="not both"):
            pd.train_epoch(model, x, y, batch_size=8, lr=0.1, optimizer=pnn.SGD(model, lr=0.1), progress=False)
        with pytest.raises(pnn.ArgumentError, match="another module"):
            pd.train_epoch(model, x, y, batch_size=8, optimizer=pnn.SGD(other, lr=0.1), progress=False)
        with pytest.raises(pnn.ArgumentTypeError, match="portable_nn Optimizer"):
            pd.train_epoch(model, x, y, batch_size=8, optimizer=object(), progress=False)  # type: ignore[arg-type]
    with pytest.raises(pnn.ArgumentError, match="not both"):
        pd.train(model, x, y, lr=0.1, optimizer=pnn.SGD(model, lr=0.1), scheduler="threads", progress=False)
    for old, new in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(old, to_numpy(new))


def _momentum_run(x: Any, y: Any, **kwargs: Any) -> tuple[pnn.Linear, pnn.SGD, list[pd.EpochStats]]:
    model = pnn.Linear(5, 2, xp="dask", dtype="float64", seed=0)
    optimizer = pnn.SGD(model, lr=LR, momentum=0.9)
    stats = pd.train(
        model, x, y, epochs=2, batch_size=BATCH, optimizer=optimizer, checkpoint_every=3, progress=False, **kwargs
    )
    return model, optimizer, stats


@pytest.mark.slow
def test_momentum_on_a_cluster_matches_threads_with_buffers_rerooted(caplog):
    """On a (in-process) cluster: the threads scheduler's result; parameters and buffers come back host-rooted."""
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    x, y = _data()
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as existing:
        model, optimizer, stats = _momentum_run(x, y, address=existing.scheduler_address, progress_timeout=60)
    reference, reference_optimizer, reference_stats = _momentum_run(x, y, scheduler="threads")
    assert [s.loss for s in stats] == pytest.approx([s.loss for s in reference_stats], rel=1e-12)
    assert_close(model.weight, to_numpy(reference.weight))
    mine, theirs = optimizer.state_dict()["state"], reference_optimizer.state_dict()["state"]
    assert_close(mine["weight"]["momentum_buffer"], to_numpy(theirs["weight"]["momentum_buffer"]))
    held = [*model.parameters(), *(b for group in mine.values() for b in group.values())]
    assert all(isinstance(v, np.ndarray) for a in held for v in dict(a.__dask_graph__()).values())
    assert not [r.getMessage() for r in caplog.records if "run_spec" in r.getMessage()]  # dask#9888
