"""The entry point: dispatch ``train`` (default), ``info`` and the moved ``bench``; map failures to exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence

import numpy as np

from ..errors import PortableNNError
from .arguments import BENCH_COMMAND, PROG, SUBCOMMANDS, UsageError, build_parser, check_train_args
from .data import Data, prepare_data
from .outputs import check_metadata_fits, export_model, save_model, write_json, write_plot
from .plan import RunSpec, one_line, plan_runs
from .report import compare_to_numpy, describe, figures, format_table, verdict
from .train import RunResult, train_run

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a run failed, 2 bad input, 130 interrupted,
    141 the reader of standard output went away, e.g. ``| head``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "train")  # train is the default command
    try:
        if args_list[0] not in SUBCOMMANDS and not args_list[0].startswith("-"):
            raise UsageError(f"unknown command {args_list[0]!r}; commands: {', '.join(SUBCOMMANDS)}")
        if args_list[0] == "bench":
            raise UsageError(f"the benchmarks moved out of the package: run {BENCH_COMMAND} from a source checkout")
        args = build_parser().parse_args(args_list)
        if args.command == "info":
            from .info import info

            return info()
        return _train(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (``portable-nn | head``): stop quietly, as a SIGPIPE'd tool does (128 + 13).
        # What is still buffered goes to /dev/null, so Python's flush at exit cannot fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141


def _connect_check(args: argparse.Namespace, specs: list[RunSpec]) -> None:
    """With --address and a Dask run planned: the scheduler must answer within --connect-timeout (else exit 2)."""
    if args.address is None or not any(spec.backend == "dask" for spec in specs):
        return
    from ..distributed.cluster import probe_scheduler
    from ..errors import ClusterError

    try:
        probe_scheduler(args.address, args.connect_timeout)
    except ClusterError as exc:
        raise UsageError(f"--address: {exc}") from None


def _train(args: argparse.Namespace) -> int:
    check_train_args(args)
    data_seed, init_seed, shuffle_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    seeds = {"init": init_seed, "shuffle": shuffle_seed}
    data = prepare_data(args, data_seed)
    if args.save is not None:
        try:
            check_metadata_fits(data)  # before training: the labels must fit the saved file's header
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    plan = plan_runs(args.backend, args.device, args.dtype)
    if not plan.runs:
        raise UsageError(f"nothing can run with these options ({'; '.join(plan.skipped_lines())})")
    on_cluster = args.scheduler == "distributed" and any(r.backend == "dask" for r in plan.runs)
    if on_cluster:
        from .arguments import has_module

        if not has_module("distributed"):
            raise UsageError("--scheduler distributed needs dask.distributed: pip install 'portable-nn[dask]'")
    _connect_check(args, plan.runs)

    live = {"auto": None, "always": True, "never": False}[args.progress]
    title = describe(args, data)
    print(title, flush=True)
    results: list[RunResult] = []
    failed: list[tuple[RunSpec, str]] = []
    with _compilation_cache(args.compilation_cache, plan.runs):
        for spec in plan.runs:
            try:
                results.append(train_run(spec, data, args, seeds, live))
            except Exception as exc:  # one backend failing must not hide the others' results
                failed.append((spec, one_line(exc)))
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
    numbers = figures(args, data, plan, results, failed)
    return _write_outputs(args, title, numbers, results, data) or (1 if failed else 0)


def _compilation_cache(path: str | None, specs: list[RunSpec]) -> contextlib.AbstractContextManager[object]:
    """--compilation-cache: the persistent cache of the first backend planned that has one (JAX), with a note."""
    if path is None:
        return contextlib.nullcontext()
    from ..backends.fast_paths import compilation_cache

    backends = list(dict.fromkeys(spec.backend for spec in specs))
    caching = [name for name in backends if compilation_cache(name) is not None]
    others = ", ".join(name for name in backends if name not in caching)
    if not caching:
        print(f"note: --compilation-cache {path}: not used, no run here compiles ({others})")
        return contextlib.nullcontext()
    rest = f"; {others} compile nothing" if others else ""
    print(f"compilation cache: {path} (used by the {', '.join(caching)} runs{rest})")
    return compilation_cache(caching[0])(path)  # type: ignore[no-any-return]


def _write_outputs(
    args: argparse.Namespace, title: str, numbers: dict[str, object], results: list[RunResult], data: Data
) -> int:
    """Write --json, --plot, --save (paths checked before training); 0, or 1 after a one-line error."""
    try:
        if args.json is not None:
            print(f"figures written to {write_json(args.json, numbers)}")
        if args.plot is not None and results:
            print(f"loss curves written to {write_plot(args.plot, results, title)}")
    except OSError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    if args.save is not None and results:
        first = results[0]
        try:
            written = save_model(first, args.save, data)
        except PortableNNError as exc:  # refused by save (e.g. a header too large): nothing written, bad input
            print(f"{PROG}: error: --save refused: {one_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"{PROG}: error: --save failed: {one_line(exc)}", file=sys.stderr)
            return 1
        print(f"model of {first.spec.label} saved to {written}")
    if args.export_onnx is not None and results:
        try:
            exported = export_model(results[0], args.export_onnx, data)
        except Exception as exc:
            print(f"{PROG}: error: --export-onnx failed: {one_line(exc)}", file=sys.stderr)
            return 1
        print(f"model of {results[0].spec.label} exported to ONNX at {exported}")
    return 0
