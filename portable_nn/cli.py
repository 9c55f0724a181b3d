"""``python -m portable_nn`` / ``portable-nn``: train one model on every backend and compare, list backends.

Subcommands:

- ``train`` (the default): trains an MLP (2→64→64→3 on the seeded spiral dataset by default)
  with the same seed on every available backend × device × dtype, then prints a table of final
  loss, test accuracy, wall time and the max |Δ| of the final weights against the NumPy run.
- ``info``: the backends installed here, their versions, devices and dtypes, and why any is unavailable.
- ``bench``: hands its arguments to ``portable_nn.bench.main`` (the benchmark harness).

Bad input ends with a one-line ``portable-nn: error: ...`` and exit status 2; a run that fails
is reported in the table and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, datasets
from ._backend import (
    BACKENDS,
    FLOAT_DTYPES,
    available_devices,
    device_matrix,
    from_host,
    is_lazy,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
    to_host,
)
from .activations import ReLU, Sigmoid, Tanh
from .errors import BackendUnavailableError
from .grad_mode import no_grad
from .linear import Linear
from .losses import CrossEntropyLoss
from .optim import SGD, Adam, AdamW, Optimizer
from .progress import ProgressBar
from .sequential import Sequential
from .testing.tolerances import TOLERANCES

__all__ = ["main"]

PROG = "portable-nn"
SUBCOMMANDS = ("train", "info", "bench")
#: Order of the runs (NumPy first: it is the reference of the max |Δ| column).
RUN_ORDER = ("numpy", "torch", "jax", "array_api_strict", "cupy", "dask")
# Dask runs copy parameters and optimizer buffers to the host and back every this many steps, which
# bounds the lineage a distributed scheduler keeps (see portable_nn.distributed.checkpoint).
CHECKPOINT_EVERY = 10
#: Backends left out of the default run, with the reason shown in the output.
DEFAULT_SKIPS = {
    "dask": "lazy backend, 0.1–0.4 s per training step here (graphs built and run per step); "
    "run it with --backend dask",
}
#: array-api-strict's devices are stand-ins of each other; the others run on request (--device device2).
STRICT_DEFAULT_DEVICES = ("cpu", "device1")
ACTIVATIONS = {"tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid}
DEFAULT_LR = {"sgd": 0.04, "adam": 0.003, "adamw": 0.003}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# --------------------------------------------------------------------------- argument types


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def _float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value >= high if high_open else value > high
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or above or below:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    return parse


def _list_of(known: Sequence[str], what: str) -> Any:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}s, got {text!r}")
        if known:
            unknown = [item for item in items if item not in known]
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
        return items

    return parse


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive layer widths, got {text!r}")
    return sizes


def _build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Train the same model on every array-API backend and compare.")
    parser.add_argument("--version", action="version", version=f"portable_nn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,info,bench}", parser_class=_Parser)

    train = sub.add_parser("train", help="train an MLP on every backend and compare (default)")
    add = train.add_argument
    add(
        "--backend",
        type=_list_of(BACKENDS, "backend"),
        default=None,
        help=f"comma list of backends (default: all installed but dask); known: {', '.join(BACKENDS)}",
    )
    add(
        "--device",
        type=_list_of((), "device"),
        default=None,
        help="comma list of devices, e.g. cpu,cuda,cuda:1,device1 (default: every device of each backend)",
    )
    add(
        "--dtype",
        type=_list_of(FLOAT_DTYPES, "dtype"),
        default=["float32"],
        help=f"comma list of dtypes (default: float32); known: {', '.join(FLOAT_DTYPES)}",
    )
    add("--epochs", type=_int_at_least(1), default=30, help="passes over the training set (default: 30)")
    add("--batch-size", type=_int_at_least(1), default=60, help="samples per step (default: 60)")
    add("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd", help="default: sgd (momentum 0.9)")
    add(
        "--lr",
        type=_float_in(0, math.inf, low_open=True, high_open=True),
        default=None,
        help="learning rate (default: 0.04 for sgd, 0.003 for adam/adamw)",
    )
    add("--momentum", type=_float_in(0, 1, high_open=True), default=0.9, help="SGD momentum (default: 0.9)")
    add("--activation", choices=tuple(ACTIVATIONS), default="tanh", help="hidden activation (default: tanh)")
    add("--hidden", type=_sizes, default=[64, 64], help="hidden layer widths (default: 64,64)")
    add("--seed", type=_int_at_least(0), default=0, help="seed of data, init and shuffling (default: 0)")
    add("--dataset", choices=tuple(datasets.SYNTHETIC), default="spirals", help="synthetic dataset (default: spirals)")
    add("--samples", type=_int_at_least(10), default=1500, help="synthetic dataset size (default: 1500)")
    add(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help=".npz (arrays x, y) or .csv (features..., label) to train on instead of a synthetic set",
    )
    add("--plot", type=Path, default=None, metavar="PATH", help="write a PNG of the loss curves (needs matplotlib)")
    add("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")
    add("--save", type=Path, default=None, metavar="PATH", help="save the first run's trained model (portable_nn.save)")
    add(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bars: auto = live on a terminal, one line per run otherwise",
    )
    add(
        "--scheduler",
        choices=("threads", "processes", "distributed"),
        default=None,
        help="Dask runs only: where the graphs run (default: distributed = a dask.distributed LocalCluster "
        "bound to 127.0.0.1, or the cluster at --address; threads/processes = dask's local schedulers)",
    )
    add(
        "--address",
        default=None,
        metavar="HOST:PORT",
        help="Dask runs only: the scheduler of an existing dask.distributed cluster (implies --scheduler distributed)",
    )
    add("--traceback", action="store_true", help="print full tracebacks of failed runs")

    sub.add_parser("info", help="list backends, versions, devices and dtypes")
    bench = sub.add_parser("bench", help="run the benchmarks (portable_nn.bench)", add_help=False)
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return parser


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a run failed, 2 bad input)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "train")  # train is the default command
    try:
        if args_list[0] not in SUBCOMMANDS and not args_list[0].startswith("-"):
            raise UsageError(f"unknown command {args_list[0]!r}; commands: {', '.join(SUBCOMMANDS)}")
        if args_list[0] == "bench":
            return _bench(args_list[1:])
        args = _build_parser().parse_args(args_list)
        if args.command == "info":
            return _info()
        return _train(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# --------------------------------------------------------------------------- bench


def _bench(argv: list[str]) -> int:
    """Hand ``argv`` to ``portable_nn.bench.main`` (imported only now: it may pull heavy dependencies)."""
    try:
        bench = importlib.import_module("portable_nn.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "portable_nn.bench":
            raise UsageError(f"the benchmarks need the module {exc.name!r}, which is not installed") from None
        raise UsageError("the benchmark harness (portable_nn.bench) is not part of this installation") from None
    return int(bench.main(argv) or 0)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# --------------------------------------------------------------------------- info


def _version(name: str) -> str:
    module = sys.modules.get(name)
    return str(getattr(module, "__version__", "?")) if module is not None else "?"


def _info() -> int:
    import array_api_compat

    print(
        f"portable_nn {__version__} (array-api-compat {array_api_compat.__version__}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    print()
    print(f"{'backend':<18}{'version':<14}{'devices and dtypes / why unavailable'}")
    for name in RUN_ORDER:
        try:
            xp = resolve_namespace(name)
        except BackendUnavailableError as exc:
            print(f"{name:<18}{'-':<14}unavailable: {str(exc).split('; installed backends')[0]}")
            continue
        except Exception as exc:  # installed, but its import fails
            print(f"{name:<18}{'-':<14}unavailable: {_one_line(exc)}")
            continue
        parts = []
        try:
            for label, native in available_devices(xp).items():
                parts.append(f"{label} ({', '.join(supported_dtypes(xp, native))})")
            parts += [f"{label}: {reason.removeprefix(name + ': ')}" for label, reason in device_matrix(name) if reason]
        except Exception as exc:
            parts.append(f"device query failed: {_one_line(exc)}")
        if name == "jax" and "float64" not in supported_dtypes(xp, resolve_device(xp, None)):
            parts.append("float64 needs JAX_ENABLE_X64=1 (train --dtype float64 sets it)")
        print(f"{name:<18}{_version(name):<14}{'; '.join(parts)}")
    return 0


# --------------------------------------------------------------------------- train: planning


@dataclass(frozen=True)
class RunSpec:
    backend: str
    device: str
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.device}/{self.dtype}"


@dataclass
class RunResult:
    spec: RunSpec
    final_loss: float
    accuracy: float
    wall_s: float
    curve: list[float]
    weights: dict[str, np.ndarray]
    model: Any = None
    max_abs_diff: float | None = None
    within_tolerance: bool | None = None


@dataclass
class Plan:
    runs: list[RunSpec] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # backend, device, dtype, reason

    def skipped_lines(self) -> list[str]:
        """``"torch/cuda: no CUDA device ..."`` for each combination that cannot run ("-" parts left out)."""
        return ["/".join(p for p in (b, d, t) if p != "-") + f": {why}" for b, d, t, why in self.skipped]


def _device_matches(label: str, wanted: str) -> bool:
    return (
        label == wanted
        or (wanted in ("cpu", "cuda") and label.startswith(wanted + ":"))
        or (wanted == "cuda:0" and label == "cuda")
    )


def plan_runs(backends: list[str] | None, devices: list[str] | None, dtypes: list[str]) -> Plan:
    """Every backend × device × dtype to train on, and what cannot run here with the reason."""
    plan = Plan()
    explicit = backends is not None
    names = [n for n in RUN_ORDER if n in backends] if explicit else list(RUN_ORDER)
    for name in names:
        if not explicit and name in DEFAULT_SKIPS:
            plan.skipped.append((name, "-", "-", DEFAULT_SKIPS[name]))
            continue
        try:
            entries = device_matrix(name)
        except Exception as exc:  # the package is there but fails to import or to list devices
            plan.skipped.append((name, "-", "-", _one_line(exc)))
            continue
        if all(reason is not None for _, reason in entries):  # unusable here (not installed, no GPU)
            plan.skipped += [(name, label, "-", reason.removeprefix(f"{name}: ")) for label, reason in entries]
            continue
        if devices is None:
            chosen = [
                (label, reason)
                for label, reason in entries
                if name != "array_api_strict" or label in STRICT_DEFAULT_DEVICES
            ]
        else:
            chosen = [(label, reason) for label, reason in entries if any(_device_matches(label, w) for w in devices)]
            for wanted in devices:
                if not any(_device_matches(label, wanted) for label, _ in entries):
                    known = ", ".join(label for label, reason in entries if reason is None) or "none"
                    plan.skipped.append((name, wanted, "-", f"{name} has no device {wanted!r} here (has: {known})"))
        for label, reason in chosen:
            if reason is not None:
                plan.skipped.append((name, label, "-", reason.removeprefix(f"{name}: ")))
                continue
            xp = resolve_namespace(name)
            usable = supported_dtypes(xp, resolve_device(xp, label))
            for dtype in dtypes:
                if dtype in usable:
                    plan.runs.append(RunSpec(name, label, dtype))
                else:
                    hint = " (needs JAX_ENABLE_X64=1 before jax is imported)" if name == "jax" else ""
                    plan.skipped.append((name, label, dtype, f"{name} on {label} has no {dtype}{hint}"))
    return plan


# --------------------------------------------------------------------------- train: data and model


@dataclass
class Data:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def prepare_data(args: argparse.Namespace, data_seed: int) -> Data:
    """The host-side dataset: loaded or generated, split 80/20 (seeded), standardized on the training part."""
    if args.data is not None:
        try:
            x, y = datasets.load_dataset(args.data)
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        name = str(args.data)
    else:
        x, y = datasets.SYNTHETIC[args.dataset](args.samples, seed=data_seed)
        name = args.dataset
    try:
        (x_train, y_train), (x_test, y_test) = datasets.train_test_split(x, y, 0.2, seed=data_seed)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    x_train, x_test = datasets.standardize(x_train, x_test)
    return Data(name, x_train, y_train, x_test, y_test)


def build_mlp(sizes: Sequence[int], activation: str, *, xp: Any, device: Any, dtype: Any, seed: int) -> Sequential:
    """``Linear`` layers of the given widths with ``activation`` between them, initialized from one seeded stream."""
    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=rng))
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


def make_optimizer(name: str, model: Sequential, lr: float, momentum: float) -> Optimizer:
    if name == "sgd":
        return SGD(model, lr=lr, momentum=momentum)
    if name == "adam":
        return Adam(model, lr=lr)
    return AdamW(model, lr=lr)


# --------------------------------------------------------------------------- train: one run


def _scheduler(xp: Any, args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """Dask runs: the chosen scheduler (prints the dashboard link); other backends: nothing."""
    if not is_lazy(xp):
        return contextlib.nullcontext()
    from .distributed import dask_scheduler

    return dask_scheduler(args.scheduler, address=args.address, out=sys.stderr)


def _checkpoint(model: Sequential, optimizer: Optimizer) -> None:
    from .distributed import checkpoint

    checkpoint(model, optimizer)


@contextlib.contextmanager
def _small_model_threads(backend: str) -> Iterator[None]:
    """Run torch on one intra-op thread: layers this small only lose time to thread hand-offs.

    (Measured here: 1.3 ms per step on one thread, 25 ms on two while other processes load the cores.)
    """
    if backend != "torch":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_run(
    spec: RunSpec, data: Data, args: argparse.Namespace, seeds: dict[str, int], live: bool | None
) -> RunResult:
    """Train one model on ``spec``'s backend/device/dtype; the same seeds give the same run everywhere."""
    xp = resolve_namespace(spec.backend)
    device = resolve_device(xp, spec.device)
    dtype = resolve_dtype(xp, spec.dtype)
    sizes = [data.features, *args.hidden, data.classes]
    model = build_mlp(sizes, args.activation, xp=xp, device=device, dtype=dtype, seed=seeds["init"])
    optimizer = make_optimizer(args.optimizer, model, args.lr, args.momentum)
    loss_fn = CrossEntropyLoss()
    rng = np.random.default_rng(seeds["shuffle"])  # host-side shuffling: the same batches on every backend
    n = len(data.x_train)
    steps = args.epochs * math.ceil(n / args.batch_size)
    curve: list[float] = []
    start = time.perf_counter()
    bar = ProgressBar(steps, f"{spec.label:<32}", enabled=live)
    lazy, done = is_lazy(xp), 0
    with _scheduler(xp, args), _small_model_threads(spec.backend), bar:
        for _ in range(args.epochs):
            total = 0.0
            for rows in datasets.batch_indices(n, args.batch_size, rng):
                x = from_host(data.x_train[rows], xp, device, dtype)
                y = xp.asarray(data.y_train[rows], device=device)
                loss, grad = loss_fn(model(x), y)
                optimizer.zero_grad()
                model.backward(grad)
                total += float(loss) * len(rows)  # before step(): see distributed.train_epoch
                optimizer.step()  # stores lazy (Dask) parameters and buffers: see _backend.materialize
                done += 1
                if lazy and done % CHECKPOINT_EVERY == 0:
                    _checkpoint(model, optimizer)
                bar.update(1)
            curve.append(total / n)
            bar.update(0, note=f"loss {curve[-1]:.4f}")
        final_loss, accuracy = _evaluate(model, data, xp, device, dtype, loss_fn)
        bar.update(0, note=f"loss {final_loss:.4f}  accuracy {accuracy:.2%}")
        host = {name: to_host(p) for name, p in model.named_parameters().items()}
    if lazy:  # rebind from the host copies: the parameters must not refer to a cluster that is gone
        model.set_parameters({name: from_host(h, xp, device, dtype) for name, h in host.items()})
    wall = time.perf_counter() - start
    weights = {name: h.astype(np.float64) for name, h in host.items()}
    return RunResult(spec, final_loss, accuracy, wall, curve, weights, model=model)


