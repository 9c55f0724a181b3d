"""Train-step rows: every variant of one MLP, all backends interleaved in one group, timed per whole step.

Before timing, each variant runs ``CHECK_STEPS`` steps from the same host numbers and its parameters are
compared with a float64 NumPy run of the same math (``agreement``: max |difference| / max |reference|), so the
rows compare equal work. Then the steps go on being timed (they keep training; the cost of a step does not
depend on the values) and, with memory on, one more step is measured for its peak.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from portable_nn import PortableNNError

from .backends import (
    available_devices,
    installed_backends,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
)
from .cases import paired
from .memory import peak_bytes
from .targets import holds
from .timing import gc_paused, time_variants
from .train_models import CE, DEMO, HostData, MLPSpec, step_math
from .train_variants import (
    EAGER,
    HAND,
    JAX_JIT_HAND,
    RAW,
    TORCH_NN_OPTIM,
    TRAIN_STEP_AUTO,
    TRAIN_STEP_EAGER,
    jax_jit_variant,
    numpy_hand_variant,
    portable_variants,
    raw_variant,
    torch_hand_variant,
    torch_nn_variant,
)
from .variants import Variant

CHECK_STEPS = 3
TRAIN_BACKENDS: tuple[str, ...] = ("numpy", "torch", "jax", "array_api_strict", "dask")


def reference_parameters(spec: MLPSpec, data: HostData, steps: int = CHECK_STEPS) -> list[np.ndarray]:
    """The parameters after ``steps`` steps of :func:`step_math` in float64 NumPy (the oracle)."""
    xp = resolve_namespace("numpy")
    labels = np.arange(spec.sizes[-1]) if spec.loss == CE else None
    params, bufs = data.flat(), None
    for _ in range(steps):
        _, params, bufs = step_math(xp, spec, params, bufs, data.x, data.target, labels)
    return params


def agreement(
    variant: Variant, initial: list[np.ndarray], reference: list[np.ndarray], steps: int = CHECK_STEPS
) -> float:
    """Run ``steps`` steps of ``variant``; how far its parameter *updates* are from the float64 run's.

    ``max |(p_after - p_before) - (ref - initial)| / max |ref - initial|`` over all parameters: comparing
    updates, not values, keeps the float32 rounding of the initial values out, so a step that differs (a
    missing momentum term, another loss scale) shows as an error near 1, float32 rounding as ~1e-6.
    """
    assert variant.parameters is not None
    before = variant.parameters()
    for _ in range(steps):
        variant.sync(variant.ops["train"]())
    after = variant.parameters()
    if len(after) != len(reference):
        return math.inf
    moved = [r - i for r, i in zip(reference, initial, strict=True)]
    scale = max(float(np.max(np.abs(m))) for m in moved)
    diffs = [(a - b) - m for a, b, m in zip(after, before, moved, strict=True)]
    return max(float(np.max(np.abs(d))) for d in diffs) / scale


def _place(backend: str, device: str, dtype_label: str, skipped: list[dict[str, str]]) -> tuple[Any, Any] | None:
    def skip(reason: str) -> None:
        entry = {"what": f"train step: {backend}", "reason": reason}
        if entry not in skipped:
            skipped.append(entry)
            print(f"  skipped {entry['what']}: {reason}", file=sys.stderr)

    if backend == "dask":
        skip("lazy backend: a timed step would measure graph building, and repeated steps grow the graph")
        return None
    if backend not in installed_backends():
        skip("not installed")
        return None
    try:
        xp = resolve_namespace(backend)
        dev = resolve_device(xp, device)
        if dtype_label not in supported_dtypes(xp, dev):
            raise PortableNNError(f"{dtype_label} is not supported on {device}")
        return dev, resolve_dtype(xp, dtype_label)
    except (PortableNNError, ImportError) as exc:
        skip(str(exc))
        return None


def build_train_variants(
    spec: MLPSpec, data: HostData, backends: list[str], device: str, dtype_label: str, skipped: list[dict[str, str]]
) -> list[Variant]:
    """Every train-step variant that can run here, in report order (the rest are recorded in ``skipped``)."""
    out: list[Variant] = []
    for backend in backends:
        place = _place(backend, device, dtype_label, skipped)
        if place is None:
            continue
        dev, dtype = place
        out += portable_variants(backend, dev, dtype, spec, data)
        if backend == "numpy":
            out.append(numpy_hand_variant(spec, data, dtype_label))
        elif backend == "torch":
            label = "cuda:0" if device == "cuda" else device
            out.append(torch_hand_variant(label, dtype_label, spec, data))
        out.append(raw_variant(backend, dev, dtype, spec, data))
        if backend == "torch" and (device == "cpu" or device.startswith("cuda")):
            label = "cuda:0" if device == "cuda" else device
            if label in available_devices(resolve_namespace("torch")):
                out.append(torch_nn_variant(label, dtype_label, spec, data))
        if backend == "jax":
            out.append(jax_jit_variant(dev, dtype, spec, data))
    return out


def _ratios(entry: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per-round paired time ratios to the same backend's raw bound and eager row, and to torch.nn+optim."""
    backend = entry["backend"]
    others = {"raw": f"{backend}:{RAW}", "eager": f"{backend}:{EAGER}", "torch.nn": f"torch:{TORCH_NN_OPTIM}"}
    out = {}
    for key, name in others.items():
        other = by_name.get(name)
        if other is not None and other is not entry:
            out[key] = paired(entry, other, "train", lambda a, b: a / b)
    return out


