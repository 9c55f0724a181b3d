"""The command line's Dask options: --address checked up front, bounded connection (--connect-timeout)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import portable_nn as pnn

from .cli_support import TINY, assert_one_line_error, run_module

pytest.importorskip("distributed", reason="distributed is not installed")
pd = pytest.importorskip("portable_nn.distributed", reason="dask is not installed")

DASK = ["--backend", "dask", *TINY]


@pytest.mark.parametrize(
    "address", ["notaurl", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "http://127.0.0.1:8786", "a b:1", ""]
)
def test_check_address_refuses_malformed_addresses(address):
    with pytest.raises(pnn.ArgumentError):
        pd.check_address(address)


def test_check_address_normalizes():
    assert pd.check_address("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert pd.check_address("tls://scheduler.example:8786") == "tls://scheduler.example:8786"
    assert pd.check_address("tcp://[::1]:8786") == "tcp://[::1]:8786"


def test_malformed_address_is_a_usage_error_without_connecting():
    start = time.monotonic()
    result = run_module(*DASK, "--address", "notaurl", timeout=60)
    assert_one_line_error(result.returncode, result.stderr, "--address: expected a Dask scheduler address")
    assert result.stdout == "" and time.monotonic() - start < 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    """A plain HTTP server on loopback (it waits for a request line, as a Dask client never sends one)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["closed port", "http server"])
def test_unreachable_or_non_dask_scheduler_fails_within_the_connect_timeout(request, kind):
    address = f"127.0.0.1:{_free_port()}" if kind == "closed port" else request.getfixturevalue("http_server")
    start = time.monotonic()
    result = run_module(*DASK, "--address", address, "--connect-timeout", "2", timeout=60)
    assert_one_line_error(result.returncode, result.stderr, "--address: ")
    assert "Exception ignored" not in result.stderr and "MemoryError" not in result.stderr
    assert result.stdout == ""  # nothing trained
    assert time.monotonic() - start < 25  # interpreter start-up + at most the 2 s timeout


def test_bad_connect_timeout_is_a_usage_error():
    result = run_module(*DASK, "--connect-timeout", "0", timeout=60)
    assert_one_line_error(result.returncode, result.stderr, "--connect-timeout: expected a number in (0, 3600]")


def _kill_workers_once_running(cluster, stop: threading.Event) -> None:
    """Close every worker of ``cluster`` mid-run (a run of this size makes about 400 transitions a step)."""
    while (
        not stop.is_set() and cluster.scheduler.transition_counter < 6000
    ):  # about 15 steps: after the first checkpoint (step 10)
        time.sleep(0.05)
    if not stop.is_set():
        cluster.scale(0)


@pytest.mark.parametrize("when", ["mid-run", "from the start"])
def test_no_workers_fails_within_the_progress_timeout(when):
    """Issue 16: with every worker gone a run blocked forever in CrossEntropyLoss's check of the labels.

    "from the start" (a scheduler without workers) reaches that check first, deterministically;
    "mid-run" closes the only worker after about 15 steps (after the checkpoint of step 10).
    """
    from distributed import Client, LocalCluster

    workers = 1 if when == "mid-run" else 0
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as c,
        Client(c, set_as_default=False),
    ):
        stop = threading.Event()
        if workers:
            threading.Thread(target=_kill_workers_once_running, args=(c, stop), daemon=True).start()
        start = time.monotonic()
        try:
            argv = [*DASK, "--epochs", "200", "--address", c.scheduler_address, "--progress-timeout", "3"]
            result = run_module(*argv, timeout=40)
        finally:
            stop.set()
        elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, result.stdout
    assert "no progress on the Dask cluster" in failed[0] and "for 3 s (no workers connected)" in failed[0], failed[0]
    where = "after step " if workers else "none yet"
    assert f"last checkpoint of the parameters: {where}" in failed[0], failed[0]
    # distributed's own logger may report its client's cancelled reconnect on stderr; nothing of ours is a traceback
    assert "portable_nn/" not in result.stderr, result.stderr
    assert elapsed < 40