def _evaluate(model: Sequential, data: Data, xp: Any, device: Any, dtype: Any, loss_fn: Any) -> tuple[float, float]:
    """(loss on the whole training set, accuracy on the test set), without keeping anything for backward."""
    with no_grad():
        train_logits = model(from_host(data.x_train, xp, device, dtype))
        loss, _ = loss_fn(train_logits, xp.asarray(data.y_train, device=device))
        test_logits = to_host(model(from_host(data.x_test, xp, device, dtype)))
    accuracy = float(np.mean(np.argmax(test_logits, axis=1) == data.y_test))
    return float(loss), accuracy


# --------------------------------------------------------------------------- train: comparison and output


def compare_to_numpy(results: list[RunResult]) -> None:
    """Fill each result's max |Δ| of final weights against the NumPy run of the same dtype."""
    references = {r.spec.dtype: r for r in results if r.spec.backend == "numpy"}
    for result in results:
        reference = references.get(result.spec.dtype)
        if reference is None:
            continue
        rtol, atol = TOLERANCES[result.spec.dtype]
        diffs, ok = [], True
        for name, expected in reference.weights.items():
            delta = np.abs(result.weights[name] - expected)
            diffs.append(float(delta.max(initial=0.0)))
            ok &= bool(np.all(delta <= atol + rtol * np.abs(expected)))
        result.max_abs_diff, result.within_tolerance = max(diffs, default=0.0), ok


