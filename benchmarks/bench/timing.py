"""Timing: interleaved rounds (A B C A B C ..., the order rotating each round), median and spread per op."""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .shapes import OPS
from .variants import Fn, Variant


class HasFlops(Protocol):
    """What the timer needs of a case: the flops of an op (for GF/s)."""

    def flops(self, op: str) -> float: ...


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off while the block runs (a collection inside a sample would be timed)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def timed(fn: Fn, sync: Callable[[Any], None], number: int) -> float:
    """Seconds per call of ``number`` back-to-back calls, device synchronized before and after."""
    sync(None)
    start = time.perf_counter()
    out = None
    for _ in range(number):
        out = fn()
    sync(out)
    return (time.perf_counter() - start) / number


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: list[float], number: int, flops: float) -> dict[str, Any]:
    median = quantile(samples, 0.5)
    q25, q75 = quantile(samples, 0.25), quantile(samples, 0.75)
    return {
        "median_s": median,
        "q25_s": q25,
        "q75_s": q75,
        "min_s": min(samples),
        "max_s": max(samples),
        "spread": (q75 - q25) / 2 / median if median > 0 else 0.0,
        "reps": len(samples),
        "number": number,
        "samples_s": samples,
        "gflops": flops / median / 1e9 if median > 0 else None,
    }


def time_variants(variants: list[Variant], shape: HasFlops, reps: int, min_time: float) -> dict[str, dict[str, Any]]:
    """Median/spread per variant and op; repetitions interleave the variants, rotating their order."""
    numbers: dict[tuple[str, str], int] = {}
    with gc_paused():
        for v in variants:
            for op, fn in v.ops.items():
                timed(fn, v.sync, 1)  # first call: compile (jit, JAX's eager ops), allocate, page in
                once = timed(fn, v.sync, 1)  # a warm call sizes the loop
                number = max(1, min(100_000, math.ceil(min_time / max(once, 1e-9))))
                if number > 1:
                    timed(fn, v.sync, number)  # warm-up at the measured loop length
                numbers[v.name, op] = number
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in numbers}
        for rep in range(reps):
            for op in OPS:
                order = [v for v in variants if op in v.ops]
                if not order:
                    continue
                turn = rep % len(order)
                for v in order[turn:] + order[:turn]:
                    samples[v.name, op].append(timed(v.ops[op], v.sync, numbers[v.name, op]))
    result: dict[str, dict[str, Any]] = {v.name: {} for v in variants}
    for (name, op), values in samples.items():
        result[name][op] = summarize(values, numbers[name, op], shape.flops(op))
    return result
