"""Peak memory of one train step, measured with each library's public tooling.

- NumPy-backed arrays (numpy, array-api-strict, ``numpy(hand)``): :mod:`tracemalloc` (NumPy reports its buffers);
- torch CPU: the ``[memory]`` events of the public ``torch.profiler`` (``profile_memory=True``), read from its
  exported Chrome trace; the profiler's own console chatter is swallowed (:func:`quiet_fds`);
- torch CUDA: ``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated``; CuPy: a ``MemoryHook``;
- JAX CPU: the rise of the resident set's high-water mark (``/proc/self/clear_refs``), coarse.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .timing import gc_paused
from .variants import Fn, Variant


@contextlib.contextmanager
def quiet_fds() -> Iterator[list[str]]:
    """Send what C/C++ code writes to file descriptors 1 and 2 to a temporary file while the block runs.

    torch's profiler prints ``USDT ... profiler_start/stop`` and allocator warnings straight to the process's
    stdout/stderr, past ``sys.stdout``; redirecting the descriptors is the only way to silence them. The list
    yielded receives the captured text when the block ends (shown with an error, should the block fail).
    """
    captured: list[str] = []
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _peak_tracemalloc(body: Fn) -> int:
    """Peak bytes allocated (and traced: NumPy reports its buffers) while ``body`` runs, above the start."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        body()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def peak_of_events(events: list[tuple[float, int, int]]) -> int:
    """Peak bytes held by blocks allocated within ``events`` (time, signed bytes, address), in time order.

    Frees of blocks allocated before the first event are ignored (tracemalloc would not see them either).
    """
    live: set[int] = set()
    current = peak = 0
    for _, size, ptr in sorted(events):
        if size > 0:
            live.add(ptr)
        elif ptr not in live:
            continue
        else:
            live.discard(ptr)
        current += size
        peak = max(peak, current)
    return peak


def _peak_torch_profiler(body: Fn) -> int:
    """Peak bytes torch's CPU allocator holds for blocks allocated while ``body`` runs (public profiler)."""
    profiler = importlib.import_module("torch.profiler")
    with quiet_fds() as chatter:
        try:
            with profiler.profile(activities=[profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
                body()
            with tempfile.TemporaryDirectory() as tmp:
                trace = Path(tmp) / "trace.json"
                prof.export_chrome_trace(str(trace))
                loaded = json.loads(trace.read_text())
        except Exception as exc:
            raise RuntimeError(f"{exc} (profiler output: {chatter})") from exc
    items = loaded["traceEvents"] if isinstance(loaded, dict) else loaded
    events = [
        (float(e["ts"]), int(e["args"]["Bytes"]), int(e["args"]["Addr"]))
        for e in items
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0
    ]
    return peak_of_events(events)


def _peak_torch_cuda(body: Fn) -> int:
    torch = importlib.import_module("torch")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    body()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated() - base)


def _peak_cupy(body: Fn) -> int:
    cupy = importlib.import_module("cupy")

    class PeakHook(cupy.cuda.MemoryHook):  # type: ignore[misc,name-defined]
        name = "portable_nn_bench_peak"

        def __init__(self) -> None:
            self.current = self.peak = 0
            self.mine: set[int] = set()

        def malloc_postprocess(self, **kw: Any) -> None:
            self.mine.add(kw["mem_ptr"])
            self.current += kw["mem_size"]
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kw: Any) -> None:
            if kw["mem_ptr"] in self.mine:
                self.mine.discard(kw["mem_ptr"])
                self.current -= kw["mem_size"]

    hook = PeakHook()
    with hook:
        body()
        cupy.cuda.Device().synchronize()
    return hook.peak


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _peak_rss(body: Fn) -> int:
    """Rise of the resident set's high-water mark (reset through /proc/self/clear_refs) while ``body`` runs."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base = _rss_kib("VmRSS")
    jax = importlib.import_module("jax")
    jax.block_until_ready(body())
    return max(0, _rss_kib("VmHWM") - base) * 1024


_PEAK: dict[str, Callable[[Fn], int]] = {
    "tracemalloc": _peak_tracemalloc,
    "torch-profiler": _peak_torch_profiler,
    "torch-cuda-allocator": _peak_torch_cuda,
    "cupy-memory-hook": _peak_cupy,
    "rss": _peak_rss,
}


def peak_bytes(variant: Variant) -> tuple[int | None, str | None]:
    """Peak bytes one train step (after clearing grads) allocates, and how it was measured."""
    if variant.memory is None or variant.train_body is None:
        return None, None
    if variant.train_prepare is not None:
        variant.train_prepare()
    gc.collect()
    try:
        with gc_paused():
            return _PEAK[variant.memory](variant.train_body), variant.memory
    except Exception as exc:  # a profiler failed, /proc not writable...: say so, don't guess
        return None, f"{variant.memory} failed: {type(exc).__name__}: {exc}"