#: Issue 22's time targets for the demo MLP: (what, variant, the variant it is divided by, limit), paired per round.
STEP_TARGETS = (
    ("NumPy eager train_step / hand-written NumPy step", f"numpy:{TRAIN_STEP_EAGER}", f"numpy:{HAND}", 1.35),
    ("torch train_step / torch.nn + torch.optim", f"torch:{TRAIN_STEP_AUTO}", f"torch:{TORCH_NN_OPTIM}", 1.0),
    ("JAX compiled train_step / hand-written jax.jit step", f"jax:{TRAIN_STEP_AUTO}", f"jax:{JAX_JIT_HAND}", 1.2),
)


def step_targets(by_name: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 22's time targets measured in this run (those whose two variants ran), each with its verdict."""
    out = []
    for what, name, other, limit in STEP_TARGETS:
        if name in by_name and other in by_name:
            value = paired(by_name[name], by_name[other], "train", lambda a, b: a / b)
            out.append({"target": what, "value": value, "limit": limit, "holds": holds(value, limit, "x")})
    return out


def run_train(
    specs: list[MLPSpec],
    backends: list[str],
    *,
    device: str = "cpu",
    dtype_label: str = "float32",
    reps: int = 5,
    min_time: float = 0.02,
    memory: bool = True,
) -> dict[str, Any]:
    """Train-step rows of every model in ``specs``: JSON-ready (models, their variants, skipped)."""
    skipped: list[dict[str, str]] = []
    models = []
    for spec in specs:
        data = HostData.make(spec)
        reference = reference_parameters(spec, data)
        variants = build_train_variants(spec, data, backends, device, dtype_label, skipped)
        if not variants:
            continue
        with gc_paused():
            errors = {v.name: agreement(v, data.flat(), reference) for v in variants}
        timings = time_variants(variants, spec, reps, min_time)
        entries: list[dict[str, Any]] = []
        for v in variants:
            peak, method = peak_bytes(v) if memory else (None, None)
            entries.append(
                {
                    "name": v.name,
                    "backend": v.backend,
                    "kind": v.kind,
                    "ops": timings[v.name],
                    "agreement": errors[v.name],
                    "peak_bytes": peak,
                    "memory_method": method,
                }
            )
        by_name = {e["name"]: e for e in entries}
        torch_peak = by_name.get(f"torch:{TORCH_NN_OPTIM}", {}).get("peak_bytes")
        for e in entries:
            e["ratios"] = _ratios(e, by_name)
            e["memory_ratio_torch_nn"] = e["peak_bytes"] / torch_peak if torch_peak and e["peak_bytes"] else None
        spec_info = {"name": spec.name, "sizes": list(spec.sizes), "batch": spec.batch, "loss": spec.loss}
        spec_info |= {"lr": spec.lr, "momentum": spec.momentum, "check_steps": CHECK_STEPS}
        targets = step_targets(by_name) if spec.name == DEMO.name else []
        models.append({"model": spec.label, "spec": spec_info, "variants": entries, "targets": targets})
    kinds = [EAGER, HAND, RAW, TORCH_NN_OPTIM, JAX_JIT_HAND]
    return {"device": device, "dtype": dtype_label, "models": models, "skipped": skipped, "kinds": kinds}
