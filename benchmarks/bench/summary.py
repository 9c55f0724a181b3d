"""Several runs at once: the Markdown summary (median over runs, range over runs) and the PNG plot."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .report import fmt_time, header, spread_text
from .targets import find
from .timing import quantile
from .variants import JIT_FUNCTIONAL, PNN, TORCH_NN


def format_summary(results: list[dict[str, Any]]) -> str:
    """Markdown summary of several runs of the same cases: medians over runs, (min–max) over runs.

    One row per portable_nn variant (and JAX's jit(functional)); baselines appear as their times.
    """

    def per_run(label: str, name: str, get: Callable[[dict[str, Any]], float | None]) -> list[float]:
        values = []
        for result in results:
            v = find(result["cases"], label, name)
            value = get(v) if v else None
            if value is not None:
                values.append(value)
        return values

    def fb_time(label: str, name: str | None) -> str:
        times = per_run(label, name, lambda x: x["ops"].get("fwd+bwd", {}).get("median_s")) if name else []
        return fmt_time(quantile(times, 0.5)) if times else "-"

    first = results[0]
    lines = [header(first), f"{len(results)} runs; ratio cells: median over runs (min–max over runs)", ""]
    lines += [
        "| shape | variant | fwd+bwd | torch.nn | bound | × torch.nn | × bound | × numpy(hand) | overhead µs "
        "| overhead µs (min) | train × torch.nn | peak mem × torch.nn |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in first["cases"]:
        label = case["shape"]["label"]
        for v in case["variants"]:
            if v["kind"] not in (PNN, JIT_FUNCTIONAL):
                continue
            name = v["name"]

            def ratio(key: str, op: str = "fwd+bwd", label: str = label, name: str = name) -> str:
                return spread_text(per_run(label, name, lambda x: x["ratios"].get(key, {}).get(op)), ".2f")

            overhead = per_run(label, name, lambda x: x["overhead_us"].get("fwd+bwd"))
            overhead_min = per_run(label, name, lambda x: x.get("overhead_us_min", {}).get("fwd+bwd"))
            memory = per_run(label, name, lambda x: x.get("memory_ratio_torch_nn"))
            cells = [
                label,
                name,
                fb_time(label, name),
                fb_time(label, TORCH_NN),
                fb_time(label, v["reference"]),
                ratio("torch.nn"),
                ratio("reference"),
                ratio("numpy(hand)"),
                spread_text(overhead, "+.1f"),
                spread_text(overhead_min, "+.1f"),
                ratio("torch.nn", "train"),
                spread_text(memory, ".2f"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| target | where | per run | holds in |", "|---|---|---|---|"]
    for i, target in enumerate(first["targets"]):
        same = [r["targets"][i] for r in results if i < len(r["targets"])]
        same = [t for t in same if (t["target"], t["where"]) == (target["target"], target["where"])]
        unit = target["unit"]
        values = ", ".join(f"{t['value']:.2f}" if unit == "x" else f"{t['value']:+.1f}" for t in same)
        limit = f"≤ {target['limit']:.2f}×" if unit == "x" else f"≤ {target['limit']:.0f} {unit}"
        held = sum(t["holds"] for t in same)
        lines.append(f"| {target['target']} {limit} | {target['where']} | {values} | {held}/{len(same)} runs |")
    return "\n".join(lines)


def median_of_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run, with every ratio replaced by its median over the runs (for plotting several runs)."""
    merged = copy.deepcopy(results[0])
    merged["runs"] = len(results)
    for case in merged["cases"]:
        for v in case["variants"]:
            for key, by_op in v["ratios"].items():
                for op in by_op:
                    values = []
                    for result in results:
                        other = find(result["cases"], case["shape"]["label"], v["name"])
                        if other and op in other["ratios"].get(key, {}):
                            values.append(other["ratios"][key][op])
                    by_op[op] = quantile(values, 0.5)
    return merged


def plot(result: dict[str, Any], path: str) -> None:
    """PNG: portable_nn's fwd+bwd time ratio vs shape, per backend, to torch.nn and to the raw bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=80)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for case in result["cases"]:
        groups.setdefault((case["device"], case["dtype"]), []).append(case)
    for (device, dtype), cases in groups.items():
        labels = [c["shape"]["label"] for c in cases]
        series: dict[str, dict[str, list[float | None]]] = {}
        for i, case in enumerate(cases):
            for v in case["variants"]:
                if v["kind"] not in (PNN, JIT_FUNCTIONAL):
                    continue
                jit = " jit" if v["kind"] == JIT_FUNCTIONAL else ""
                name = f"{v['backend']}{jit} {device} {dtype}"
                entry = series.setdefault(name, {"torch.nn": [None] * len(cases), "reference": [None] * len(cases)})
                for key in entry:
                    entry[key][i] = v["ratios"].get(key, {}).get("fwd+bwd")
        for name, entry in series.items():
            for ax, key in zip(axes, ("torch.nn", "reference"), strict=True):
                points = [(x, y) for x, y in enumerate(entry[key]) if y is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), marker="o", label=name)
        for ax in axes:
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    axes[0].set_title("fwd+bwd time / torch.nn.Linear + autograd", fontsize=10)
    axes[1].set_title("fwd+bwd time / raw array-API bound (jit: / jit(grad))", fontsize=10)
    axes[1].axhline(1.03, color="tab:red", lw=0.8, ls=":", label="target 1.03")
    axes[0].set_yscale("log")  # eager JAX at tiny shapes is many times torch; the bound ratios stay near 1
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    axes[0].yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[1].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
    for ax in axes:
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    runs = result.get("runs", 1)
    threads = result["machine"].get("torch_threads")
    fig.suptitle(
        f"portable_nn.Linear, {result['machine']['cpu']}, {threads} thread(s)"
        + (f", median of {runs} runs" if runs > 1 else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
