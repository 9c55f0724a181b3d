"""µs per forward: a model exported with ``pnn.export_onnx`` in onnxruntime against portable_nn on NumPy (float32).

Models: the demo MLP (2→64→64→3, tanh) and a wide one (1024→1024→1024→1024, tanh); batch sizes
1, 64 and 1024. Rows: ``portable_nn numpy`` (``model(x)`` under ``no_grad``) and ``onnxruntime``
(``session.run`` of the exported graph, one intra-op thread like NumPy's BLAS here), interleaved in the
same rounds; median of ``--rounds`` rounds of ``--calls`` calls after a warm-up, the ratio
onnxruntime / portable_nn, and max |Δ| between the two outputs (same float32 parameters).

    python benchmarks/onnx_bench.py [--rounds 7] [--calls 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

import portable_nn as pnn

MODELS = {"demo": (2, 64, 64, 3), "wide": (1024, 1024, 1024, 1024)}
BATCHES = (1, 64, 1024)


def build(sizes: tuple[int, ...]) -> pnn.Sequential:
    rng = np.random.default_rng(0)
    layers: list[pnn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(pnn.Linear(a, b, seed=rng))
        if i < len(sizes) - 2:
            layers.append(pnn.Tanh())
    return pnn.Sequential(*layers)


def _timed(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def run(rounds: int = 7, calls: int = 50, models: tuple[str, ...] = tuple(MODELS)) -> list[dict[str, Any]]:
    """One row per model and batch size: µs per forward of each side, their ratio, and max |Δ|."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            model = build(MODELS[name])
            path = Path(tmp) / f"{name}.onnx"
            pnn.export_onnx(model, path, input_shape=(None, MODELS[name][0]))
            session = onnxruntime.InferenceSession(str(path), options)
            for batch in BATCHES:
                x = np.random.default_rng(batch).standard_normal((batch, MODELS[name][0])).astype(np.float32)

                def ours(x: np.ndarray = x, model: pnn.Sequential = model) -> Any:
                    with pnn.no_grad():
                        return model(x)

                def theirs(x: np.ndarray = x, session: Any = session) -> Any:
                    return session.run(None, {"input": x})[0]

                delta = float(np.max(np.abs(np.asarray(ours()) - theirs())))
                n = max(1, calls // (1 + batch * MODELS[name][1] // 65536))  # fewer calls for big ones
                times: dict[str, list[float]] = {"portable_nn numpy": [], "onnxruntime": []}
                for _ in range(2):  # warm-up
                    ours(), theirs()
                for _ in range(rounds):
                    times["portable_nn numpy"].append(_timed(ours, n))
                    times["onnxruntime"].append(_timed(theirs, n))
                medians = {k: statistics.median(v) for k, v in times.items()}
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "portable_nn_numpy_us": medians["portable_nn numpy"],
                        "onnxruntime_us": medians["onnxruntime"],
                        "ratio_onnxruntime_to_numpy": medians["onnxruntime"] / medians["portable_nn numpy"],
                        "max_abs_delta": delta,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)
    rows = run(args.rounds, args.calls, tuple(args.models.split(",")))
    print(f"{'model':<6}{'batch':>6}{'portable_nn numpy µs':>22}{'onnxruntime µs':>16}{'ratio':>8}{'max |Δ|':>10}")
    for r in rows:
        print(
            f"{r['model']:<6}{r['batch']:>6}{r['portable_nn_numpy_us']:>22.1f}{r['onnxruntime_us']:>16.1f}"
            f"{r['ratio_onnxruntime_to_numpy']:>8.2f}{r['max_abs_delta']:>10.1e}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
