"""portable_nn's MLPClassifier against scikit-learn's on the digits data, side by side in one run.

Digits (``sklearn.datasets.load_digits``, 1797 images of 8x8 pixels scaled to [0, 1]), a stratified
75/25 split, hidden layer (32,), solver adam, 200 iterations (``tol=0`` and ``n_iter_no_change=max_iter``:
every run trains exactly 200 epochs, so the fit times compare the same work), one thread
(threadpoolctl for BLAS, ``torch.set_num_threads(1)`` when torch is imported). Each library's fit
runs ``--repeats`` times, interleaved; the table shows test accuracy (mean over ``--seeds``) and the
median fit time.

    python -m benchmarks.sklearn_digits                 # 5 repeats, seeds 0..4
    python -m benchmarks.sklearn_digits --repeats 3 --seeds 3 --json digits.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from threadpoolctl import threadpool_limits

from portable_nn.sklearn import MLPClassifier as PortableMLP

PARAMS: dict[str, Any] = {
    "hidden_layer_sizes": (32,),
    "solver": "adam",
    "max_iter": 200,
    "tol": 0.0,
    "n_iter_no_change": 200,
}


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float64)
    parts = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    return parts[0], parts[1], parts[2], parts[3]


def fit_once(cls: Any, seed: int, split: tuple[np.ndarray, ...], max_iter: int = 200) -> tuple[float, float, int]:
    X_train, X_test, y_train, y_test = split
    model = cls(**{**PARAMS, "max_iter": max_iter, "n_iter_no_change": max_iter}, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return float(model.score(X_test, y_test)), seconds, int(model.n_iter_)


def run(repeats: int, seeds: int, max_iter: int = 200) -> dict[str, Any]:
    split = data()
    libraries = {"scikit-learn": SklearnMLP, "portable_nn": PortableMLP}
    results: dict[str, dict[str, list[float]]] = {name: {"accuracy": [], "seconds": []} for name in libraries}
    iterations: dict[str, int] = {}
    by_seed: dict[str, dict[int, float]] = {name: {} for name in libraries}
    with threadpool_limits(limits=1):
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        fit_once(PortableMLP, 0, split, max_iter)  # warm-up: imports, first-call validation
        fit_once(SklearnMLP, 0, split, max_iter)
        for seed in range(seeds):
            for _ in range(repeats):  # interleaved: both libraries see the same machine load
                for name, cls in libraries.items():
                    accuracy, seconds, n_iter = fit_once(cls, seed, split, max_iter)
                    results[name]["seconds"].append(seconds)
                    iterations[name] = n_iter
                    by_seed[name][seed] = accuracy  # a seed's fit is deterministic: its accuracy counts once
    for name in libraries:
        results[name]["accuracy"] = list(by_seed[name].values())
    return {
        name: {
            "accuracy": statistics.fmean(values["accuracy"]),
            "accuracy_min": min(values["accuracy"]),
            "fit_seconds": statistics.median(values["seconds"]),
            "n_iter": iterations[name],
        }
        for name, values in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per library and seed (default 5)")
    parser.add_argument("--seeds", type=int, default=5, help="random_state 0..N-1 (default 5)")
    parser.add_argument("--max-iter", type=int, default=200, help="epochs (default 200; smaller for a smoke test)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.seeds < 1 or args.max_iter < 1:
        parser.error("--repeats, --seeds and --max-iter must be >= 1")
    figures = run(args.repeats, args.seeds, args.max_iter)
    print(f"digits, hidden (32,), adam, {args.max_iter} iterations, one thread")
    print(f"{'library':<14}{'accuracy':>10}{'(min)':>8}{'fit s':>9}{'epochs':>8}")
    for name, row in figures.items():
        print(
            f"{name:<14}{row['accuracy']:>10.4f}{row['accuracy_min']:>8.4f}{row['fit_seconds']:>9.3f}{row['n_iter']:>8}"
        )
    ours, theirs = figures["portable_nn"], figures["scikit-learn"]
    print(
        f"portable_nn / scikit-learn: accuracy {ours['accuracy'] - theirs['accuracy']:+.4f}, "
        f"fit time x{ours['fit_seconds'] / theirs['fit_seconds']:.2f}"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
