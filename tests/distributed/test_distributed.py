"""Scale-out training on Dask (``portable_nn.distributed``): local schedulers and LocalClusters on loopback.

Cluster tests are marked slow (CI still runs them) and use tiny data. Every test runs under a
SIGALRM deadline so a stuck cluster fails the test instead of hanging the suite, and every
cluster is checked to leave no worker process behind and to listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.testing import assert_close, to_numpy

dask = pytest.importorskip("dask", reason="dask is not installed")
da = pytest.importorskip("dask.array", reason="dask is not installed")
distributed = pytest.importorskip("distributed", reason="distributed is not installed")
psutil = pytest.importorskip("psutil", reason="psutil (a dependency of distributed) is not installed")
pd = pytest.importorskip("portable_nn.distributed", reason="dask is not installed")

DEADLINE_S = 120  # per test; the tests take seconds, this only turns a hang into a failure


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test still running after {DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(DEADLINE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _children() -> set[int]:
    """Live child processes, less multiprocessing's resource tracker (one per interpreter, by design)."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if (
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and "resource_tracker" not in " ".join(proc.cmdline())
            ):
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def _assert_no_leaked_processes(before: set[int], within_s: float = 15.0) -> None:
    stop = time.monotonic() + within_s
    while (leaked := _children() - before) and time.monotonic() < stop:
        time.sleep(0.2)
    assert not leaked, f"processes left running: {sorted(leaked)}"


def _listening_ips() -> set[str]:
    ips = set()
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            ips |= {c.laddr.ip for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return ips


def _local_cluster() -> tuple[Any, io.StringIO]:
    """The context manager of a 2-worker LocalCluster on loopback, and where it prints."""
    out = io.StringIO()
    options = {"n_workers": 2, "threads_per_worker": 1, "memory_limit": "1GiB", "dashboard_address": "127.0.0.1:0"}
    return pd.dask_scheduler("distributed", out=out, **options), out


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Any, str]]:
    """A 2-worker LocalCluster on 127.0.0.1 (client, printed output), shut down and checked for leaks."""
    before = _children()
    scheduler, out = _local_cluster()
    with scheduler as client:
        yield client, out.getvalue()
    _assert_no_leaked_processes(before)


def _data(n_samples: int = 384, chunk_rows: int = 8) -> tuple[Any, Any]:
    return pd.synthetic_regression(n_samples, 5, 2, chunk_rows=chunk_rows, seed=3)


def _threads_reference(steps_rows: int = 384, batch_size: int = 32, **kwargs: Any) -> tuple[pnn.Linear, Any]:
    x, y = _data(steps_rows)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    with pd.dask_scheduler("threads"):
        stats = pd.train_epoch(model, x, y, batch_size=batch_size, lr=0.05, progress=False, **kwargs)
    return model, stats


# --------------------------------------------------------------------------- fast: arguments, data, loss


def test_arguments_are_checked():
    with pytest.raises(pnn.ArgumentError, match="scheduler must be one of"), pd.dask_scheduler("mpi"):
        pass
    with (
        pytest.raises(pnn.ArgumentError, match="needs scheduler='distributed'"),
        pd.dask_scheduler("threads", address="tcp://127.0.0.1:8786"),
    ):
        pass
    x, y = _data(16)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    with pytest.raises(pnn.ArgumentError, match="batch_size"):
        pd.train_epoch(model, x, y, batch_size=0, lr=0.1, progress=False)
    with pytest.raises(pnn.ShapeError, match="same N"):
        pd.train_epoch(model, x, y[:8], batch_size=4, lr=0.1, progress=False)
    with pytest.raises(pnn.ArgumentError, match="n_samples"):
        pd.synthetic_regression(10, 0)


