"""Where the command line's JAX run spends its time: wall time and XLA compilations per phase.

Runs the CLI's training runs (``portable_nn.cli.train.train_run``, what ``python -m portable_nn``
times in its "wall time" column) in this process, with markers around the phases and a
``jax.monitoring`` listener counting XLA compilations (the ``backend_compile_duration`` event JAX
records once per compiled program, eager operations included) and persistent-cache hits::

    python -m benchmarks.cli_jax_profile                        # numpy then jax, as the CLI orders them
    python -m benchmarks.cli_jax_profile --backends jax --repeat 3
    python -m benchmarks.cli_jax_profile --compilation-cache /tmp/jax-cache   # run twice: cold, then warm
    python -m benchmarks.cli_jax_profile --list-compiles         # which programs compile, per phase

Phases of one run (their times add up to the run's wall time):

- ``model build``: from ``train_run``'s start until the optimizer exists (namespace, model, optimizer);
- ``setup``: until the first training step starts (progress bar, ``train_step``, the first batch);
- the first ``train_step`` call, in three parts: ``1st: validate`` (the eager loss and gradients that
  validate a new input signature), ``1st: opt state`` (the optimizer's buffers and the step's 0-d
  arrays) and ``1st: jit+run`` (tracing, compiling and running the compiled step; eager backends
  have no such split: their whole first step is in ``1st: validate`` or ``1st: jit+run``);
- ``steady steps``: every later step, with its batch, schedule and progress update;
- ``evaluation``: the training-set loss and test accuracy;
- ``finish``: host copies of the weights and the rest of ``train_run``.

Each run repeats in the same process only as the first run of a fresh process would be measured
when ``--repeat`` is 1 (later repeats find JAX's in-process caches warm: they show the floor).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PHASES", "main", "profile_run"]

PHASES = (
    "model build",
    "setup",
    "1st: validate",
    "1st: opt state",
    "1st: jit+run",
    "steady steps",
    "evaluation",
    "finish",
)
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


@dataclass
class _Recorder:
    """Timestamps of phase boundaries, and every compilation (end time, seconds, program name)."""

    marks: dict[str, float] = field(default_factory=dict)
    compiles: list[tuple[float, float, str]] = field(default_factory=list)
    cache_hits: list[float] = field(default_factory=list)
    steps: int = 0

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def on_duration(self, event: str, duration: float, **kwargs: Any) -> None:
        if event == _COMPILE_EVENT:
            self.compiles.append((time.perf_counter(), duration, str(kwargs.get("fun_name", "?"))))

    def on_event(self, event: str, **kwargs: Any) -> None:
        if event == _CACHE_HIT_EVENT:
            self.cache_hits.append(time.perf_counter())


@contextmanager
def _listening(recorder: _Recorder) -> Iterator[None]:
    """JAX's monitoring listeners feeding ``recorder`` (nothing when jax is not installed)."""
    try:
        from jax import monitoring
    except ImportError:
        yield
        return
    monitoring.register_event_duration_secs_listener(recorder.on_duration)
    monitoring.register_event_listener(recorder.on_event)
    try:
        yield
    finally:
        monitoring.unregister_event_duration_listener(recorder.on_duration)
        monitoring.unregister_event_listener(recorder.on_event)


@contextmanager
def _instrumented(recorder: _Recorder) -> Iterator[None]:
    """Markers around the CLI's model build, train step and evaluation (module attributes patched, then restored)."""
    from portable_nn.cli import model as cli_model
    from portable_nn.cli import train as cli_train

    saved = {
        (cli_model, "make_optimizer"): cli_model.make_optimizer,
        (cli_train, "train_step"): cli_train.train_step,
        (cli_train, "evaluate"): cli_train.evaluate,
    }

    def make_optimizer(*args: Any, **kwargs: Any) -> Any:
        optimizer = saved[(cli_model, "make_optimizer")](*args, **kwargs)
        recorder.mark("model build")
        return optimizer

    def train_step(*args: Any, **kwargs: Any) -> Callable[[Any, Any], Any]:
        step = saved[(cli_train, "train_step")](*args, **kwargs)
        _split_first_step(step, recorder)

        def timed(x: Any, y: Any) -> Any:
            recorder.mark("setup")
            loss = step(x, y)
            if recorder.steps == 0:
                float(loss)  # the CLI reads every loss: the first step ends when its loss is on the host
                for name in ("1st: validate", "1st: opt state", "1st: jit+run"):
                    recorder.mark(name)  # the parts a step did not go through end here
            recorder.steps += 1
            return loss

        # run_epoch checks that a step trains the model, loss and optimizer it is given: the wrapper's are its step's
        timed.model, timed.loss_fn, timed.optimizer = step.model, step.loss_fn, step.optimizer  # type: ignore[attr-defined]
        return timed

    def evaluate(*args: Any, **kwargs: Any) -> tuple[float, float]:
        recorder.mark("steady steps")
        figures: tuple[float, float] = saved[(cli_train, "evaluate")](*args, **kwargs)
        recorder.mark("evaluation")
        return figures

    cli_model.make_optimizer = make_optimizer  # type: ignore[assignment]
    cli_train.train_step = train_step  # type: ignore[assignment]
    cli_train.evaluate = evaluate  # type: ignore[assignment]
    try:
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def _split_first_step(step: Any, recorder: _Recorder) -> None:
    """Markers inside a ``TrainStep``'s first call (private attributes: skipped when they are not there)."""
    validate, compiler = getattr(step, "_checked_core", None), getattr(step, "_compiler", None)
    if validate is None:
        return

    def validating(*args: Any) -> Any:
        out = validate(*args)
        recorder.mark("1st: validate")
        return out

    step._checked_core = validating
    if compiler is None:
        return

    def compiling(*args: Any) -> Any:
        jitted = compiler(*args)

        def run(*call_args: Any) -> Any:
            recorder.mark("1st: opt state")
            return jitted(*call_args)

        return run

    step._compiler = compiling


