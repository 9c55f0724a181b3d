"""The command line's report: the results table, the verdict lines and the figures written as JSON."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from .. import __version__
from ..testing.tolerances import TOLERANCES
from .arguments import describe_options
from .data import Data
from .model import describe_optimizer
from .plan import Plan, RunSpec
from .train import RunResult

__all__ = ["compare_to_numpy", "describe", "figures", "format_table", "verdict"]


def compare_to_numpy(results: list[RunResult]) -> None:
    """Fill each result's max |Δ| of final weights against the NumPy run of the same dtype."""
    references = {r.spec.dtype: r for r in results if r.spec.backend == "numpy"}
    for result in results:
        reference = references.get(result.spec.dtype)
        if reference is None:
            continue
        rtol, atol = TOLERANCES[result.spec.dtype]
        diffs, ok = [], True
        for name, expected in reference.weights.items():
            delta = np.abs(result.weights[name] - expected)
            diffs.append(float(delta.max(initial=0.0)))
            ok &= bool(np.all(delta <= atol + rtol * np.abs(expected)))
        result.max_abs_diff, result.within_tolerance = max(diffs, default=0.0), ok


def describe(args: argparse.Namespace, data: Data) -> str:
    """The title line: model, data, optimizer, epochs × batches, seed."""
    sizes = "→".join(str(s) for s in (data.features, *args.hidden, data.classes))
    batches = math.ceil(len(data.x_train) / args.batch_size)
    return (
        f"MLP {sizes} ({args.activation}) on {data.name}: {len(data.x_train)} train / {len(data.x_test)} test "
        f"samples; {describe_optimizer(args)}, {args.epochs} epochs × {batches} batches of {args.batch_size}, "
        f"seed {args.seed}"
    )


def _number(value: float, width: int) -> str:
    """``value`` with 4 decimals in ``width`` columns, in scientific notation when that would not fit."""
    text = f"{value:.4f}"
    if len(text) > width or (value != 0 and abs(value) < 1e-3):
        text = f"{value:.3e}"
    return f"{text:>{width}}"


def format_table(results: list[RunResult]) -> str:
    """One row per run: backend, device, dtype, final loss, accuracy, wall time, max |Δ| vs the NumPy run.

    Every row has the header's column widths whatever the numbers (huge or NaN losses included).
    """
    header = (
        f"{'backend':<18}{'device':<9}{'dtype':<10}{'final loss':>11}{'accuracy':>10}{'wall time':>11}"
        "   max |Δ| vs numpy"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r.spec.backend == "numpy":
            delta = "0 (reference)"
        elif r.max_abs_diff is None:
            delta = "- (no numpy run of this dtype)"
        else:
            delta = f"{r.max_abs_diff:.1e}" + ("" if r.within_tolerance else "  (beyond float tolerance)")
        wall = f"{r.wall_s:.2f} s" if r.wall_s < 1e6 else f"{r.wall_s:.2e} s"
        lines.append(
            f"{r.spec.backend:<18.18}{r.spec.device:<9.9}{r.spec.dtype:<10.10}{_number(r.final_loss, 11)}"
            f"{r.accuracy:>10.2%}{wall:>11}   {delta}"
        )
    return "\n".join(lines)


def verdict(results: list[RunResult]) -> list[str]:
    """One-line conclusions: do all runs reach the same accuracy, and are their weights within tolerance?"""
    if not results:
        return []
    lines = []
    accuracies = {round(r.accuracy, 6) for r in results}
    if len(accuracies) == 1:
        runs = f"all {len(results)} runs" if len(results) > 1 else "the only run"
        lines.append(f"accuracy: {results[0].accuracy:.2%} on {runs}")
    else:
        low = min(results, key=lambda r: r.accuracy)
        high = max(results, key=lambda r: r.accuracy)
        lines.append(
            f"accuracy differs between runs: {low.accuracy:.2%} ({low.spec.label}) to {high.accuracy:.2%} "
            f"({high.spec.label})"
        )
    compared = [r for r in results if r.max_abs_diff is not None and r.spec.backend != "numpy"]
    if compared:
        worst = max(compared, key=lambda r: r.max_abs_diff or 0.0)
        beyond = [r.spec.label for r in compared if not r.within_tolerance]
        tolerances = ", ".join(
            f"{d}: rtol {TOLERANCES[d][0]:g}, atol {TOLERANCES[d][1]:g}"
            for d in sorted({r.spec.dtype for r in compared})
        )
        if beyond:
            lines.append(
                f"weights: {', '.join(beyond)} beyond tolerance of the numpy run ({tolerances}); "
                f"max |Δ| {worst.max_abs_diff:.1e}"
            )
        else:
            lines.append(
                f"weights: every run within tolerance of the numpy run ({tolerances}); "
                f"max |Δ| {worst.max_abs_diff:.1e} ({worst.spec.label})"
            )
    return lines


def figures(
    args: argparse.Namespace, data: Data, plan: Plan, results: list[RunResult], failed: list[tuple[RunSpec, str]]
) -> dict[str, Any]:
    """Everything the table and the verdict show, plus the loss curves, as JSON-ready values."""
    return {
        "portable_nn": __version__,
        "config": {
            "model": [data.features, *args.hidden, data.classes],
            **describe_options(args),
            "dataset": data.name,
            "train_samples": len(data.x_train),
            "test_samples": len(data.x_test),
        },
        "runs": [
            {
                "backend": r.spec.backend,
                "device": r.spec.device,
                "dtype": r.spec.dtype,
                "final_loss": r.final_loss,
                "accuracy": r.accuracy,
                "wall_s": r.wall_s,
                "max_abs_diff_vs_numpy": r.max_abs_diff,
                "within_tolerance": r.within_tolerance,
                "loss_curve": r.curve,
            }
            for r in results
        ],
        "skipped": [{"backend": b, "device": d, "dtype": t, "reason": why} for b, d, t, why in plan.skipped],
        "failed": [{"backend": s.backend, "device": s.device, "dtype": s.dtype, "error": e} for s, e in failed],
        "verdict": verdict(results),
    }
