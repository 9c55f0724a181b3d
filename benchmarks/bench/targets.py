"""The performance targets of issue 7, checked against a run's figures.

A verdict is taken on the figure as printed (2 decimals for ratios, 1 for µs), so a line never reads
``MISSED ... 1.05x (<= 1.05x)``: the JSON keeps the unrounded ``value`` beside it.
"""

from __future__ import annotations

from typing import Any

from .variants import JIT_FUNCTIONAL, PNN

DIGITS: dict[str, int] = {"x": 2, "µs": 1}


def shown(value: float, unit: str) -> str:
    """``value`` as the report prints it (``1.05`` for a ratio, ``+3.2`` for µs)."""
    return f"{value:.{DIGITS[unit]}f}" if unit == "x" else f"{value:+.{DIGITS[unit]}f}"


def holds(value: float, limit: float, unit: str) -> bool:
    """Whether the target holds for the printed (rounded) figure."""
    return float(shown(value, unit)) <= limit


def find(cases: list[dict[str, Any]], label: str, name: str) -> dict[str, Any] | None:
    for case in cases:
        if case["shape"]["label"] == label:
            for v in case["variants"]:
                if v["name"] == name:
                    found: dict[str, Any] = v | {"case": case}
                    return found
    return None


def evaluate_targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run's figures (missing variants are left out)."""
    out: list[dict[str, Any]] = []

    def add(name: str, case: dict[str, Any], value: float, limit: float, unit: str = "x") -> None:
        where = f"{case['device']} {case['dtype']} {case['shape']['label']}"
        out.append(
            {
                "target": name,
                "where": where,
                "value": value,
                "limit": limit,
                "unit": unit,
                "holds": holds(value, limit, unit),
            }
        )

    small, large = "B32 64->64", ("B1024 1024->1024", "B4096 2048->2048")
    for backend in ("torch", "cupy"):
        pnn = find(cases, small, f"{backend}:{PNN}")
        if pnn and "torch.nn" in pnn["ratios"] and backend == "torch":
            add("small fwd+bwd vs torch.nn+autograd", pnn["case"], pnn["ratios"]["torch.nn"]["fwd+bwd"], 0.40)
    for backend in ("numpy", "torch"):
        pnn = find(cases, small, f"{backend}:{PNN}")
        if pnn and pnn["overhead_us"]:
            add(f"{backend} small fwd+bwd overhead over raw", pnn["case"], pnn["overhead_us"]["fwd+bwd"], 5.0, "µs")
            out[-1]["min_based"] = pnn["overhead_us_min"]["fwd+bwd"]  # shown beside it, not judged
        for label in large:
            pnn = find(cases, label, f"{backend}:{PNN}")
            if pnn and "reference" in pnn["ratios"]:
                add(f"{backend} fwd+bwd vs raw bound", pnn["case"], pnn["ratios"]["reference"]["fwd+bwd"], 1.03)
            if pnn and backend == "torch" and "torch.nn" in pnn["ratios"]:
                add("torch fwd+bwd vs torch.nn+autograd", pnn["case"], pnn["ratios"]["torch.nn"]["fwd+bwd"], 1.0)
            if pnn and backend == "numpy" and "numpy(hand)" in pnn["ratios"]:
                add("numpy fwd+bwd vs hand-written NumPy", pnn["case"], pnn["ratios"]["numpy(hand)"]["fwd+bwd"], 1.05)
    gpu = [c for c in cases if c["device"].startswith("cuda")]
    for case in gpu:
        for v in case["variants"]:
            if v["kind"] == PNN and "torch.nn" in v["ratios"]:
                limit = 1.05 if v["backend"] == "cupy" else 1.0
                add(f"{v['backend']} fwd+bwd vs torch.nn+autograd", case, v["ratios"]["torch.nn"]["fwd+bwd"], limit)
            if v["kind"] == PNN and "reference" in v["ratios"]:
                add(f"{v['backend']} fwd+bwd vs raw bound", case, v["ratios"]["reference"]["fwd+bwd"], 1.03)
    for case in cases:
        for v in case["variants"]:
            if v["kind"] == JIT_FUNCTIONAL and "reference" in v["ratios"]:
                add("jax jit(functional) vs jit(grad)", case, v["ratios"]["reference"]["fwd+bwd"], 1.05)
            if v["kind"] == PNN and v["memory_ratio_torch_nn"] is not None and v["backend"] in ("numpy", "torch"):
                add(f"{v['backend']} train-step peak memory vs torch.nn", case, v["memory_ratio_torch_nn"], 1.0)
    return out
