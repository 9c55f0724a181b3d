"""Command line: ``python -m benchmarks.bench [--quick] ...`` (``--help`` for the options).

Every usage error is one ``bench: error: ...`` line on stderr and exit status 2, checked before anything runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from portable_nn import PortableNNError

from .backends import KNOWN_BACKENDS, KNOWN_DTYPES, installed_backends, resolve_namespace
from .calls import call_targets
from .cases import Config, run_case
from .env import limit_threads, machine, threadpoolctl_available, versions
from .report import format_markdown, format_text
from .shapes import Shape
from .summary import format_summary, median_of_runs, plot
from .targets import evaluate_targets
from .train_models import MODELS
from .train_run import TRAIN_BACKENDS, run_train
from .variants import LR

CPU_SHAPES: tuple[str, ...] = ("32x64->64", "256x512->512", "1024x1024->1024", "4096x2048->2048", "8x128x512->512")
QUICK_SHAPES: tuple[str, ...] = ("32x64->64", "256x512->512", "1024x1024->1024", "4x64x256->256")
GPU_SHAPES: tuple[str, ...] = ("8192x4096->4096", "65536x1024->1024")
CPU_BACKENDS: tuple[str, ...] = ("numpy", "torch", "jax")
GPU_BACKENDS: tuple[str, ...] = ("torch", "cupy", "jax")
PARTS: tuple[str, ...] = ("linear", "train")
PROG = "bench"


class UsageError(Exception):
    """A bad command line: reported as one ``bench: error: ...`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_int(text: str) -> int:
    value = int(text)  # ValueError -> argparse's "invalid _positive_int value" is replaced below
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text}")
    return value


_positive_int.__name__ = _non_negative_int.__name__ = "integer"
_seconds.__name__ = "number"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m benchmarks.bench",
        description="Time portable_nn.Linear against torch.nn.Linear+autograd, textbook NumPy and the raw "
        "array-API bound (forward, backward, step, fwd+bwd, train step), and whole MLP training steps "
        "(portable_nn, hand-written, raw array API, torch.nn+optim, jax.jit), interleaved in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (~2 minutes on 2 cores)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (GPU shapes, float32+bfloat16)")
    parser.add_argument("--parts", default="linear,train", help="comma list of linear, train (default both)")
    parser.add_argument(
        "--backends",
        help=f"Linear rows: comma list (default cpu: {','.join(CPU_BACKENDS)}; cuda: "
        f"{','.join(GPU_BACKENDS)}); also array_api_strict",
    )
    parser.add_argument("--dtypes", help=f"Linear rows: comma list of {', '.join(KNOWN_DTYPES)} (default float32)")
    parser.add_argument("--shapes", help="Linear rows: comma list like 32x64->64,8x128x512->512")
    parser.add_argument("--train-models", default="demo,wide", help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument(
        "--train-backends", help=f"train rows, float32: comma list (default {','.join(TRAIN_BACKENDS)})"
    )
    parser.add_argument("--reps", type=_positive_int, help="rounds per variant and op, >= 1 (default 9, quick 5)")
    parser.add_argument("--min-time", type=_seconds, help="seconds per sample; calls are looped to reach it")
    parser.add_argument(
        "--threads",
        type=_non_negative_int,
        help="torch and BLAS threads (BLAS through threadpoolctl, required); default 1 on CPU "
        "(see benchmarks/README.md), 0 = leave the libraries' own defaults; GPU runs leave them unless given",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG: ratio vs shape per backend")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument(
        "--load",
        metavar="PATH",
        action="append",
        help="re-render a saved --json run (table, --plot), running nothing; repeat it to summarize several runs",
    )
    return parser


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _choices(what: str, given: list[str], known: tuple[str, ...] | list[str]) -> list[str]:
    unknown = [g for g in given if g not in known]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(map(repr, unknown))} (choose from {', '.join(known)})")
    return given


def run(config: Config, quick: bool = False, train: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every Linear case of ``config`` and, given ``train`` (:func:`run_train`'s arguments), the train rows."""
    for backend in {*config.backends, *(train or {}).get("backends", [])}:  # import first, then describe
        with contextlib.suppress(ImportError, PortableNNError):
            if backend != "dask":
                resolve_namespace(backend)
    with contextlib.suppress(ImportError):
        importlib.import_module("torch")
    info = machine()
    cases = []
    total = len(config.dtypes) * len(config.shapes)
    for i, (dtype_label, shape) in enumerate(((d, s) for d in config.dtypes for s in config.shapes), 1):
        start = time.perf_counter()
        case = run_case(config, dtype_label, shape)
        took = time.perf_counter() - start
        print(f"[{i}/{total}] {config.device} {dtype_label} {shape.label}: {took:.1f} s", file=sys.stderr, flush=True)
        if case is not None:
            cases.append(case)
    train_result = None
    if train is not None:
        start = time.perf_counter()
        train_result = run_train(**train)
        print(f"[train] {config.device} float32: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    calls = call_targets()  # deterministic: milliseconds, every run
    info["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    settings = {"quick": quick, "reps": config.reps, "min_time": config.min_time, "device": config.device, "lr": LR}
    return {
        "schema": "portable_nn.bench/2",
        "machine": info,
        "versions": versions(),
        "settings": settings,
        "cases": cases,
        "targets": evaluate_targets(cases),
        "skipped": config.skipped,
        "train": train_result,
        "calls": calls,
    }


def _load(paths: list[str]) -> list[dict[str, Any]]:
    results = []
    for path in paths:
        try:
            results.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--load {path}: {exc}") from None
    return results


def _configure(args: argparse.Namespace) -> tuple[Config, dict[str, Any] | None, int]:
    """Validate every option before anything runs: (Linear config, train arguments or None, threads)."""
    gpu = args.device.startswith("cuda")
    parts = _choices("part", _csv(args.parts) or [], PARTS)
    try:
        shape_texts = _csv(args.shapes) or (GPU_SHAPES if gpu else QUICK_SHAPES if args.quick else CPU_SHAPES)
        shapes = [Shape.parse(s) for s in shape_texts] if "linear" in parts else []
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    defaults = [b for b in (GPU_BACKENDS if gpu else CPU_BACKENDS) if b in installed_backends()]
    backends = _choices("backend", _csv(args.backends) or defaults, KNOWN_BACKENDS)
    dtypes = _choices("dtype", _csv(args.dtypes) or (["float32", "bfloat16"] if gpu else ["float32"]), KNOWN_DTYPES)
    models = _choices("train model", _csv(args.train_models) or [], list(MODELS))
    train_default = [b for b in (("torch", "cupy", "jax") if gpu else TRAIN_BACKENDS)]
    train_backends = _choices("train backend", _csv(args.train_backends) or train_default, KNOWN_BACKENDS)
    threads = args.threads if args.threads is not None else (0 if gpu else 1)
    if threads and not threadpoolctl_available():
        raise UsageError(
            f"--threads {threads} (the default on CPU) needs threadpoolctl to limit the BLAS threads, and it is "
            "not installed: pip install -e '.[bench]', or pass --threads 0 to keep the libraries' own thread counts"
        )
    reps = args.reps or (5 if args.quick else 9)
    min_time = args.min_time if args.min_time is not None else (0.02 if args.quick else 0.05)
    config = Config(backends, args.device, dtypes, shapes, reps, min_time, memory=not args.no_memory)
    train = None
    if "train" in parts and models:
        train = {
            "specs": [MODELS[m] for m in models],
            "backends": train_backends,
            "device": args.device,
            "reps": reps,
            "min_time": min_time,
            "memory": not args.no_memory,
        }
    return config, train, threads


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m benchmarks.bench``); 0 ran, 1 nothing could run, 2 usage error."""
    try:
        args = _parser().parse_args(argv)
        if args.load:
            results = _load(args.load)
        else:
            config, train, threads = _configure(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.load:
        if len(results) == 1:
            print(format_markdown(results[0]) if args.markdown else format_text(results[0]))
        else:
            print(format_summary(results))
        if args.plot:
            plot(median_of_runs(results), args.plot)
        return 0
    if threads:
        # Interleaving backends on few cores: a library's idle worker threads spin for a while after its
        # call and steal the core the next variant's threads wait for (measured: torch at 1.70x its own
        # bound when timed right after 2-thread OpenBLAS; 0.99x with OpenBLAS at 1 thread).
        limit_threads(threads)
    if config.device.startswith("cuda"):  # JAX would otherwise take 75% of the GPU and starve torch/CuPy
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    result = run(config, quick=args.quick, train=train)
    print(format_markdown(result) if args.markdown else format_text(result))
    ran = bool(result["cases"]) or bool(result["train"] and result["train"]["models"])
    if not ran:
        print(f"nothing could run on {config.device} here: see 'skipped' above", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
    if args.plot:
        plot(result, args.plot)
    return 0 if ran else 1