def test_synthetic_regression_is_lazy_and_seeded():
    def rows_of_chunk_5(seed: int) -> np.ndarray:
        x, y = pd.synthetic_regression(2**31, 8, 2, chunk_rows=2**18, seed=seed)  # 64 GiB of x, never held
        assert x.shape == (2**31, 8) and y.shape == (2**31, 2) and x.dtype == np.float32
        assert x.numblocks == (2**13, 1)
        return x[5 * 2**18 + 7 : 5 * 2**18 + 11].compute()

    np.testing.assert_array_equal(rows_of_chunk_5(seed=7), rows_of_chunk_5(seed=7))
    assert not np.array_equal(rows_of_chunk_5(seed=8), rows_of_chunk_5(seed=7))
    x, y = pd.synthetic_regression(8192, 8, 2, chunk_rows=1024, seed=7)
    # the targets are a noisy linear function of the inputs: least squares recovers them closely
    xs, ys = (a.astype(np.float64) for a in dask.compute(x[:4096], y[:4096]))
    design = np.hstack([xs, np.ones((4096, 1))])
    residual = ys - design @ np.linalg.lstsq(design, ys, rcond=None)[0]
    assert 0.05 < residual.std() < 0.2  # noise=0.1


def _arrays(model: Any, optimizer: Any) -> list[Any]:
    buffers = [b for group in optimizer.state_dict()["state"].values() for b in group.values()]
    return [*model.parameters(), *buffers]


def test_checkpoint_reroots_parameters_and_optimizer_buffers_without_changing_them():
    x, y = _data(64)
    models = [pnn.Linear(5, 2, xp="dask", seed=0) for _ in range(2)]
    optimizers = [pnn.SGD(m, lr=0.05, momentum=0.9) for m in models]
    with pd.dask_scheduler("threads"):
        for step in range(3):
            for model, optimizer in zip(models, optimizers, strict=True):
                optimizer.zero_grad()
                model.backward(pd.mse_loss(model(x[: 32 * (step % 2 + 1)]), y[: 32 * (step % 2 + 1)])[1])
                optimizer.step()
            if step == 1:
                before = _arrays(models[0], optimizers[0])
                host = pd.checkpoint(models[0], optimizers[0])
                after = _arrays(models[0], optimizers[0])
                assert set(host) == {"weight", "bias"} and len(after) == 4  # weight, bias, 2 momentum buffers
                for old, new in zip(before, after, strict=True):
                    assert new is not old and new.name != old.name and len(new.__dask_graph__()) == 1
                    np.testing.assert_array_equal(to_numpy(new), to_numpy(old))
    for mine, reference in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_array_equal(to_numpy(mine), to_numpy(reference))  # bit-identical: a copy, not a cast


def test_mse_loss_matches_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    loss, grad = pd.mse_loss(da.from_array(p, chunks=(3, 2)), da.from_array(t, chunks=(3, 2)))
    assert_close(loss, np.mean((p - t) ** 2))
    assert_close(grad, 2 * (p - t) / p.size)


def test_progress_bar_and_stats_on_threads():
    x, y = _data(96)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    out = io.StringIO()
    losses = []
    with pd.dask_scheduler("threads", n_workers=2):
        stats = pd.train_epoch(
            model, x, y, batch_size=32, lr=0.05, out=out, on_step=lambda step, loss: losses.append(loss)
        )
    assert "epoch 0" in out.getvalue() and "100%" in out.getvalue() and "loss=" in out.getvalue()
    assert (stats.steps, stats.samples) == (3, 96) and stats.samples_per_s > 0
    assert stats.loss == pytest.approx(np.mean(losses))  # equal batches: mean of batch losses


# --------------------------------------------------------------------------- clusters


@pytest.mark.slow
def test_cluster_listens_on_loopback_and_prints_dashboard(cluster):
    client, printed = cluster
    assert len(client.scheduler_info()["workers"]) == 2
    assert _listening_ips() == {"127.0.0.1"}
    assert f"Dask dashboard: {client.dashboard_link}" in printed
    assert client.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("where", ["threads", pytest.param("cluster", marks=pytest.mark.slow)])
