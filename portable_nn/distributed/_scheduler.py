"""Dask schedulers of :mod:`portable_nn.distributed`: a local cluster, a running one, local threads or processes."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, TextIO

import dask

from ..errors import ArgumentError
from .cluster import check_address, probe_scheduler

if TYPE_CHECKING:
    from distributed import Client

SCHEDULERS: tuple[str, ...] = ("threads", "processes", "distributed")
#: Seconds to wait for the scheduler at ``address`` to answer (connection and handshake).
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Seconds a step (or checkpoint) may wait for a result from a distributed cluster before ClusterError.
DEFAULT_PROGRESS_TIMEOUT_S = 300.0


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