def _describe(args: argparse.Namespace, data: Data) -> str:
    sizes = "→".join(str(s) for s in (data.features, *args.hidden, data.classes))
    if args.optimizer == "sgd":
        optimizer = f"SGD(lr={args.lr:g}, momentum={args.momentum:g})"
    else:
        optimizer = f"{'Adam' if args.optimizer == 'adam' else 'AdamW'}(lr={args.lr:g})"
    batches = math.ceil(len(data.x_train) / args.batch_size)
    return (
        f"MLP {sizes} ({args.activation}) on {data.name}: {len(data.x_train)} train / {len(data.x_test)} test "
        f"samples; {optimizer}, {args.epochs} epochs × {batches} batches of {args.batch_size}, seed {args.seed}"
    )


def format_table(results: list[RunResult]) -> str:
    header = (
        f"{'backend':<18}{'device':<9}{'dtype':<10}{'final loss':>11}{'accuracy':>10}{'wall time':>11}"
        "   max |Δ| vs numpy"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r.spec.backend == "numpy":
            delta = "0 (reference)"
        elif r.max_abs_diff is None:
            delta = "- (no numpy run of this dtype)"
        else:
            delta = f"{r.max_abs_diff:.1e}" + ("" if r.within_tolerance else "  (beyond float tolerance)")
        lines.append(
            f"{r.spec.backend:<18}{r.spec.device:<9}{r.spec.dtype:<10}{r.final_loss:>11.4f}"
            f"{r.accuracy:>10.2%}{r.wall_s:>9.2f} s   {delta}"
        )
    return "\n".join(lines)


def verdict(results: list[RunResult]) -> list[str]:
    """One-line conclusions: do all runs reach the same accuracy, and are their weights within tolerance?"""
    if not results:
        return []
    lines = []
    accuracies = {round(r.accuracy, 6) for r in results}
    if len(accuracies) == 1:
        runs = f"all {len(results)} runs" if len(results) > 1 else "the only run"
        lines.append(f"accuracy: {results[0].accuracy:.2%} on {runs}")
    else:
        low = min(results, key=lambda r: r.accuracy)
        high = max(results, key=lambda r: r.accuracy)
        lines.append(
            f"accuracy differs between runs: {low.accuracy:.2%} ({low.spec.label}) to {high.accuracy:.2%} "
            f"({high.spec.label})"
        )
    compared = [r for r in results if r.max_abs_diff is not None and r.spec.backend != "numpy"]
    if compared:
        worst = max(compared, key=lambda r: r.max_abs_diff or 0.0)
        beyond = [r.spec.label for r in compared if not r.within_tolerance]
        tolerances = ", ".join(
            f"{d}: rtol {TOLERANCES[d][0]:g}, atol {TOLERANCES[d][1]:g}"
            for d in sorted({r.spec.dtype for r in compared})
        )
        if beyond:
            lines.append(
                f"weights: {', '.join(beyond)} beyond tolerance of the numpy run ({tolerances}); "
                f"max |Δ| {worst.max_abs_diff:.1e}"
            )
        else:
            lines.append(
                f"weights: every run within tolerance of the numpy run ({tolerances}); "
                f"max |Δ| {worst.max_abs_diff:.1e} ({worst.spec.label})"
            )
    return lines


def write_json(
    path: Path,
    args: argparse.Namespace,
    data: Data,
    plan: Plan,
    results: list[RunResult],
    failed: list[tuple[RunSpec, str]],
) -> None:
    figures = {
        "portable_nn": __version__,
        "config": {
            "model": [data.features, *args.hidden, data.classes],
            "activation": args.activation,
            "optimizer": args.optimizer,
            "lr": args.lr,
            "momentum": args.momentum,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "dataset": data.name,
            "train_samples": len(data.x_train),
            "test_samples": len(data.x_test),
        },
        "runs": [
            {
                "backend": r.spec.backend,
                "device": r.spec.device,
                "dtype": r.spec.dtype,
                "final_loss": r.final_loss,
                "accuracy": r.accuracy,
                "wall_s": r.wall_s,
                "max_abs_diff_vs_numpy": r.max_abs_diff,
                "within_tolerance": r.within_tolerance,
                "loss_curve": r.curve,
            }
            for r in results
        ],
        "skipped": [{"backend": b, "device": d, "dtype": t, "reason": why} for b, d, t, why in plan.skipped],
        "failed": [{"backend": s.backend, "device": s.device, "dtype": s.dtype, "error": e} for s, e in failed],
        "verdict": verdict(results),
    }
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def write_plot(path: Path, results: list[RunResult], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = ["-", "--", ":", "-."]
    for index, r in enumerate(results):
        epochs = range(1, len(r.curve) + 1)
        width = max(0.8, 3.0 - 0.5 * index)  # later runs thinner, so coinciding curves all stay visible
        ax.plot(epochs, r.curve, styles[index % len(styles)], linewidth=width, label=r.spec.label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss (cross-entropy)")
    ax.set_title(title, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- train: command


def _check_output_path(option: str, path: Path | None) -> None:
    if path is not None and not path.resolve().parent.is_dir():
        raise UsageError(f"{option} {str(path)!r}: directory {str(path.resolve().parent)!r} does not exist")


def _train(args: argparse.Namespace) -> int:
    for option in ("plot", "json", "save"):
        _check_output_path(f"--{option}", getattr(args, option))
    if args.plot is not None and not _has_module("matplotlib"):
        raise UsageError("--plot needs matplotlib: pip install 'portable-nn[plot]'")
    save = None
    if args.save is not None:
        save = getattr(sys.modules[__package__], "save", None)
        if save is None:
            raise UsageError("--save needs portable_nn.save (model serialization), which this installation lacks")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.address is not None and args.scheduler not in (None, "distributed"):
        raise UsageError(f"--address needs --scheduler distributed, got --scheduler {args.scheduler}")
    args.scheduler = args.scheduler or "distributed"
    if "float64" in args.dtype:
        os.environ.setdefault("JAX_ENABLE_X64", "1")  # read when jax is first imported
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # let JAX share a GPU with the others

    data_seed, init_seed, shuffle_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    seeds = {"init": init_seed, "shuffle": shuffle_seed}
    data = prepare_data(args, data_seed)
    plan = plan_runs(args.backend, args.device, args.dtype)
    if not plan.runs:
        reasons = "; ".join(plan.skipped_lines())
        raise UsageError(f"nothing can run with these options ({reasons})")

    on_cluster = args.scheduler == "distributed" and any(r.backend == "dask" for r in plan.runs)
    if on_cluster and not _has_module("distributed"):
        raise UsageError("--scheduler distributed needs dask.distributed: pip install 'portable-nn[dask]'")

    live = {"auto": None, "always": True, "never": False}[args.progress]
    title = _describe(args, data)
    print(title, flush=True)
    results: list[RunResult] = []
    failed: list[tuple[RunSpec, str]] = []
    for spec in plan.runs:
        try:
            results.append(train_run(spec, data, args, seeds, live))
        except Exception as exc:  # one backend failing must not hide the others' results
            failed.append((spec, _one_line(exc)))
            if args.traceback:
                traceback.print_exc()
    compare_to_numpy(results)

    print()
    print(format_table(results))
    for line in plan.skipped_lines():
        print(f"skipped {line}")
    for spec, error in failed:
        print(f"FAILED  {spec.label}: {error}")
    for line in verdict(results):
        print(line)

    try:
        if args.json is not None:
            write_json(args.json, args, data, plan, results, failed)
            print(f"figures written to {args.json}")
        if args.plot is not None and results:
            write_plot(args.plot, results, title)
            print(f"loss curves written to {args.plot}")
    except OSError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    if save is not None and results:
        first = results[0]
        try:
            save(first.model, args.save)
        except Exception as exc:
            print(f"{PROG}: error: --save failed: {_one_line(exc)}", file=sys.stderr)
            return 1
        print(f"model of {first.spec.label} saved to {args.save}")
    return 1 if failed else 0
