"""The command line's options: the argparse parser, and every number, list and path checked before any work.

Bad input raises :class:`UsageError`, which the entry point reports as one
``portable-nn: error: ...`` line with exit status 2. Options a later change adds (an
optimizer, a schedule, gradient clipping) go in :func:`_add_model_options` /
:func:`_add_training_options`, with their defaults in :mod:`portable_nn.cli.model`.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .. import __version__
from .._backend import BACKENDS, FLOAT_DTYPES
from . import datasets
from .model import ACTIVATIONS, DEFAULT_LR, OPTIMIZERS, SCHEDULES
from .outputs import check_output_path

__all__ = ["PROG", "SUBCOMMANDS", "UsageError", "build_parser", "check_train_args", "has_module"]

PROG = "portable-nn"
SUBCOMMANDS = ("train", "info", "bench")
#: Where the benchmarks live now (``python -m portable_nn bench`` is a usage error pointing there).
BENCH_COMMAND = "python -m benchmarks.bench"
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_PROGRESS_TIMEOUT_S = 120.0
#: The largest ``--samples``: a synthetic set of this size takes about 1 GB on the host while it is split.
MAX_SAMPLES = 10_000_000
#: ``--momentum`` when ``--optimizer sgd`` does not give it (the other optimizers take none).
DEFAULT_MOMENTUM = 0.9


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported here (without importing it)."""
    return importlib.util.find_spec(name) is not None


# --------------------------------------------------------------------------- argument types


def _int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        wanted = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:_}]"
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text[:40]!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text[:40]!r}")
        return value

    return parse


def _float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
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


def _list_of(known: Sequence[str], what: str) -> Callable[[str], list[str]]:
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


def _path(text: str) -> str:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    return text


