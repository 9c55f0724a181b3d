"""Scale-out training on Dask: schedulers, a lazily generated chunked dataset and an epoch loop.

Tooling (may import dask): the layers themselves stay backend-neutral and only see
``dask.array`` arrays through the array API. A model trained here is any
:class:`~portable_nn.nn.module.Module` built with ``xp="dask"`` (``forward``, ``backward``,
``zero_grad``, ``named_parameters``, ``set_parameters``), trained by an
:class:`~portable_nn.Optimizer` (plain :class:`~portable_nn.SGD` unless the caller gives one).

Data flow of one step: the batch (rows ``[start, stop)`` of ``x`` and ``y``, chunked along the
batch axis) is persisted on the workers; :func:`portable_nn.train_step` builds the graphs of
forward, loss, backward and the optimizer's update, and persists the new parameters, the
optimizer's buffers and the batch loss in one call (one chunk each, see
:func:`portable_nn._backend.materialize`), with ``grad_weight = g.T @ x`` and ``grad_bias``
summed as tree reductions over the batch chunks by ``dask.array`` itself. The stored loss is
then fetched for the progress bar. Every ``checkpoint_every`` steps the parameters and the
optimizer's buffers are copied to the host and re-rooted, which bounds the lineage the
distributed scheduler keeps (and so its memory and what it recomputes when a worker dies) to
that many steps.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import dask
import dask.array as da
import numpy as np

from .._backend import from_host, resolve_dtype, resolve_namespace
from ..errors import ArgumentError, ArgumentTypeError, ClusterError, ShapeError
from ..losses import MSELoss
from ..nn.module import Module
from ..optim import SGD, Optimizer
from ..training import run_epoch
from ..training.step import train_step
from ..typing import Array
from .cluster import active_client, check_address, compute_within, probe_scheduler, progress_guard

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_LR",
    "DEFAULT_PROGRESS_TIMEOUT_S",
    "SCHEDULERS",
    "EpochStats",
    "check_address",
    "checkpoint",
    "dask_scheduler",
    "mse_loss",
    "synthetic_regression",
    "train",
    "train_epoch",
]

SCHEDULERS: tuple[str, ...] = ("threads", "processes", "distributed")
#: Seconds to wait for the scheduler at ``address`` to answer (connection and handshake).
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Seconds a step (or checkpoint) may wait for a result from a distributed cluster before ClusterError.
DEFAULT_PROGRESS_TIMEOUT_S = 300.0
#: Learning rate of :func:`train`'s plain SGD when neither ``lr`` nor ``optimizer`` is given.
DEFAULT_LR = 0.01

LossFn = Callable[[Array, Array], tuple[Array, Array]]


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


# --------------------------------------------------------------------------- schedulers


@contextlib.contextmanager
def dask_scheduler(
    scheduler: str = "distributed",
    *,
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | int | None = "auto",
    dashboard_address: str | None = "127.0.0.1:8787",
    out: TextIO | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> Iterator[Client | None]:
    """Run the block on a Dask scheduler; yields the ``distributed.Client`` (None for local schedulers).

    ``"threads"`` / ``"processes"``: dask's local schedulers (``n_workers`` = pool size).
    ``"distributed"``: connect to ``address`` (an existing scheduler, left running) or start a
    ``LocalCluster`` of ``n_workers`` worker processes bound to 127.0.0.1 only, each limited to
    ``memory_limit``, closed on exit. The dashboard link is printed to ``out`` (stderr by default).

    Parameters
    ----------
    scheduler : {"distributed", "threads", "processes"}
        Which scheduler runs the block's computations (default ``"distributed"``).
    address : str, optional
        A running scheduler to connect to (``[scheme://]host:port``, see :func:`check_address`); only with
        ``"distributed"``. None starts a ``LocalCluster``.
    n_workers : int, optional
        Threads or processes of a local scheduler, or worker processes of the ``LocalCluster`` (None: dask's
        default, about one per core).
    threads_per_worker : int
        Threads of each ``LocalCluster`` worker (default 1).
    memory_limit : str, int or None
        Memory of each ``LocalCluster`` worker: bytes, a string such as ``"1GiB"``, ``"auto"`` (the default:
        the machine's memory shared among the workers) or None (no limit).
    dashboard_address : str or None
        Where the ``LocalCluster`` serves its dashboard (default ``"127.0.0.1:8787"``; None: no dashboard).
    out : text file, optional
        Where the dashboard link is printed (default: ``sys.stderr``).
    connect_timeout : float
        Seconds to wait for the scheduler at ``address`` to answer (default :data:`DEFAULT_CONNECT_TIMEOUT_S`).

    Yields
    ------
    distributed.Client or None
        The client of the cluster (current inside the block), or None for ``"threads"`` and ``"processes"``.

    Raises
    ------
    ArgumentError
        An unknown ``scheduler``, an ``address`` without ``"distributed"``, a malformed ``address`` or a
        ``connect_timeout`` that is not a positive finite number.
    ArgumentTypeError
        ``address`` is not a string.
    ClusterError
        Nothing at ``address`` answers within ``connect_timeout``, or what answers is not a Dask scheduler.

    Examples
    --------
    >>> import dask.array as da
    >>> with dask_scheduler("threads", n_workers=2) as client:
    ...     total = int(da.ones(10, chunks=5).sum().compute())
    >>> client is None, total
    (True, 10)
    """
    out = sys.stderr if out is None else out
    if scheduler not in SCHEDULERS:
        raise ArgumentError(f"scheduler must be one of {list(SCHEDULERS)}, got {scheduler!r}")
    if address is not None and scheduler != "distributed":
        raise ArgumentError(f"address={address!r} needs scheduler='distributed', got {scheduler!r}")
    if address is not None:
        address = check_address(address)
        if not (isinstance(connect_timeout, (int, float)) and 0 < connect_timeout < math.inf):
            raise ArgumentError(f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}")
    if scheduler == "threads":
        with dask.config.set(scheduler="threads", num_workers=n_workers):
            yield None
        return
    if scheduler == "processes":
        # One pool for the whole block: dask's default would spawn a fresh pool on every call.
        from dask.multiprocessing import get_context, initialize_worker_process

        workers = n_workers or os.cpu_count() or 1
        with (
            ProcessPoolExecutor(workers, mp_context=get_context(), initializer=initialize_worker_process) as pool,
            dask.config.set(scheduler="processes", pool=pool),
        ):
            yield None
        return
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if address is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    memory_limit=memory_limit,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=dashboard_address,
                )
            )
            client = stack.enter_context(Client(cluster, set_as_default=False))
        else:
            probe_scheduler(address, connect_timeout)  # bounded: Client() alone can wait forever on a non-Dask server
            client = stack.enter_context(Client(address, set_as_default=False, timeout=connect_timeout))
        stack.enter_context(client.as_current())
        # The name, not the client object: nannies copy the config into restarted workers.
        stack.enter_context(dask.config.set(scheduler="dask.distributed"))
        print(f"Dask dashboard: {_dashboard(client)}", file=out, flush=True)
        yield client


def _dashboard(client: Client) -> str:
    if importlib.util.find_spec("bokeh") is None:
        return f"{client.dashboard_link} (plots need bokeh>=3.1 installed)"
    return str(client.dashboard_link)


# --------------------------------------------------------------------------- data


def _regression_block(
    seed: int, weight: np.ndarray, bias: np.ndarray, noise: float, dtype: str, block_id: Any, block_info: Any
) -> np.ndarray:
    """Rows of ``[x | x @ weight.T + bias + noise]`` for one chunk, drawn from ``(seed, chunk index)``."""
    rows, _ = block_info[None]["chunk-shape"]
    rng = np.random.default_rng([seed, block_id[0]])
    work = np.float64 if dtype == "float64" else np.float32
    x = rng.standard_normal((rows, weight.shape[1]), dtype=work)
    y = x @ weight.T.astype(work) + bias.astype(work) + noise * rng.standard_normal((rows, weight.shape[0]), dtype=work)
    return np.concatenate([x, y], axis=1, dtype=dtype)


def synthetic_regression(
    n_samples: int,
    in_features: int,
    out_features: int = 1,
    *,
    chunk_rows: int = 65536,
    seed: int = 0,
    noise: float = 0.1,
    dtype: str = "float32",
) -> tuple[Array, Array]:
    """A lazily generated regression set ``(x, y)``: (n_samples, in) and (n_samples, out) dask arrays.

    Nothing is held in memory: chunk ``i`` (``chunk_rows`` rows along the batch axis) is drawn
    from ``numpy.random.default_rng([seed, i])`` when a task needs it, so the set can be far
    larger than the workers' memory and is the same whatever the scheduler or worker count.
    Targets are ``x @ w.T + b + noise * N(0, 1)`` for a ``w``, ``b`` drawn from ``seed``.

    Parameters
    ----------
    n_samples : int
        Rows of the set, ``>= 0``.
    in_features : int
        Columns of ``x``, ``>= 1``.
    out_features : int
        Columns of ``y``, ``>= 1`` (default 1).
    chunk_rows : int
        Rows per chunk, ``>= 1`` (default 65536; the last chunk may be smaller).
    seed : int
        Seed of the weights and of every chunk's draw (default 0).
    noise : float
        Standard deviation of the Gaussian noise added to the targets (default 0.1).
    dtype : str or dtype
        Floating dtype of both arrays (default ``"float32"``; drawn in float64 for ``"float64"``).

    Returns
    -------
    x : dask.array.Array
        Inputs of shape (n_samples, in_features), chunked by ``chunk_rows`` along the batch axis.
    y : dask.array.Array
        Targets of shape (n_samples, out_features), chunked as ``x``.

    Raises
    ------
    ArgumentError
        ``n_samples < 0``, or ``in_features``, ``out_features`` or ``chunk_rows`` below 1.

    Examples
    --------
    >>> x, y = synthetic_regression(100, 3, 2, chunk_rows=40, seed=0)
    >>> x.shape, y.shape, x.chunks[0], str(x.dtype)
    ((100, 3), (100, 2), (40, 40, 20), 'float32')
    >>> bool((x[:40].compute() == synthetic_regression(40, 3, 2, chunk_rows=40, seed=0)[0].compute()).all())
    True
    """
    if n_samples < 0 or in_features < 1 or out_features < 1 or chunk_rows < 1:
        raise ArgumentError(
            f"need n_samples >= 0 and in_features, out_features, chunk_rows >= 1; got "
            f"{n_samples}, {in_features}, {out_features}, {chunk_rows}"
        )
    rng = np.random.default_rng([seed, 2**32 - 1])
    weight = rng.standard_normal((out_features, in_features)) / math.sqrt(in_features)
    bias = rng.standard_normal(out_features)
    rows = (chunk_rows,) * (n_samples // chunk_rows) + ((n_samples % chunk_rows,) if n_samples % chunk_rows else ())
    host_dtype = np.dtype(resolve_dtype(resolve_namespace("numpy"), dtype))
    data = da.map_blocks(
        _regression_block,
        seed,
        weight,
        bias,
        noise,
        host_dtype.name,
        chunks=(rows, (in_features + out_features,)),
        dtype=host_dtype,
        meta=np.empty((0, 0), dtype=host_dtype),
    )
    return data[:, :in_features], data[:, in_features:]


# --------------------------------------------------------------------------- training


_MSE = MSELoss()


def mse_loss(prediction: Array, target: Array) -> tuple[Array, Array]:
    """Mean squared error and its gradient w.r.t. ``prediction`` (both lazy on Dask), any shape.

    The default ``loss`` of :func:`train` and :func:`train_epoch`: :class:`portable_nn.losses.MSELoss`
    with its default ``reduction="mean"``, kept under this name (the one loss, not a copy).

    Parameters
    ----------
    prediction : array
        The model's output, any shape (a Dask array, or any array-API array).
    target : array
        Of ``prediction``'s shape, namespace and dtype.

    Returns
    -------
    loss : array
        0-d: the mean over every element of ``(prediction - target) ** 2``.
    grad : array
        ``2 * (prediction - target) / prediction.size``, of ``prediction``'s shape.

    Examples
    --------
    >>> import dask.array as da
    >>> loss, grad = mse_loss(da.asarray([1.0, 2.0]), da.asarray([0.0, 0.0]))
    >>> float(loss), grad.compute().tolist()
    (2.5, [1.0, 2.0])
    """
    return _MSE(prediction, target)


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
