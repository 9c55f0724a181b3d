"""Text of the train-step rows: µs per step, paired ratios, peak memory and agreement with the float64 run."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _bytes(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count / 2**10:.1f}KiB" if count < 2**20 else f"{count / 2**20:.1f}MiB"


TRAIN_COLUMNS = (
    ("variant", 38),
    ("µs/step", 10),
    ("±", 4),
    ("×raw", 6),
    ("×eager", 6),
    ("×torch.nn", 9),
    ("peak", 9),
    ("peak×torch.nn", 13),
    ("|Δ| vs f64", 10),
)


def _cells(v: dict[str, Any]) -> list[str]:
    stats, ratios = v["ops"]["train"], v["ratios"]
    return [
        v["name"],
        f"{stats['median_s'] * 1e6:.1f}",
        f"{stats['spread'] * 100:.0f}%",
        _fmt(ratios.get("raw"), ".2f"),
        _fmt(ratios.get("eager"), ".2f"),
        _fmt(ratios.get("torch.nn"), ".2f"),
        _bytes(v["peak_bytes"]),
        _fmt(v["memory_ratio_torch_nn"], ".2f"),
        f"{v['agreement']:.1e}",
    ]


def train_lines(train: dict[str, Any] | None, markdown: bool = False) -> list[str]:
    """The train-step section of a report (nothing when the run had none)."""
    if not train:
        return []
    skipped = [f"skipped {entry['what']}: {entry['reason']}" for entry in train.get("skipped", [])]
    if not train.get("models"):
        return skipped
    lines: list[str] = []
    for model in train["models"]:
        s = model["spec"]
        title = (
            f"train step · {train['device']} · {train['dtype']} · {model['model']} "
            f"(SGD lr {s['lr']:g} momentum {s['momentum']:g}; ratios: median of per-round ratios)"
        )
        if markdown:
            lines += [f"**{title}**", "", "| " + " | ".join(n for n, _ in TRAIN_COLUMNS) + " |"]
            lines.append("|" + "---|" * len(TRAIN_COLUMNS))
            lines += ["| " + " | ".join(_cells(v)) + " |" for v in model["variants"]]
        else:
            lines.append(f"== {title} ==")
            head = " ".join(n.rjust(w) if i else n.ljust(w) for i, (n, w) in enumerate(TRAIN_COLUMNS))
            lines += [head, "-" * len(head)]
            for v in model["variants"]:
                pairs = zip(_cells(v), (w for _, w in TRAIN_COLUMNS), strict=True)
                lines.append(" ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(pairs)))
        for t in model.get("targets", []):
            verdict = "held" if t["holds"] else "missed"
            lines.append(f"target: {t['target']}: {t['value']:.2f}x (<= {t['limit']:.2f}x: {verdict})")
        lines.append("")
    lines += [
        "×raw / ×eager: / the same backend's array-API bound / portable eager row; ×torch.nn: / torch.nn+optim;",
        f"|Δ| vs f64: max |update - float64 NumPy run's update| / max |that update| over {s['check_steps']} steps",
        "(the same training run everywhere: the rows compare equal work); peak: bytes one step allocates.",
    ]
    return lines + skipped
