"""Training on Dask for :mod:`portable_nn.distributed`: the epoch loop, the run, lineage-bounding checkpoints."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import dask
import numpy as np

from .._backend import from_host
from ..errors import ArgumentError, ArgumentTypeError, ClusterError, ShapeError
from ..nn.module import Module
from ..optim import SGD, Optimizer
from ..training import run_epoch
from ..training.step import train_step
from ..typing import Array
from ._data import LossFn, mse_loss
from ._data import synthetic_regression as synthetic_regression  # the examples of train_epoch and train use it
from ._scheduler import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_PROGRESS_TIMEOUT_S, dask_scheduler
from .cluster import active_client, compute_within, progress_guard

#: Learning rate of :func:`train`'s plain SGD when neither ``lr`` nor ``optimizer`` is given.
DEFAULT_LR = 0.01


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did: steps, samples, wall time, mean batch loss and throughput.

    Parameters
    ----------
    epoch : int
        The epoch's index (0 for the first).
    steps : int
        Optimizer steps taken (batches).
    samples : int
        Rows of ``x`` seen.
    seconds : float
        Wall time of the epoch.
    loss : float
        Mean of the batch losses weighted by batch size (NaN for an empty epoch).

    Examples
    --------
    >>> stats = EpochStats(epoch=0, steps=4, samples=64, seconds=0.5, loss=1.25)
    >>> stats.samples_per_s
    128.0
    """

    epoch: int
    steps: int
    samples: int
    seconds: float
    loss: float

    @property
    def samples_per_s(self) -> float:
        """Throughput: ``samples / seconds`` (``inf`` when no time was measured)."""
        return self.samples / self.seconds if self.seconds > 0 else math.inf


def checkpoint(
    model: Module, optimizer: Optimizer | None = None, *, timeout: float | None = None
) -> dict[str, np.ndarray]:
    """Copy the parameters (and ``optimizer``'s buffers) to the host and rebind them from those copies.

    Returns the host copies of the parameters. On the distributed scheduler this cuts their
    lineage (the scheduler would otherwise keep every past step's tasks, to be able to
    recompute a lost parameter or momentum buffer); the values are unchanged.

    Parameters
    ----------
    model : Module
        A model built with ``xp="dask"``; its parameters are rebound to host-rooted Dask arrays.
    optimizer : Optimizer, optional
        An optimizer of ``model``, whose buffers are re-rooted the same way (its step count is kept).
    timeout : float, optional
        On a distributed cluster, the seconds to wait for the values (None, the default: wait forever).

    Returns
    -------
    dict of str to numpy.ndarray
        The parameters' values by name, copied to the host.

    Raises
    ------
    ClusterError
        The values did not arrive within ``timeout`` seconds; the model and the optimizer are unchanged.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(3, 1, xp="dask", seed=0)
    >>> host = checkpoint(model, pnn.SGD(model, lr=0.1, momentum=0.9))
    >>> sorted(host), host["weight"].shape, type(host["weight"]).__name__
    (['bias', 'weight'], (1, 3), 'ndarray')
    """
    params = model.named_parameters()
    state = optimizer.state_dict() if optimizer is not None else {"state": {}}
    buffers = [(name, key) for name, group in state["state"].items() for key in group]
    values = compute_within(*params.values(), *(state["state"][name][key] for name, key in buffers), timeout=timeout)
    host = dict(zip(params, values[: len(params)], strict=True))
    _set_from_host(model, host)
    if optimizer is not None:
        for (name, key), value in zip(buffers, values[len(params) :], strict=True):
            state["state"][name][key] = from_host(value, model.xp, model.device, model.dtype)
        optimizer.load_state_dict(state)
    return host


def _set_from_host(model: Module, host: Mapping[str, np.ndarray]) -> None:
    model.set_parameters({n: from_host(h, model.xp, model.device, model.dtype) for n, h in host.items()})


def _batches(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]


def _optimizer_for(model: Module, lr: float | None, optimizer: Optimizer | None) -> Optimizer:
    """``optimizer`` checked to optimize ``model``, or plain ``SGD(model, lr)``: exactly one of the two is given."""
    if optimizer is None:
        if lr is None:
            raise ArgumentError("give lr (plain SGD) or optimizer, got neither")
        return SGD(model, lr=lr)
    if lr is not None:
        raise ArgumentError(f"give lr (plain SGD) or optimizer, not both: the optimizer has its own lr; got lr={lr!r}")
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"optimizer must be a portable_nn Optimizer, got {type(optimizer).__name__}")
    if optimizer.module is not model:
        raise ArgumentError("the optimizer optimizes another module than the model given")
    return optimizer


