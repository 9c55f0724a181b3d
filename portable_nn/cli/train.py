"""One training run of the command line: build the model on one backend/device/dtype, train, evaluate.

The epochs go through :func:`portable_nn.training.run_epoch` (the loop
:func:`portable_nn.distributed.train_epoch` uses too); batches are drawn on the host from one
seeded stream, so every backend sees the same batches in the same order. Progress is a tqdm
bar, live on a terminal; without one each run writes a single line when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from .._backend import from_host, is_lazy, resolve_device, resolve_dtype, resolve_namespace, to_host
from ..errors import ClusterError
from ..losses import CrossEntropyLoss
from ..nn.sequential import Sequential
from ..optim import Optimizer
from ..training import run_epoch
from ..training.step import train_step
from . import datasets
from . import model as model_module
from .data import Data, device_labels, index_dtype
from .evaluation import Evaluator, evaluate
from .plan import RunSpec

__all__ = ["CHECKPOINT_EVERY", "Diverged", "RunResult", "train_run"]

# Dask runs copy parameters and optimizer buffers to the host and back every this many steps, which
# bounds the lineage a distributed scheduler keeps (see portable_nn.distributed.checkpoint).
CHECKPOINT_EVERY = 10
#: Width of the run label in progress lines, so consecutive bars line up.
LABEL_WIDTH = 32
_BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class Diverged(ArithmeticError):
    """The training loss became NaN or infinite (e.g. a learning rate too large for the dtype)."""


@dataclass
class RunResult:
    """What one run ends with: figures, the loss curve (mean loss per epoch), host float64 weights, the model."""

    spec: RunSpec
    final_loss: float
    accuracy: float
    wall_s: float
    curve: list[float]
    weights: dict[str, np.ndarray]
    model: Any = None
    max_abs_diff: float | None = None
    within_tolerance: bool | None = None


class Progress:
    """A tqdm bar of ``total`` steps: live when ``live`` (None: on a terminal), else one line when it closes."""

    def __init__(self, total: int, label: str, live: bool | None, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = sys.stderr if stream is None else stream
        self.live = _isatty(self.stream) if live is None else live
        self.label, self.total, self.count, self.note = f"{label:<{LABEL_WIDTH}}", total, 0, ""
        self.start = time.perf_counter()
        self.bar = tqdm(
            total=total,
            desc=self.label,
            file=self.stream,
            disable=not self.live,
            unit="step",
            bar_format=_BAR_FORMAT,
            dynamic_ncols=True,
            leave=True,
        )

    def update(self, note: str | None = None) -> None:
        """One step done; ``note`` replaces the text after the bar."""
        self.count += 1
        self.bar.update(1)
        if note is not None:
            self.set_note(note)

    def set_note(self, note: str) -> None:
        self.note = note
        self.bar.set_postfix_str(note, refresh=False)

    def close(self) -> None:
        if self.live:
            self.bar.refresh()
            self.bar.close()
            return
        self.bar.close()
        line = self._tqdm.format_meter(
            self.count,
            self.total,
            time.perf_counter() - self.start,
            prefix=self.label,
            postfix=self.note or None,
            bar_format=_BAR_FORMAT,
            ascii=True,
            unit="step",
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or file-like without isatty
        return False


def _scheduler(xp: Any, args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """Dask runs: the chosen scheduler (prints the dashboard link); other backends: nothing."""
    if not is_lazy(xp):
        return contextlib.nullcontext()
    from ..distributed import dask_scheduler

    return dask_scheduler(args.scheduler, address=args.address, out=sys.stderr, connect_timeout=args.connect_timeout)


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
    """Train one model on ``spec``'s backend/device/dtype; the same seeds give the same run everywhere.

    Raises :class:`Diverged` when an epoch's loss is not finite, and whatever the backend
    raises (the caller reports it as a failed run).
    """
    xp = resolve_namespace(spec.backend)
    device = resolve_device(xp, spec.device)
    dtype = resolve_dtype(xp, spec.dtype)
    sizes = [data.features, *args.hidden, data.classes]
    model = model_module.build_mlp(sizes, args.activation, xp=xp, device=device, dtype=dtype, seed=seeds["init"])
    optimizer = model_module.make_optimizer(args.optimizer, model, args)
    loss_fn = CrossEntropyLoss()
    evaluator = Evaluator(model, loss_fn)  # one compiled program on JAX
    labels = index_dtype(xp, device)  # cast on the host: no device-side cast per batch
    rng = np.random.default_rng(seeds["shuffle"])  # host-side shuffling: the same batches on every backend
    n = len(data.x_train)
    steps = args.epochs * math.ceil(n / args.batch_size)
    lazy = is_lazy(xp)
    timeout = args.progress_timeout if lazy else None
    curve: list[float] = []
    start = time.perf_counter()
    with (
        _scheduler(xp, args) as client,
        _small_model_threads(spec.backend),
        np.errstate(over="ignore", invalid="ignore"),  # NumPy runs: a divergence is reported as such, below
        Progress(steps, spec.label, live) as bar,
    ):
        read = _reader(timeout) if lazy else float
        schedule = model_module.make_schedule(args.schedule, optimizer, steps, args.lr)
        # jax.jit on JAX; Dask: one persist; clipping inside the step (compiled too)
        step: Callable[[Any, Any], Any] = train_step(
            model, loss_fn, optimizer, compile="auto", max_grad_norm=args.clip_grad_norm
        )

        done = 0
        last: dict[str, Any] = {"host": None, "step": 0}

        def after(index: int, loss: float) -> None:
            nonlocal done
            done += 1
            if schedule is not None and done < steps:  # after the last step nothing uses the rate
                schedule.step()
            dog.beat()
            if lazy and done % CHECKPOINT_EVERY == 0:
                last["host"], last["step"] = _checkpoint(model, optimizer, timeout), done
                dog.beat()
            bar.update()

        try:
            # On a cluster, any blocking compute (loss read, CrossEntropyLoss's check of the labels, checkpoint,
            # evaluation) fails within --progress-timeout of the last finished step: see cluster.progress_guard.
            with _guard(client if lazy else None, timeout) as dog:
                for epoch in range(args.epochs):
                    rows_list = list(datasets.batch_indices(n, args.batch_size, rng))
                    batches = (
                        (
                            from_host(data.x_train[rows], xp, device, dtype),
                            device_labels(data.y_train[rows], xp, device, labels),
                        )
                        for rows in rows_list
                    )
                    losses = run_epoch(model, loss_fn, optimizer, batches, on_step=after, step=step, read=read)
                    curve.append(sum(value * len(rows) for value, rows in zip(losses, rows_list, strict=True)) / n)
                    bar.set_note(f"loss {curve[-1]:.4g}")
                    if not math.isfinite(curve[-1]):
                        raise Diverged(
                            f"training diverged: mean loss {curve[-1]} in epoch {epoch + 1} (lr {args.lr:g} too "
                            f"large for {spec.dtype}?)"
                        )
                final_loss, accuracy = evaluate(evaluator, data, xp, device, dtype)
                dog.beat()
                host = {name: to_host(p) for name, p in model.named_parameters().items()}
        except ClusterError as exc:
            where = (
                f"after step {last['step']} of {steps}, host copies on this error's .checkpoint"
                if last["host"] is not None
                else f"none yet (the first comes after step {CHECKPOINT_EVERY})"
            )
            raise ClusterError(
                f"{exc}; last checkpoint of the parameters: {where}",
                checkpoint=last["host"],
                step=last["step"] if last["host"] is not None else None,
            ) from None
        bar.set_note(f"loss {final_loss:.4g}  accuracy {accuracy:.2%}")
    if not math.isfinite(final_loss) or not all(np.isfinite(h).all() for h in host.values()):
        raise Diverged(f"training diverged: final loss {final_loss}, weights finite: no (lr {args.lr:g} too large?)")
    if lazy:  # rebind from the host copies: the parameters must not refer to a cluster that is gone
        model.set_parameters({name: from_host(h, xp, device, dtype) for name, h in host.items()})
    wall = time.perf_counter() - start
    weights = {name: h.astype(np.float64) for name, h in host.items()}
    return RunResult(spec, final_loss, accuracy, wall, curve, weights, model=model)


def _reader(timeout: float | None) -> Any:
    from ..distributed.cluster import compute_within

    return lambda loss: float(compute_within(loss, timeout=timeout)[0])


def _checkpoint(model: Sequential, optimizer: Optimizer, timeout: float | None) -> dict[str, np.ndarray]:
    from ..distributed import checkpoint

    return checkpoint(model, optimizer, timeout=timeout)


def _guard(client: Any, timeout: float | None) -> contextlib.AbstractContextManager[Any]:
    """A progress watchdog on ``client`` (a Dask cluster), or a stand-in with ``beat()`` when there is none."""
    if client is None:
        return contextlib.nullcontext(_NoWatchdog())
    from ..distributed.cluster import progress_guard

    return progress_guard(client, timeout)


class _NoWatchdog:
    def beat(self) -> None:
        """Nothing watches: eager backends and Dask's local schedulers."""