def test_forward_backward_step_match_numpy(where, request):
    if where == "cluster":
        request.getfixturevalue("cluster")
    layer = pnn.Linear(5, 3, xp="dask", seed=0)
    reference = pnn.Linear(5, 3, xp="numpy", seed=0)
    rng = np.random.default_rng(1)
    x_host, g_host = rng.standard_normal((40, 5), dtype=np.float32), rng.standard_normal((40, 3), dtype=np.float32)
    x, g = da.from_array(x_host, chunks=(8, 5)), da.from_array(g_host, chunks=(16, 3))
    with pd.dask_scheduler("threads") if where == "threads" else contextlib.nullcontext():
        for _ in range(3):
            layer.zero_grad()
            reference.zero_grad()
            assert_close(layer(x), reference(x_host))
            assert_close(layer.backward(g), reference.backward(g_host))
            assert_close(layer.grad_weight, reference.grad_weight)
            assert_close(layer.grad_bias, reference.grad_bias)
            layer.step(lr=0.1)
            reference.step(lr=0.1)
            assert_close(layer.weight, reference.weight)
            assert_close(layer.bias, reference.bias)
        assert [len(p.__dask_graph__()) for p in layer.parameters()] == [1, 1]


@pytest.mark.slow
def test_epoch_on_cluster_matches_threads_and_scheduler_state_stays_bounded(cluster, caplog):
    client, _ = cluster
    scheduler = client.cluster.scheduler
    x, y = _data(640)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    tasks: list[int] = []
    stats = pd.train_epoch(
        model,
        x,
        y,
        batch_size=32,
        lr=0.05,
        checkpoint_every=5,
        progress=False,
        on_step=lambda step, loss: tasks.append(len(scheduler.tasks)),
    )
    reference, ref_stats = _threads_reference(640, checkpoint_every=5)
    assert stats.steps == 20
    assert_close(model.weight, to_numpy(reference.weight))
    assert_close(model.bias, to_numpy(reference.bias))
    assert stats.loss == pytest.approx(ref_stats.loss, rel=1e-5)
    # Checkpoints re-root the parameters, so the scheduler holds as many tasks late in the epoch as
    # early (give or take releases still in flight); lineage kept since step 0 would make it ~4x.
    assert max(tasks[-5:]) <= 1.2 * max(tasks[:5]), tasks
    assert [len(p.__dask_graph__()) for p in model.parameters()] == [1, 1]
    # no key reached the scheduler twice with different tasks (dask#9888: "failures and deadlocks")
    assert not [r.getMessage() for r in caplog.records if "run_spec" in r.getMessage()]


