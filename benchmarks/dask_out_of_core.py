"""Out-of-core training on Dask: a dataset several times larger than each worker's memory limit.

One epoch of minibatch SGD (MSE regression, ``portable_nn.Linear`` on ``dask.array``) over a
dataset generated lazily from a seed (:func:`portable_nn.distributed.synthetic_regression`),
on a LocalCluster bound to 127.0.0.1 with 1 and then 2 single-threaded workers, each limited
to ``--memory-limit``; then the same loop in memory with NumPy on the first ``--numpy-rows``
rows. Reports the dataset size, the worker memory limit, each worker's peak RSS (the kernel's
high-water mark; for NumPy, the benchmark process's), bytes spilled to disk, worker restarts,
and throughput in samples/s (Dask's includes generating the data, NumPy's does not).

    python benchmarks/dask_out_of_core.py                 # 4 GiB of inputs, 1 GiB per worker
    python benchmarks/dask_out_of_core.py --rows 1048576  # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from typing import Any

import dask
import numpy as np

import portable_nn as pnn
from portable_nn import distributed as pd

GiB = 2**30
MiB = 2**20


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _spilled(dask_worker: Any) -> int:
    total = getattr(dask_worker.data, "spilled_total", None)
    return int(total.disk) if total is not None else 0


def run_cluster(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    x, y = pd.synthetic_regression(args.rows, args.features, 1, chunk_rows=args.chunk_rows, seed=args.seed)
    model = pnn.Linear(args.features, 1, xp="dask", seed=0)
    with pd.dask_scheduler(
        "distributed",
        n_workers=workers,
        threads_per_worker=1,
        memory_limit=args.memory_limit,
        dashboard_address="127.0.0.1:0",
    ) as client:
        pids = client.run(os.getpid)
        stats = pd.train_epoch(model, x, y, batch_size=args.batch_size, lr=args.lr)
        peaks = client.run(_peak_rss)
        spilled = client.run(_spilled)
        restarted = client.run(os.getpid) != pids
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
    return {
        "run": f"dask, {workers} worker{'s' * (workers > 1)}",
        "samples": stats.samples,
        "data_bytes": int(x.nbytes + y.nbytes),
        "worker_memory_limit": limit,
        "peak_worker_rss": max(peaks.values()),
        "spilled_bytes": sum(spilled.values()),
        "workers_restarted": restarted,
        "seconds": stats.seconds,
        "samples_per_s": stats.samples_per_s,
        "loss": stats.loss,
    }


def run_numpy(args: argparse.Namespace) -> dict[str, Any]:
    x, y = pd.synthetic_regression(args.numpy_rows, args.features, 1, chunk_rows=args.chunk_rows, seed=args.seed)
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        x, y = dask.compute(x, y)
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    generation_s = time.perf_counter() - start
    model = pnn.Linear(args.features, 1, xp="numpy", seed=0)
    start = time.perf_counter()
    total = 0.0
    for begin in range(0, len(x), args.batch_size):
        xb, yb = x[begin : begin + args.batch_size], y[begin : begin + args.batch_size]
        model.zero_grad()
        loss, grad = pd.mse_loss(model(xb), yb)
        model.backward(grad)
        model.step(args.lr)
        total += float(loss) * len(xb)
    seconds = time.perf_counter() - start
    return {
        "run": "numpy, in memory",
        "samples": len(x),
        "data_bytes": int(x.nbytes + y.nbytes),
        "worker_memory_limit": None,
        "peak_worker_rss": _peak_rss(),
        "spilled_bytes": 0,
        "workers_restarted": False,
        "seconds": seconds,
        "samples_per_s": len(x) / seconds,
        "loss": total / len(x),
        "generation_samples_per_s": len(x) / generation_s,
    }


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2**23, help="samples in the Dask dataset (default 8388608)")
    parser.add_argument("--features", type=int, default=128, help="input features (default 128)")
    parser.add_argument("--chunk-rows", type=int, default=2**16, help="rows per chunk (default 65536)")
    parser.add_argument("--batch-size", type=int, default=2**18, help="rows per step (default 262144)")
    parser.add_argument("--numpy-rows", type=int, default=2**20, help="rows of the in-memory NumPy subset")
    parser.add_argument("--memory-limit", default="1GiB", help="per-worker memory limit (default 1GiB)")
    parser.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    results = [run_cluster(int(w), args) for w in args.workers.split(",")]
    results.append(run_numpy(args))
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"dask {dask.__version__}, numpy {np.__version__}; 1-min load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(
        f"{'run':<18}{'data':>10}{'limit':>10}{'peak RSS':>10}{'spilled':>9}{'restarts':>9}"
        f"{'seconds':>9}{'samples/s':>12}{'loss':>9}"
    )
    for r in results:
        print(
            f"{r['run']:<18}{_size(r['data_bytes']):>10}{_size(r['worker_memory_limit']):>10}"
            f"{_size(r['peak_worker_rss']):>10}{_size(r['spilled_bytes']):>9}"
            f"{'yes' if r['workers_restarted'] else 'no':>9}"
            f"{r['seconds']:>9.1f}{r['samples_per_s']:>12.3g}{r['loss']:>9.4f}"
        )
    print(
        f"(dask runs generate their data while training; NumPy trains on data generated beforehand, "
        f"at {results[-1]['generation_samples_per_s']:.3g} samples/s with dask's threads)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