# --------------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``portable-nn [train|info|bench] ...``; errors raise :class:`UsageError`."""
    parser = _Parser(prog=PROG, description="Train the same model on every array-API backend and compare.")
    parser.add_argument("--version", action="version", version=f"portable_nn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,info,bench}", parser_class=_Parser)
    train = sub.add_parser("train", help="train an MLP on every backend and compare (default)")
    _add_run_options(train)
    _add_model_options(train)
    _add_training_options(train)
    _add_output_options(train)
    _add_dask_options(train)
    sub.add_parser("info", help="list backends, versions, devices and dtypes")
    sub.add_parser("bench", help=f"moved: run {BENCH_COMMAND}", add_help=False)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
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
    add("--seed", type=_int_at_least(0), default=0, help="seed of data, init and shuffling (default: 0)")
    add("--dataset", choices=tuple(datasets.SYNTHETIC), default="spirals", help="synthetic dataset (default: spirals)")
    add(
        "--samples",
        type=_int_at_least(10, MAX_SAMPLES),
        default=1500,
        help=f"synthetic dataset size, at most {MAX_SAMPLES:_} (default: 1500)",
    )
    add(
        "--data",
        type=_path,
        default=None,
        metavar="PATH",
        help=".npz (arrays x, y) or .csv (features..., label) to train on instead of a synthetic set",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--activation", choices=tuple(ACTIVATIONS), default="tanh", help="hidden activation (default: tanh)")
    add("--hidden", type=_sizes, default=[64, 64], help="hidden layer widths (default: 64,64)")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--epochs", type=_int_at_least(1), default=30, help="passes over the training set (default: 30)")
    add("--batch-size", type=_int_at_least(1), default=60, help="samples per step (default: 60)")
    add("--optimizer", choices=tuple(OPTIMIZERS), default="sgd", help="default: sgd (momentum 0.9)")
    defaults = ", ".join(f"{lr:g} for {name}" for name, lr in DEFAULT_LR.items())
    add(
        "--lr",
        type=_float_in(0, math.inf, low_open=True, high_open=True),
        default=None,
        help=f"learning rate (default: {defaults})",
    )
    add(
        "--momentum",
        type=_float_in(0, 1, high_open=True),
        default=None,
        help=f"SGD momentum (default: {DEFAULT_MOMENTUM:g}); only with --optimizer sgd",
    )
    add("--schedule", choices=SCHEDULES, default="none", help="learning-rate schedule over the run (default: none)")
    add(
        "--clip-grad-norm",
        type=_float_in(0, math.inf, low_open=True, high_open=True),
        default=None,
        metavar="MAX_NORM",
        help="clip the gradients' total 2-norm to MAX_NORM before each step (default: no clipping)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--plot", type=_path, default=None, metavar="PATH", help="write a PNG of the loss curves (needs matplotlib)")
    add("--json", type=_path, default=None, metavar="PATH", help="write the figures as JSON")
    add(
        "--save", type=_path, default=None, metavar="PATH", help="save the first run's trained model (portable_nn.save)"
    )
    add(
        "--export-onnx",
        type=_path,
        default=None,
        metavar="PATH",
        help="export the first run's trained model to ONNX (portable_nn.export_onnx, float32, any batch size; "
        "needs pip install 'portable-nn[onnx]')",
    )
    add(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bars (tqdm): auto = live on a terminal, one line per run otherwise",
    )
    add("--traceback", action="store_true", help="print full tracebacks of failed runs")
    add(
        "--compilation-cache",
        type=_path,
        default=None,
        metavar="DIR",
        help="JAX runs: keep compiled XLA programs in DIR (created if missing) and load them in later runs; "
        "other backends compile nothing",
    )


def _add_dask_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
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
    add(
        "--connect-timeout",
        type=_float_in(0, 3600, low_open=True),
        default=DEFAULT_CONNECT_TIMEOUT_S,
        metavar="SECONDS",
        help="Dask runs only: give up connecting to --address after this long "
        f"(default: {DEFAULT_CONNECT_TIMEOUT_S:g})",
    )
    add(
        "--progress-timeout",
        type=_float_in(0, 86400, low_open=True),
        default=DEFAULT_PROGRESS_TIMEOUT_S,
        metavar="SECONDS",
        help="Dask runs on a cluster only: fail with a ClusterError (naming the last checkpoint) when no step "
        "finishes for this long, e.g. every worker is gone; bounds every wait of a step, checkpoint and evaluation "
        f"(default: {DEFAULT_PROGRESS_TIMEOUT_S:g})",
    )


# --------------------------------------------------------------------------- checks before any work


def check_train_args(args: argparse.Namespace) -> None:
    """Check what argparse cannot and fill derived defaults; raises :class:`UsageError`. Starts nothing."""
    if args.plot is not None and not has_module("matplotlib"):
        raise UsageError("--plot needs matplotlib: pip install 'portable-nn[plot]'")
    if args.export_onnx is not None and not (has_module("ndonnx") and has_module("onnx")):
        raise UsageError("--export-onnx needs ndonnx and onnx: pip install 'portable-nn[onnx]'")
    for option in ("plot", "json", "save", "export_onnx"):
        value = getattr(args, option)
        if value is not None:
            try:
                flag = f"--{option.replace('_', '-')}"
                setattr(args, option, check_output_path(flag, value, png=option == "plot"))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    if args.compilation_cache is not None:
        args.compilation_cache = _check_cache_dir(args.compilation_cache)
    if args.save is not None:
        from .outputs import saver

        if saver() is None:
            raise UsageError("--save needs portable_nn.save (model serialization), which this installation lacks")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.momentum is not None and args.optimizer != "sgd":
        raise UsageError(f"--momentum applies to --optimizer sgd only, not {args.optimizer}")
    if args.optimizer == "sgd" and args.momentum is None:
        args.momentum = DEFAULT_MOMENTUM
    if args.address is not None:
        if args.scheduler not in (None, "distributed"):
            raise UsageError(f"--address needs --scheduler distributed, got --scheduler {args.scheduler}")
        if not has_module("distributed"):
            raise UsageError("--address needs dask.distributed: pip install 'portable-nn[dask]'")
        from ..distributed import check_address

        try:
            args.address = check_address(args.address)
        except ValueError as exc:
            raise UsageError(f"--address: {exc}") from None
    args.scheduler = args.scheduler or "distributed"
    if "float64" in args.dtype:
        os.environ.setdefault("JAX_ENABLE_X64", "1")  # read when jax is first imported
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # let JAX share a GPU with the others


def _check_cache_dir(path: str) -> str:
    """``path`` if it is a writable directory, or a new one in a writable directory; else a UsageError.

    A name longer than the file system allows (a component over ``NAME_MAX``, the whole over
    ``PATH_MAX``) is refused here, not when the first compiled program is written.
    """
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES on a parent...
        raise UsageError(f"--compilation-cache: {_short(path)}: {exc.strerror or exc}") from None
    parent = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.abspath(path))
    limits = _name_limits(parent)
    if limits is not None:
        name_max, path_max = limits
        if len(os.fsencode(name)) > name_max:
            raise UsageError(
                f"--compilation-cache: {_short(path)}: the name has {len(os.fsencode(name))} bytes, "
                f"more than this file system allows ({name_max})"
            )
        if len(os.fsencode(os.path.abspath(path))) >= path_max:
            raise UsageError(f"--compilation-cache: {_short(path)}: the path is longer than {path_max - 1} bytes")
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"--compilation-cache: {path!r} is a directory this process cannot write to")
        return path
    if os.path.lexists(path):
        raise UsageError(f"--compilation-cache: {path!r} exists and is not a directory")
    if not os.path.isdir(parent):
        raise UsageError(f"--compilation-cache: the folder {_short(parent)} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--compilation-cache: cannot create {path!r}: {parent!r} is not writable")
    return path


def _short(path: str, limit: int = 80) -> str:
    """``path`` quoted, its middle cut out when it is longer than ``limit`` (an error stays one readable line)."""
    if len(path) <= limit:
        return repr(path)
    return repr(f"{path[: limit // 2]}...{path[-limit // 2 :]}") + f" ({len(path)} characters)"


def _name_limits(folder: str) -> tuple[int, int] | None:
    """``(NAME_MAX, PATH_MAX)`` of the file system holding ``folder`` (the nearest existing one), if it says."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX"), os.pathconf(folder or ".", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or the system does not say
        return None


def describe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options as recorded in the JSON figures."""
    return {
        "activation": args.activation,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "momentum": args.momentum,
        "schedule": args.schedule,
        "clip_grad_norm": args.clip_grad_norm,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
