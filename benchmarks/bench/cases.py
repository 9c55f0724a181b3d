"""One Linear case (device x dtype x shape): build the variants that can run, time them, pair their ratios."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portable_nn import PortableNNError

from .backends import (
    available_devices,
    installed_backends,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
)
from .memory import peak_bytes
from .shapes import OPS, Data, Shape
from .timing import quantile, time_variants
from .variants import (
    JIT_FUNCTIONAL,
    JIT_GRAD,
    NUMPY_HAND,
    PNN,
    RAW,
    TORCH_NN,
    Variant,
    jax_jit_variants,
    numpy_variant,
    portable_nn_variant,
    raw_variant,
    torch_variant,
)


@dataclass
class Config:
    backends: list[str]
    device: str
    dtypes: list[str]
    shapes: list[Shape]
    reps: int
    min_time: float
    memory: bool = True
    skipped: list[dict[str, str]] = field(default_factory=list)


def skip(config: Config, what: str, reason: str, **where: str) -> None:
    entry = {"what": what, "reason": reason, **where}
    if entry not in config.skipped:
        config.skipped.append(entry)
        print(f"  skipped {what}{' (' + ', '.join(where.values()) + ')' if where else ''}: {reason}", file=sys.stderr)


def _backend_place(config: Config, backend: str, dtype_label: str) -> tuple[Any, Any] | None:
    """(device, dtype) objects of ``backend`` for the run, or None (recorded as skipped) if it cannot run."""
    if backend == "dask":
        skip(config, backend, "lazy backend: timings would measure graph building, not compute (not supported)")
        return None
    if backend not in installed_backends():
        skip(config, backend, "not installed")
        return None
    try:
        xp = resolve_namespace(backend)
        device = resolve_device(xp, config.device)
        if dtype_label not in supported_dtypes(xp, device):
            raise PortableNNError(f"{dtype_label} is not supported here")
        return device, resolve_dtype(xp, dtype_label)
    except (PortableNNError, ImportError) as exc:
        skip(config, backend, str(exc), device=config.device, dtype=dtype_label)
        return None


def build_variants(config: Config, dtype_label: str, shape: Shape) -> list[Variant]:
    """Every variant that can run here for this case (the rest are recorded in ``config.skipped``)."""
    made: list[Data] = []

    def data() -> Data:  # drawn once, and only if something runs (GPU shapes are large)
        if not made:
            made.append(Data.make(shape))
        return made[0]

    variants: list[Variant] = []
    device_label = "cuda:0" if config.device == "cuda" else config.device
    if "torch" in installed_backends() and (device_label == "cpu" or device_label.startswith("cuda")):
        xp = resolve_namespace("torch")
        if device_label not in available_devices(xp):
            skip(config, TORCH_NN, f"torch has no device {device_label} here", device=device_label)
        elif dtype_label not in supported_dtypes(xp):
            skip(config, TORCH_NN, f"torch has no {dtype_label}", dtype=dtype_label)
        else:
            variants.append(torch_variant(device_label, dtype_label, data()))
    if config.device != "cpu":
        skip(config, NUMPY_HAND, "NumPy runs on the CPU only", device=config.device)
    elif dtype_label in ("float16", "float32", "float64"):
        variants.append(numpy_variant(dtype_label, shape, data()))
    else:
        skip(config, NUMPY_HAND, f"numpy has no {dtype_label}", dtype=dtype_label)
    for backend in config.backends:
        place = _backend_place(config, backend, dtype_label)
        if place is None:
            continue
        device, dtype = place
        variants.append(portable_nn_variant(backend, device, dtype, shape, data()))
        variants.append(raw_variant(backend, device, dtype, shape, data()))
        if backend == "jax":
            variants.extend(jax_jit_variants(device, dtype, data()))
    return variants


def _reference(variant: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The bound a variant is held to: ``raw`` for portable_nn, ``jit(grad)`` for ``jit(functional)``."""
    if variant["kind"] == PNN:
        return by_name.get(f"{variant['backend']}:{RAW}")
    if variant["kind"] == JIT_FUNCTIONAL:
        return by_name.get(f"jax:{JIT_GRAD}")
    return None


def paired(v: dict[str, Any], other: dict[str, Any], op: str, combine: Callable[[float, float], float]) -> float:
    """Median over repetitions of ``combine(v, other)``: each pair was timed back to back in one round."""
    pairs = zip(v["ops"][op]["samples_s"], other["ops"][op]["samples_s"], strict=True)
    return quantile([combine(a, b) for a, b in pairs], 0.5)


def add_ratios(case: dict[str, Any]) -> None:
    """Per variant and op: time ratios to torch.nn, to the reference bound and to numpy(hand); overhead in µs.

    A ratio is the median over repetitions of the per-repetition ratio (both timed in the same round, so
    load that comes and goes hits both), not the ratio of two medians (kept as ``ratios_of_medians``).
    """
    by_name = {v["name"]: v for v in case["variants"]}
    torch_nn, hand = by_name.get(TORCH_NN), by_name.get(NUMPY_HAND)
    for v in case["variants"]:
        ref = _reference(v, by_name)
        ratios: dict[str, dict[str, float]] = {}
        of_medians: dict[str, dict[str, float]] = {}
        for key, other in (("torch.nn", torch_nn), ("reference", ref), ("numpy(hand)", hand)):
            if other is None or other is v:
                continue
            common = [op for op in v["ops"] if op in other["ops"]]
            ratios[key] = {op: paired(v, other, op, lambda a, b: a / b) for op in common}
            of_medians[key] = {op: v["ops"][op]["median_s"] / other["ops"][op]["median_s"] for op in common}
        v["ratios"], v["ratios_of_medians"] = ratios, of_medians
        v["reference"] = ref["name"] if ref else None
        common = [op for op in v["ops"] if ref and op in ref["ops"]]
        v["overhead_us"] = {op: paired(v, ref, op, lambda a, b: (a - b) * 1e6) for op in common} if ref else {}
        # The least-disturbed estimate (timeit's): fastest sample minus the bound's fastest sample.
        v["overhead_us_min"] = {op: (v["ops"][op]["min_s"] - ref["ops"][op]["min_s"]) * 1e6 for op in common if ref}
        v["memory_ratio_torch_nn"] = (
            v["peak_bytes"] / torch_nn["peak_bytes"]
            if torch_nn and v["peak_bytes"] is not None and torch_nn.get("peak_bytes")
            else None
        )


def run_case(config: Config, dtype_label: str, shape: Shape) -> dict[str, Any] | None:
    variants = build_variants(config, dtype_label, shape)
    if not variants:
        return None
    timings = time_variants(variants, shape, config.reps, config.min_time)
    case_variants = []
    for v in variants:
        peak, method = peak_bytes(v) if config.memory else (None, None)
        entry: dict[str, Any] = {"name": v.name, "backend": v.backend, "kind": v.kind, "ops": timings[v.name]}
        entry |= {"peak_bytes": peak, "memory_method": method}
        case_variants.append(entry)
    shape_info = {
        "label": shape.label,
        "input": list(shape.input_shape),
        "out_features": shape.out_features,
        "rows": shape.rows,
        "flops": {op: shape.flops(op) for op in OPS},
    }
    case = {"device": config.device, "dtype": dtype_label, "shape": shape_info, "variants": case_variants}
    add_ratios(case)
    return case