def train_epoch(
    model: Module,
    x: Array,
    y: Array,
    *,
    batch_size: int,
    lr: float | None = None,
    optimizer: Optimizer | None = None,
    loss: LossFn = mse_loss,
    checkpoint_every: int = 10,
    epoch: int = 0,
    progress: bool = True,
    out: TextIO | None = None,
    on_step: Callable[[int, float], None] | None = None,
    progress_timeout: float | None = DEFAULT_PROGRESS_TIMEOUT_S,
) -> EpochStats:
    """One pass of minibatch training over ``x`` (N, in) and ``y`` (N, out), chunked along the batch axis.

    Runs on whatever Dask scheduler is active (see :func:`dask_scheduler`): every batch is one
    call of :func:`portable_nn.train_step` (forward, loss, backward, the optimizer's step; the
    new parameters, the optimizer's buffers and the loss stored in one persist), looped by
    :func:`portable_nn.training.run_epoch`. ``on_step(step, loss)`` is called after every step.

    Parameters
    ----------
    model : Module
        Built with ``xp="dask"``, e.g. ``pnn.Linear(16, 1, xp="dask")``.
    x : dask.array.Array
        (N, in) inputs, chunked along the batch axis (e.g. from :func:`synthetic_regression`).
    y : dask.array.Array
        (N, out) targets, with ``x``'s N.
    batch_size : int
        Rows per step (the last batch may be smaller).
    lr : float, optional
        Learning rate of plain SGD (``pnn.SGD(model, lr=lr)``, a fresh one for this epoch).
    optimizer : Optimizer, optional
        Instead of ``lr``: the optimizer to step (e.g. ``pnn.SGD(model, lr=0.05, momentum=0.9)``),
        kept across epochs by the caller. Exactly one of ``lr`` and ``optimizer`` is given.
    loss : callable
        ``loss(prediction, target) -> (loss, dL/dprediction)``; default :func:`mse_loss`.
    checkpoint_every : int
        Steps between checkpoints (see :func:`checkpoint`; the last step is always one).
    epoch : int
        The epoch's index, for the progress bar and the returned stats (default 0).
    progress : bool
        Whether to show a ``tqdm`` progress bar (default True).
    out : text file, optional
        Where the progress bar is written (default: ``sys.stderr``).
    on_step : callable, optional
        ``on_step(step, loss)``, called after every step with the step's index in the epoch and its batch loss.
    progress_timeout : float or None
        On a distributed cluster, the seconds a step or a checkpoint may wait for a result (default
        :data:`DEFAULT_PROGRESS_TIMEOUT_S`; None: wait forever).

    Returns
    -------
    EpochStats
        The epoch's steps, samples, wall time and mean loss.

    Raises
    ------
    ArgumentError
        ``batch_size`` or ``checkpoint_every`` below 1, a ``progress_timeout`` that is not positive, both or
        neither of ``lr`` and ``optimizer``, or an optimizer of another module.
    ArgumentTypeError
        ``optimizer`` is not a portable_nn ``Optimizer``.
    ShapeError
        ``x`` or ``y`` is not 2-D, or their numbers of rows differ.
    ClusterError
        On a distributed cluster, a step or checkpoint got no result for ``progress_timeout`` seconds (e.g.
        every worker is gone). The model's parameters (and the optimizer's buffers and step count) are then
        reset to the last checkpoint of this epoch, whose host copies of the parameters are the error's
        ``checkpoint`` (None when none was taken yet; the parameters and the optimizer are then left as they
        are).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> x, y = synthetic_regression(64, 3, 1, chunk_rows=16, seed=0)
    >>> model = pnn.Linear(3, 1, xp="dask", seed=0)
    >>> with dask_scheduler("threads"):
    ...     stats = train_epoch(model, x, y, batch_size=16, optimizer=pnn.SGD(model, lr=0.1), progress=False)
    >>> stats.steps, stats.samples
    (4, 64)
    """
    if batch_size < 1 or checkpoint_every < 1:
        raise ArgumentError(f"batch_size and checkpoint_every must be >= 1, got {batch_size}, {checkpoint_every}")
    if progress_timeout is not None and not (isinstance(progress_timeout, (int, float)) and progress_timeout > 0):
        raise ArgumentError(f"progress_timeout must be a positive number of seconds or None, got {progress_timeout!r}")
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ShapeError(f"expected x (N, in) and y (N, out) with the same N, got {x.shape} and {y.shape}")
    optimizer = _optimizer_for(model, lr, optimizer)
    # The loss is stored with the parameters in the step's one persist; reading it fetches that stored value (it
    # submits no graph sharing the forward's tasks, which a distributed scheduler warns of: dask#9888).
    fused = train_step(model, loss, optimizer)
    from tqdm.auto import tqdm

    batches = _batches(x.shape[0], batch_size)
    bar = tqdm(
        total=x.shape[0],
        unit="sample",
        unit_scale=True,
        desc=f"epoch {epoch}",
        disable=not progress,
        file=sys.stderr if out is None else out,
    )
    last: dict[str, Any] = {"host": None, "step": 0, "optimizer": None}

    def persisted() -> Iterator[tuple[Array, Array]]:
        for start, stop in batches:
            yield dask.persist(x[start:stop], y[start:stop])

    def read(stored_loss: Array) -> float:
        return float(compute_within(stored_loss, timeout=progress_timeout)[0])

    def after(step: int, value: float) -> None:
        dog.beat()
        if (step + 1) % checkpoint_every == 0 or step + 1 == len(batches):
            last["host"], last["step"] = checkpoint(model, optimizer, timeout=progress_timeout), step + 1
            last["optimizer"] = optimizer.state_dict()  # host-rooted buffers (never mutated): safe to keep
            dog.beat()
        bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        start, stop = batches[step]
        bar.update(stop - start)
        if on_step is not None:
            on_step(step, value)

    start_time = time.perf_counter()
    try:
        # Every blocking compute of the epoch (inside the loss too) is bounded: see cluster.progress_guard.
        with bar, progress_guard(active_client(), progress_timeout) as dog:
            losses = run_epoch(model, loss, optimizer, persisted(), on_step=after, step=fused, read=read)
    except ClusterError as exc:
        raise _with_checkpoint(exc, model, optimizer, last, epoch, checkpoint_every) from None
    model.zero_grad()
    seconds = time.perf_counter() - start_time
    n = x.shape[0]
    total = sum(value * (stop - start) for value, (start, stop) in zip(losses, batches, strict=True))
    return EpochStats(epoch, len(batches), n, seconds, total / n if n else math.nan)


