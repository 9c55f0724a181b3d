"""Text and Markdown tables of one run (``format_text``, ``format_markdown``) and their shared pieces."""

from __future__ import annotations

from typing import Any

from .calls import calls_lines
from .targets import shown
from .timing import quantile
from .train_report import train_lines
from .variants import LR


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{seconds * 1e6:.2f}µs"


def fmt_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 2**20:
        return f"{count / 2**10:.1f}KiB"
    return f"{count / 2**20:.1f}MiB"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = (
    ("variant", 20),
    ("forward", 8),
    ("backward", 8),
    ("step", 8),
    ("fwd+bwd", 8),
    ("±", 4),
    ("train", 8),
    ("GF/s", 6),
    ("×torch.nn", 9),
    ("×ref", 6),
    ("×numpy", 6),
    ("+µs", 7),
    ("train×torch", 11),
    ("peak", 9),
)


def _row(v: dict[str, Any]) -> list[str]:
    ops, ratios = v["ops"], v["ratios"]

    def med(op: str) -> float | None:
        return ops[op]["median_s"] if op in ops else None

    def ratio(key: str, op: str = "fwd+bwd") -> str:
        return fmt(ratios.get(key, {}).get(op), ".2f")

    fb = ops.get("fwd+bwd", {})
    peak = v["peak_bytes"]
    return [
        v["name"],
        *(fmt_time(med(op)) for op in ("forward", "backward", "step", "fwd+bwd")),
        f"{fb['spread'] * 100:.0f}%" if fb else "-",
        fmt_time(med("train")),
        fmt(fb.get("gflops"), ".1f"),
        ratio("torch.nn"),
        ratio("reference"),
        ratio("numpy(hand)"),
        fmt(v["overhead_us"].get("fwd+bwd"), "+.1f"),
        ratio("torch.nn", "train"),
        fmt_bytes(peak),
    ]


def format_text(result: dict[str, Any]) -> str:
    lines = [header(result), ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for case in result["cases"]:
        groups.setdefault((case["device"], case["dtype"]), []).append(case)
    for (device, dtype), cases in groups.items():
        title = "median per call; ± = half the IQR; ratios: median of per-round fwd+bwd ratios"
        lines.append(f"== {device} · {dtype}: {title} ==")
        head = "shape".ljust(18) + " ".join(n.rjust(w) if i else n.ljust(w) for i, (n, w) in enumerate(COLUMNS))
        lines += [head, "-" * len(head)]
        for case in cases:
            for i, v in enumerate(case["variants"]):
                cells = _row(v)
                pairs = enumerate(zip(cells, [w for _, w in COLUMNS], strict=True))
                text = " ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in pairs)
                lines.append((case["shape"]["label"] if i == 0 else "").ljust(18) + text)
            lines.append("")
    lines += [*_legend(), "", *_targets_text(result["targets"]), "", *calls_lines(result.get("calls"))]
    train = train_lines(result.get("train"))
    lines += ["", *train] if train else []
    if result["skipped"]:
        lines += ["", "skipped:"] + [f"  {s['what']}: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines)


def format_markdown(result: dict[str, Any]) -> str:
    """The same table as Markdown (what README.md's Performance section shows)."""
    names = ["shape"] + [name for name, _ in COLUMNS]
    lines = [header(result), ""]
    for case in result["cases"]:
        lines.append(f"**{case['device']} · {case['dtype']} · {case['shape']['label']}**")
        lines += ["", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for v in case["variants"]:
            lines.append("| " + " | ".join([case["shape"]["label"], *_row(v)]) + " |")
        lines.append("")
    calls = calls_lines(result.get("calls"))
    return "\n".join(
        lines + _targets_text(result["targets"]) + ["", *calls, "", *train_lines(result.get("train"), markdown=True)]
    )


def header(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    blas = (
        "; ".join(
            " ".join(str(b[k]) for k in ("internal_api", "version", "architecture") if b.get(k))
            + f" x{b['num_threads']}"
            for b in m.get("blas", [])
        )
        or "threadpoolctl not installed"
    )
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none"
    return (
        f"portable_nn bench: {m['cpu']} ({m['cores']} cores), {m['platform']}; load avg {m['load_start']} -> "
        f"{m.get('load_end')}\n{versions}\nBLAS: {blas}; torch threads {m.get('torch_threads')}; BLAS env: {env}\n"
        f"reps {s['reps']}, >= {s['min_time'] * 1e3:.0f} ms per sample, lr {LR}, {'quick' if s['quick'] else 'full'}"
    )


def _legend() -> list[str]:
    return [
        "×torch.nn: / torch.nn.Linear+autograd; ×ref: / the variant's bound (portable_nn: raw, same backend;",
        "jit(functional): jit(grad)); ×numpy: / numpy(hand); +µs: fwd+bwd time over the bound;",
        "train×torch: train-step time / torch.nn's (opt.zero_grad, forward, backward, SGD step);",
        "peak: bytes one train step allocates (tracemalloc / torch allocator events / RSS rise for jax, coarse).",
    ]


def _targets_text(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["targets:"] if targets else ["targets: none apply to these shapes"]
    for t in targets:
        unit = t["unit"]
        value = f"{shown(t['value'], unit)}{unit}" if unit == "x" else f"{shown(t['value'], unit)} {unit}"
        limit = f"{t['limit']:.2f}{unit}" if unit == "x" else f"{t['limit']:.0f} {unit}"
        extra = f"; min-sample based {t['min_based']:+.1f} {unit}" if "min_based" in t else ""
        verdict = "holds " if t["holds"] else "MISSED"
        lines.append(f"  {verdict} {t['target']} [{t['where']}]: {value} (<= {limit}){extra}")
    return lines


def spread_text(values: list[float], spec: str) -> str:
    """Median of per-run figures, with the range over runs when there are several."""
    if not values:
        return "-"
    mid = quantile(values, 0.5)
    if len(values) == 1:
        return format(mid, spec)
    return f"{format(mid, spec)} ({format(min(values), spec)}–{format(max(values), spec)})"
