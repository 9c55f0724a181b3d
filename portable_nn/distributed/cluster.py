"""Talking to a dask.distributed cluster within bounded time: address checks, a connection probe, timed fetches.

Tooling next to :mod:`portable_nn.distributed` (imports dask only inside functions). Every
wait here has a limit, and every failure is a :class:`~portable_nn.errors.ClusterError` (or
an :class:`~portable_nn.errors.ArgumentError` for a malformed address) with a one-line message.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, ClusterError

__all__ = [
    "ProgressWatchdog",
    "active_client",
    "check_address",
    "compute_within",
    "probe_scheduler",
    "progress_guard",
]

#: Schemes of dask.distributed addresses a user may give.
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
#: A Dask handshake message is a few hundred bytes; a first frame claiming more is not Dask speaking.
_MAX_HANDSHAKE_BYTES = 1 << 20


def check_address(address: str) -> str:
    """``address`` checked as a Dask scheduler address (``[scheme://]host:port``), normalized to ``scheme://host:port``.

    Parameters
    ----------
    address
        E.g. ``"127.0.0.1:8786"``, ``"tcp://scheduler:8786"``, ``"tls://[::1]:8786"``. No connection is made.

    Returns
    -------
    str
        The address with its scheme (``tcp://`` when none was given).

    Raises
    ------
    ArgumentError
        Malformed (no port, port out of 1..65535, unknown scheme, spaces, ...).

    Examples
    --------
    >>> check_address("127.0.0.1:8786")
    'tcp://127.0.0.1:8786'
    """
    if not isinstance(address, str):
        raise ArgumentTypeError(f"a Dask scheduler address must be a str, got {type(address).__name__}")
    if address.startswith("inproc://") and len(address) > len("inproc://"):
        return address
    match = _ADDRESS.match(address.strip())
    if match is None:
        raise ArgumentError(
            f"expected a Dask scheduler address [scheme://]host:port, e.g. 127.0.0.1:8786, got {address!r}"
        )
    scheme = match["scheme"] or "tcp"
    if scheme not in SCHEMES:
        raise ArgumentError(f"unknown scheme {scheme!r} in {address!r}; known: {', '.join(SCHEMES)}")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ArgumentError(f"port must be in 1..65535, got {port} in {address!r}")
    return f"{scheme}://{match['host']}:{port}"


def probe_scheduler(address: str, timeout: float) -> None:
    """Check within ``timeout`` seconds that a Dask scheduler answers at ``address`` (a ``tcp://`` one).

    Opens a plain TCP connection and reads the first 8 bytes the scheduler sends (the length of
    its handshake message); closes it without speaking. Other schemes are left to the Dask
    client's own timeout. Raises :class:`ClusterError`: unreachable, silent (e.g. an HTTP
    server, which waits for a request) or not speaking Dask's protocol.
    """
    address = check_address(address)
    scheme, _, location = address.partition("://")
    if scheme != "tcp":
        return
    host, _, port = location.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            first = b""
            while len(first) < 8:
                chunk = sock.recv(8 - len(first))
                if not chunk:
                    raise ClusterError(
                        f"{address} closed the connection without a Dask handshake: not a Dask scheduler"
                    )
                first += chunk
    except TimeoutError:
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s (unreachable, or a server that is not Dask)"
        ) from None
    except OSError as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {exc.strerror or exc}") from None
    (size,) = struct.unpack("<Q", first)
    if not 0 < size <= _MAX_HANDSHAKE_BYTES:
        raise ClusterError(f"{address} is not a Dask scheduler (it answered {first!r})")


def active_client() -> Any:
    """The ``distributed.Client`` dask would run graphs on now, or None (a local scheduler is active)."""
    import dask.base

    get = dask.base.get_scheduler()
    client = getattr(get, "__self__", None)
    return client if type(client).__name__ == "Client" else None


def compute_within(*arrays: Any, timeout: float | None) -> tuple[Any, ...]:
    """``dask.compute(*arrays)``, failing with :class:`ClusterError` if a distributed cluster has no result in time.

    ``timeout`` None waits forever (as ``dask.compute``); local schedulers are never timed.
    """
    import dask

    client = active_client()
    if client is None or timeout is None:
        return tuple(dask.compute(*arrays))
    from distributed import wait

    futures = client.compute(list(arrays))
    try:
        wait(futures, timeout=timeout)
    except TimeoutError:
        counted = count_workers(client)
        client.cancel(futures)
        raise ClusterError(
            f"no progress on the Dask cluster at {client.scheduler.address} for {timeout:g} s ({counted})"
        ) from None
    return tuple(client.gather(futures))


def count_workers(client: Any, timeout: float = 2.0) -> str:
    """How many workers the scheduler knows: ``"no workers connected"``, ``"2 workers connected"``, ...

    Asked within ``timeout`` seconds: ``"the scheduler does not answer"`` when it is gone or silent.
    """
    answer: list[str] = []

    def ask() -> None:
        try:
            workers = len(client.scheduler_info().get("workers", {}))
        except Exception:
            answer.append("the scheduler does not answer")
            return
        answer.append("no workers connected" if workers == 0 else f"{workers} worker{'s' * (workers != 1)} connected")

    asker = threading.Thread(target=ask, name="portable_nn-count-workers", daemon=True)
    asker.start()
    asker.join(timeout)
    return answer[0] if answer else "the scheduler does not answer"


class ProgressWatchdog:
    """Cancel a client's work when no progress is reported for ``timeout`` seconds; then explain it.

    ``with ProgressWatchdog(client, timeout) as dog:`` around a loop that calls ``dog.beat()``
    after every step. A blocking fetch anywhere in the loop (a loss, a checkpoint, a check
    inside a loss function) cannot wait forever: when no beat came for ``timeout`` seconds,
    a background thread cancels every future of ``client``, the blocked call raises, and
    :meth:`error` (or ``fired``) says why. ``client`` None or ``timeout`` None: does nothing.
    """

    def __init__(self, client: Any, timeout: float | None) -> None:
        self.client, self.timeout = client, timeout
        self.fired: str | None = None
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Progress was made (a step finished)."""
        self._last = time.monotonic()

    def error(self) -> ClusterError | None:
        """The :class:`ClusterError` to raise if the watchdog fired, else None."""
        return ClusterError(self.fired) if self.fired is not None else None

    def __enter__(self) -> ProgressWatchdog:
        if self.client is not None and self.timeout is not None:
            self.beat()
            self._thread = threading.Thread(target=self._watch, name="portable_nn-progress-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        assert self.timeout is not None
        while not self._stop.wait(min(0.1, self.timeout / 4)):
            if time.monotonic() - self._last < self.timeout:
                continue
            self.fired = (
                f"no progress on the Dask cluster at {self._address()} for {self.timeout:g} s ({self._workers()})"
            )
            with contextlib.suppress(Exception):  # the scheduler is gone: the blocked call fails on its own
                self._cancel_all()
            return

    def _address(self) -> str:
        try:
            return str(self.client.scheduler.address)
        except Exception:
            return "(unknown address)"

    def _workers(self) -> str:
        return count_workers(self.client)

    def _cancel_all(self) -> None:
        from distributed import Future

        keys = list(self.client.futures)
        if keys:
            futures = [Future(key, self.client) for key in keys]
            self.client.cancel(futures, force=True)


@contextlib.contextmanager
def progress_guard(client: Any, timeout: float | None) -> Iterator[ProgressWatchdog]:
    """Run the block under a :class:`ProgressWatchdog`; any failure after it fired becomes its :class:`ClusterError`.

    ``with progress_guard(client, timeout) as dog:`` around a training loop that calls
    ``dog.beat()`` after every step: a blocking Dask compute anywhere in the block (loss read,
    a loss function's own check of its targets, a checkpoint) fails within about ``timeout``
    seconds of the last beat, as ``ClusterError("no progress on the Dask cluster at ... for N s
    (no workers connected)")``; a task lost with too many dying workers (``KilledWorker``) is a
    ``ClusterError`` too. ``client`` None (a local scheduler) or ``timeout`` None: no watchdog.
    """
    with ProgressWatchdog(client, timeout) as dog:
        try:
            yield dog
        except ClusterError:
            raise
        except Exception as exc:
            error = dog.error()
            if error is None and type(exc).__name__ == "KilledWorker":  # distributed gave up on a task
                error = ClusterError(f"the Dask cluster lost a task with too many workers: {exc}")
            if error is None:
                raise
            raise error from exc