def profile_run(spec: Any, data: Any, args: argparse.Namespace, seeds: dict[str, int]) -> dict[str, Any]:
    """One ``train_run`` of ``spec``: its wall time, and per phase seconds, compilations and compile seconds."""
    from portable_nn.cli.train import train_run

    recorder = _Recorder()
    with _listening(recorder), _instrumented(recorder):
        start = time.perf_counter()
        result = train_run(spec, data, args, seeds, False)
        end = time.perf_counter()
    bounds = [start] + [recorder.marks.get(name, start) for name in PHASES[:-1]] + [end]
    phases = []
    for name, low, high in zip(PHASES, bounds, bounds[1:], strict=False):
        inside = [c for c in recorder.compiles if low <= c[0] < high]
        hits = sum(1 for t in recorder.cache_hits if low <= t < high)
        phases.append(
            {
                "phase": name,
                "seconds": high - low,
                "compiles": len(inside),
                "compile_seconds": sum(c[1] for c in inside),
                "cache_hits": hits,
                "programs": [c[2] for c in inside],
            }
        )
    return {
        "run": spec.label,
        "wall_s": result.wall_s,
        "steps": recorder.steps,
        "final_loss": result.final_loss,
        "accuracy": result.accuracy,
        "compiles": len(recorder.compiles),
        "compile_seconds": sum(c[1] for c in recorder.compiles),
        "cache_hits": len(recorder.cache_hits),
        "phases": phases,
    }


def _format(profile: dict[str, Any], list_compiles: bool) -> str:
    lines = [
        f"{profile['run']}: wall time {profile['wall_s']:.3f} s, {profile['steps']} steps, "
        f"{profile['compiles']} XLA compilations ({profile['compile_seconds']:.3f} s compiling), "
        f"{profile['cache_hits']} persistent-cache hits",
        f"  {'phase':<15} {'seconds':>8} {'compiles':>9} {'compiling s':>12} {'cache hits':>11}",
    ]
    for phase in profile["phases"]:
        lines.append(
            f"  {phase['phase']:<15} {phase['seconds']:8.3f} {phase['compiles']:9d} "
            f"{phase['compile_seconds']:12.3f} {phase['cache_hits']:11d}"
        )
        if list_compiles and phase["programs"]:
            counts: dict[str, int] = {}
            for name in phase["programs"]:
                counts[name] = counts.get(name, 0) + 1
            lines.append("      " + ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the CLI's runs of ``--backends`` (default numpy then jax) and print one table per run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_jax_profile", description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="numpy,jax", help="comma list, run in this order (default numpy,jax)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each backend in this process (default 1)")
    parser.add_argument("--compilation-cache", default=None, metavar="DIR", help="as the CLI's option")
    parser.add_argument("--list-compiles", action="store_true", help="name the compiled programs per phase")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the profiles as JSON")
    options, cli_args = parser.parse_known_args(argv)
    if options.repeat < 1:
        parser.error("--repeat must be >= 1")

    from portable_nn.cli.arguments import build_parser, check_train_args
    from portable_nn.cli.command import _compilation_cache
    from portable_nn.cli.data import prepare_data
    from portable_nn.cli.plan import plan_runs

    args = build_parser().parse_args(["train", "--backend", options.backends, "--device", "cpu", *cli_args])
    check_train_args(args)
    data_seed, init_seed, shuffle_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    data = prepare_data(args, data_seed)
    plan = plan_runs(args.backend, args.device, args.dtype)
    seeds = {"init": init_seed, "shuffle": shuffle_seed}
    profiles = []
    with _compilation_cache(options.compilation_cache, plan.runs):
        for spec in plan.runs:
            for _ in range(options.repeat):
                profile = profile_run(spec, data, args, seeds)
                profiles.append(profile)
                print(_format(profile, options.list_compiles), flush=True)
    if options.json is not None:
        with open(options.json, "w", encoding="utf-8") as out:
            json.dump(profiles, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