class TransitionRecorder(distributed.diagnostics.plugin.SchedulerPlugin):
    """Records every task state transition on the (in-process) scheduler."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, str, str, str]] = []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        self.log.append((key, start, finish, kwargs.get("stimulus_id") or ""))


@pytest.mark.slow
def test_worker_killed_mid_epoch_is_recovered():
    """SIGKILL the worker holding the weight mid-epoch: Dask recomputes what it held, the epoch finishes."""
    before = _children()
    x, y = _data(384)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    killed: list[tuple[int, Any]] = []
    recorder = TransitionRecorder()
    scheduler, _ = _local_cluster()
    with scheduler as client:
        client.cluster.scheduler.add_plugin(recorder, name="transition-recorder")
        pids = client.run(os.getpid)

        def kill_weight_holder(step: int, loss: float) -> None:
            if step != 6:  # between two checkpoints (every 5 steps): the weight has a lineage to replay
                return
            distributed.wait(model.parameters())
            key = model.weight.__dask_keys__()[0][0]
            (holder,) = client.who_has(model.weight)[key]
            os.kill(pids[holder], signal.SIGKILL)
            killed.append((pids[holder], key))

        stats = pd.train_epoch(
            model, x, y, batch_size=32, lr=0.05, checkpoint_every=5, progress=False, on_step=kill_weight_holder
        )
        weight, bias = dask.compute(model.weight, model.bias)
        client.wait_for_workers(2, timeout=60)
        after = set(client.run(os.getpid).values())
    _assert_no_leaked_processes(before)
    (pid, key), *more = killed
    assert not more and pid not in after and len(after) == 2  # the nanny started a new worker
    transitions = [(start, finish, why) for k, start, finish, why in recorder.log if k == key]
    lost = [n for n, (start, _, why) in enumerate(transitions) if start == "memory" and "worker" in why]
    assert lost, f"the weight was not lost with its worker: {transitions}"
    assert any(finish == "memory" for _, finish, _ in transitions[lost[0] :]), "the weight was not recomputed"
    assert stats.steps == 12 and np.isfinite(stats.loss)
    reference, ref_stats = _threads_reference(384, checkpoint_every=5)
    assert_close(weight, to_numpy(reference.weight))
    assert_close(bias, to_numpy(reference.bias))
    assert stats.loss == pytest.approx(ref_stats.loss, rel=1e-5)


def test_cluster_without_workers_raises_cluster_error_within_the_progress_timeout():
    """Every worker closed mid-epoch: no hang, a ClusterError saying so, the model reset to the last checkpoint."""
    before = _children()
    x, y = _data(384)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    scheduler, _ = _local_cluster()
    with scheduler as client:

        def close_all_workers(step: int, loss: float) -> None:
            if step != 6:  # after the checkpoint of step 5
                return
            client.cluster.scale(0)
            deadline = time.monotonic() + 15
            while client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.05)

        start = time.monotonic()
        with pytest.raises(
            pnn.ClusterError, match=r"no progress .* for 2 s \(no workers connected\).*after step 5"
        ) as info:
            pd.train_epoch(
                model,
                x,
                y,
                batch_size=32,
                lr=0.05,
                checkpoint_every=5,
                progress=False,
                on_step=close_all_workers,
                progress_timeout=2,
            )
        elapsed = time.monotonic() - start
    _assert_no_leaked_processes(before)
    assert elapsed < 20, elapsed
    assert info.value.step == 5 and set(info.value.checkpoint) == {"weight", "bias"}
    # the model holds the checkpoint, host-rooted: usable without the cluster
    with dask.config.set(scheduler="threads"):
        weight, bias = dask.compute(model.weight, model.bias)
    np.testing.assert_array_equal(weight, info.value.checkpoint["weight"])
    np.testing.assert_array_equal(bias, info.value.checkpoint["bias"])
    reference, _ = _threads_reference(5 * 32)  # the first 5 steps on the threaded scheduler
    assert_close(weight, to_numpy(reference.weight))


@pytest.mark.slow
def test_workers_killed_repeatedly_end_in_a_result_or_a_cluster_error_never_a_hang():
    """Issue 16: SIGKILL every worker process three times in one epoch (the nannies restart them).

    The epoch either completes, equal to the threaded scheduler's, or fails with a ClusterError
    (no progress, or a task lost with too many workers) within the progress timeout: never a hang.
    """
    before = _children()
    x, y = _data(384)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    kills: list[int] = []
    scheduler, _ = _local_cluster()
    start = time.monotonic()
    with scheduler as client:

        def kill_every_worker(step: int, loss: float) -> None:
            if step not in (2, 5, 8):
                return
            client.wait_for_workers(1, timeout=20)
            for pid in client.run(os.getpid).values():
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)

        try:
            stats = pd.train_epoch(
                model,
                x,
                y,
                batch_size=32,
                lr=0.05,
                checkpoint_every=5,
                progress=False,
                on_step=kill_every_worker,
                progress_timeout=8,
            )
        except pnn.ClusterError as exc:
            outcome: Any = exc
        else:
            outcome = stats
            weight, bias = dask.compute(model.weight, model.bias)
    elapsed = time.monotonic() - start
    _assert_no_leaked_processes(before)
    assert len(kills) >= 3, kills
    assert elapsed < 40, elapsed
    if isinstance(outcome, pnn.ClusterError):
        assert "Dask cluster" in str(outcome), outcome
        assert "last checkpoint" in str(outcome) or "no checkpoint" in str(outcome), outcome
        return
    reference, ref_stats = _threads_reference(384, checkpoint_every=5)
    assert outcome.steps == 12
    assert_close(weight, to_numpy(reference.weight))
    assert_close(bias, to_numpy(reference.bias))
    assert outcome.loss == pytest.approx(ref_stats.loss, rel=1e-5)


class _FakeClient:
    """What ProgressWatchdog asks of a distributed.Client: no futures, a scheduler with no workers."""

    futures: dict[str, Any] = {}  # noqa: RUF012 - read only

    class scheduler:  # the attribute Client has
        address = "tcp://127.0.0.1:1"

    def scheduler_info(self) -> dict[str, Any]:
        return {"workers": {}}


def test_progress_guard_turns_a_failure_after_it_fired_into_a_cluster_error():
    from portable_nn.distributed.cluster import progress_guard

    message = r"no progress on the Dask cluster at tcp://127.0.0.1:1 for 0.2 s \(no workers connected\)"
    with pytest.raises(pnn.ClusterError, match=message), progress_guard(_FakeClient(), 0.2) as dog:
        deadline = time.monotonic() + 10
        while dog.fired is None and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("what a cancelled compute raises")
    # beats keep it quiet; failures it did not cause pass through unchanged; no client: no watchdog
    with pytest.raises(RuntimeError, match="unrelated"), progress_guard(_FakeClient(), 0.3) as dog:
        for _ in range(5):
            time.sleep(0.1)
            dog.beat()
        assert dog.fired is None
        raise RuntimeError("unrelated")
    with progress_guard(None, 0.01) as dog:
        time.sleep(0.05)
        dog.beat()
    assert dog.fired is None


def test_progress_timeout_is_checked():
    x, y = _data(64)
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    for bad in (0, -1.0, "5"):
        with pytest.raises(pnn.ArgumentError, match="progress_timeout"):
            pd.train_epoch(model, x, y, batch_size=32, lr=0.1, progress=False, progress_timeout=bad)


@pytest.mark.slow
def test_train_on_an_existing_cluster_by_address():
    """``address`` connects to a running scheduler and leaves it running; parameters come back host-rooted."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as existing:
        out = io.StringIO()
        model = pnn.Linear(5, 2, xp="dask", seed=0)
        x, y = _data(192)
        stats = pd.train(
            model,
            x,
            y,
            epochs=2,
            batch_size=32,
            lr=0.05,
            scheduler="distributed",
            address=existing.scheduler_address,
            progress=False,
            out=out,
        )
        assert existing.status.name == "running"
        assert "Dask dashboard:" in out.getvalue()
    assert [s.epoch for s in stats] == [0, 1] and stats[1].loss < stats[0].loss
    # the cluster is gone: the parameters must not refer to it
    assert [len(p.__dask_graph__()) for p in model.parameters()] == [1, 1]
    reference = pnn.Linear(5, 2, xp="dask", seed=0)
    with pd.dask_scheduler("threads"):
        for _ in range(2):
            pd.train_epoch(reference, x, y, batch_size=32, lr=0.05, progress=False)
    assert_close(model.weight, to_numpy(reference.weight))


@pytest.mark.slow
def test_processes_scheduler_matches_threads():
    before = _children()
    model = pnn.Linear(5, 2, xp="dask", seed=0)
    x, y = _data(128)
    (stats,) = pd.train(model, x, y, batch_size=32, lr=0.05, scheduler="processes", n_workers=2, progress=False)
    _assert_no_leaked_processes(before)
    reference, ref_stats = _threads_reference(128)
    assert_close(model.weight, to_numpy(reference.weight))
    assert stats.loss == pytest.approx(ref_stats.loss, rel=1e-5)
