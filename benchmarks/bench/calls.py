"""Python-level call counts: ``sys.setprofile``'s ``'call'`` and ``'c_call'`` events per operation.

Deterministic (the same on every machine and load, unlike time): issue 22's targets are counts of
the demo MLP's eager ``train_step`` on NumPy (≤ 150 per step) and of one ``Linear(64, 64)`` forward +
backward + ``zero_grad`` at batch 32 (≤ 35). Every operation runs a few times first (validation
of a new input signature, buffers allocated at the first step), then ``REPEAT`` counted calls; the
count per call is their mean (they are equal in a steady state).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import portable_nn as pnn

__all__ = ["REPEAT", "call_targets", "calls_lines", "count_calls"]

REPEAT = 5
WARMUP = 3
TARGETS = {"demo train_step": 150, "Linear f+b+zero_grad": 35}


def count_calls(fn: Callable[[], Any], repeat: int = REPEAT, warmup: int = WARMUP) -> float:
    """Mean ``'call'`` + ``'c_call'`` events of one ``fn()`` after ``warmup`` uncounted calls."""
    for _ in range(warmup):
        fn()
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    previous = sys.getprofile()
    collecting = gc.isenabled()
    gc.disable()  # a collection in the counted region would add finalizer calls: not the step's own
    sys.setprofile(profile)
    try:
        for _ in range(repeat):
            fn()
    finally:
        sys.setprofile(previous)
        if collecting:
            gc.enable()
    return (count - 1) / repeat  # the profiler's own sys.setprofile(previous) is one c_call


def _demo_train_step() -> Callable[[], Any]:
    """The demo MLP (2->64->64->3 tanh), batch 60, CrossEntropyLoss, SGD lr 0.04 momentum 0.9, eager, NumPy."""
    rng = np.random.default_rng(0)
    model = pnn.Sequential(pnn.Linear(2, 64, seed=0), pnn.Tanh(), pnn.Linear(64, 64, seed=1), pnn.Tanh())
    model = pnn.Sequential(*model, pnn.Linear(64, 3, seed=2))
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.04, momentum=0.9), compile=False)
    x, y = rng.standard_normal((60, 2)).astype(np.float32), rng.integers(0, 3, 60)
    return lambda: step(x, y)


def _linear_forward_backward() -> Callable[[], Any]:
    """``Linear(64, 64)`` at batch 32 on NumPy: ``zero_grad()``, forward, backward (the bench's fwd+bwd op)."""
    rng = np.random.default_rng(0)
    layer = pnn.Linear(64, 64, seed=0)
    x, g = rng.standard_normal((32, 64)).astype(np.float32), rng.standard_normal((32, 64)).astype(np.float32)

    def op() -> Any:
        layer.zero_grad()
        layer(x)
        return layer.backward(g)

    return op


def call_targets() -> list[dict[str, Any]]:
    """Issue 22's two counts on NumPy, each with its target."""
    counts = {"demo train_step": _demo_train_step(), "Linear f+b+zero_grad": _linear_forward_backward()}
    return [
        {"what": name, "calls": count_calls(fn), "target": TARGETS[name], "held": count_calls(fn) <= TARGETS[name]}
        for name, fn in counts.items()
    ]


def calls_lines(calls: list[dict[str, Any]] | None) -> list[str]:
    """The report's call-count section (nothing for a run saved before it existed)."""
    if not calls:
        return []
    lines = ["Python-level calls per operation (sys.setprofile 'call' + 'c_call'; NumPy; deterministic):"]
    for entry in calls:
        verdict = "held" if entry["held"] else "missed"
        lines.append(f"  {entry['what']}: {entry['calls']:g} (target <= {entry['target']}: {verdict})")
    return lines