def _with_checkpoint(
    exc: ClusterError, model: Module, optimizer: Optimizer, last: Mapping[str, Any], epoch: int, every: int
) -> ClusterError:
    """``exc`` restated with where the last checkpoint is; the model and optimizer are reset to it (host-rooted)."""
    model.zero_grad()
    host: dict[str, np.ndarray] | None = last["host"]
    step: int = last["step"]
    if host is None:
        where = (
            f"no checkpoint was taken in epoch {epoch} (the first comes after step {every}); "
            "the parameters are left as they were"
        )
    else:
        with dask.config.set(scheduler="sync"):  # rooted here, not on the cluster that failed
            _set_from_host(model, host)
            optimizer.load_state_dict(last["optimizer"])
        where = (
            f"the model's parameters were reset to the last checkpoint (epoch {epoch}, after step {step}), "
            "whose host copies are this error's .checkpoint"
        )
    return ClusterError(f"{exc}; {where}", checkpoint=host, step=step if host is not None else None)


def train(
    model: Module,
    x: Array,
    y: Array,
    *,
    epochs: int = 1,
    batch_size: int = 65536,
    lr: float | None = None,
    optimizer: Optimizer | None = None,
    scheduler: str = "distributed",
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | int | None = "auto",
    dashboard_address: str | None = "127.0.0.1:8787",
    loss: LossFn = mse_loss,
    checkpoint_every: int = 10,
    progress: bool = True,
    out: TextIO | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    progress_timeout: float | None = DEFAULT_PROGRESS_TIMEOUT_S,
) -> list[EpochStats]:
    """Train ``model`` (built with ``xp="dask"``) for ``epochs`` on a Dask scheduler; one stats per epoch.

    ``scheduler``: ``"threads" | "processes" | "distributed"``; with ``"distributed"``, ``address``
    connects to a running scheduler, else a ``LocalCluster`` on 127.0.0.1 is started (and
    stopped) with ``n_workers``, ``threads_per_worker``, ``memory_limit`` per worker and the
    dashboard on ``dashboard_address``, whose link is printed.

    The model is trained by ``optimizer`` (any :class:`~portable_nn.Optimizer` of ``model``, e.g.
    ``pnn.Adam(model, lr=1e-3)``) or, without one, by plain ``pnn.SGD(model, lr=lr)`` (``lr``
    default 0.01), one optimizer for all the epochs; giving both is an ``ArgumentError``. Every
    step goes through :func:`portable_nn.train_step` (see :func:`train_epoch`). Afterwards the
    parameters and the optimizer's buffers are host-rooted Dask arrays (no reference to the cluster).

    Parameters
    ----------
    model : Module
        Built with ``xp="dask"``, e.g. ``pnn.Linear(16, 1, xp="dask")``.
    x : dask.array.Array
        (N, in) inputs, chunked along the batch axis (e.g. from :func:`synthetic_regression`).
    y : dask.array.Array
        (N, out) targets, with ``x``'s N.
    epochs : int
        Passes over the data, ``>= 0`` (default 1).
    batch_size : int
        Rows per step (default 65536; the last batch of an epoch may be smaller).
    lr : float, optional
        Learning rate of plain SGD (default :data:`DEFAULT_LR` when ``optimizer`` is not given either).
    optimizer : Optimizer, optional
        Instead of ``lr``: an optimizer of ``model``, stepped through every epoch.
    scheduler : {"distributed", "threads", "processes"}
        The Dask scheduler (see :func:`dask_scheduler`; default ``"distributed"``).
    address : str, optional
        A running scheduler to connect to (with ``"distributed"``); None starts a ``LocalCluster``.
    n_workers : int, optional
        Workers of the local scheduler or ``LocalCluster`` (None: dask's default).
    threads_per_worker : int
        Threads of each ``LocalCluster`` worker (default 1).
    memory_limit : str, int or None
        Memory of each ``LocalCluster`` worker (default ``"auto"``; see :func:`dask_scheduler`).
    dashboard_address : str or None
        Where the ``LocalCluster`` serves its dashboard (default ``"127.0.0.1:8787"``).
    loss : callable
        ``loss(prediction, target) -> (loss, dL/dprediction)``; default :func:`mse_loss`.
    checkpoint_every : int
        Steps between checkpoints within an epoch (see :func:`checkpoint`; default 10).
    progress : bool
        Whether to show a ``tqdm`` progress bar per epoch (default True).
    out : text file, optional
        Where the dashboard link and the progress bars are written (default: ``sys.stderr``).
    connect_timeout : float
        Seconds to wait for the scheduler at ``address`` (default :data:`DEFAULT_CONNECT_TIMEOUT_S`).
    progress_timeout : float or None
        On a distributed cluster, the seconds a step or checkpoint may wait for a result (default
        :data:`DEFAULT_PROGRESS_TIMEOUT_S`; None: wait forever).

    Returns
    -------
    list of EpochStats
        One per epoch, in order.

    Raises
    ------
    ArgumentError
        ``epochs < 0``; both ``lr`` and ``optimizer``, or an optimizer of another module; any other bad
        argument of :func:`dask_scheduler` or :func:`train_epoch`.
    ArgumentTypeError
        ``optimizer`` is not a portable_nn ``Optimizer``.
    ShapeError
        ``x`` or ``y`` is not 2-D, or their numbers of rows differ.
    ClusterError
        The cluster cannot be reached or makes no progress (see :func:`train_epoch`: the model is left at
        its last checkpoint).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> x, y = synthetic_regression(64, 3, 1, chunk_rows=32, seed=0)
    >>> model = pnn.Linear(3, 1, xp="dask", seed=0)
    >>> stats = train(model, x, y, epochs=2, batch_size=32, lr=0.1, scheduler="threads", progress=False)
    >>> [(s.epoch, s.steps, s.samples) for s in stats], stats[1].loss < stats[0].loss
    ([(0, 2, 64), (1, 2, 64)], True)
    """
    if epochs < 0:
        raise ArgumentError(f"epochs must be >= 0, got {epochs}")
    optimizer = _optimizer_for(model, DEFAULT_LR if lr is None and optimizer is None else lr, optimizer)
    stats = []
    with dask_scheduler(
        scheduler,
        address=address,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        dashboard_address=dashboard_address,
        out=out,
        connect_timeout=connect_timeout,
    ):
        for e in range(epochs):
            stats.append(
                train_epoch(
                    model,
                    x,
                    y,
                    batch_size=batch_size,
                    optimizer=optimizer,
                    loss=loss,
                    checkpoint_every=checkpoint_every,
                    epoch=e,
                    progress=progress,
                    out=out,
                    progress_timeout=progress_timeout,
                )
            )
        host = checkpoint(model, optimizer, timeout=progress_timeout)  # buffers: rebound host-rooted
    # Rebind outside the scheduler block: the parameters must not refer to a cluster that is gone.
    _set_from_host(model, host)
    return stats
