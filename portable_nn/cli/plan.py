"""Which backend × device × dtype combinations the command line trains on, and why the others cannot run here."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._backend import device_matrix, resolve_device, resolve_namespace, supported_dtypes

__all__ = ["DEFAULT_SKIPS", "RUN_ORDER", "Plan", "RunSpec", "one_line", "plan_runs"]

#: Order of the runs (NumPy first: it is the reference of the max |Δ| column).
RUN_ORDER = ("numpy", "torch", "jax", "array_api_strict", "cupy", "dask")
#: Backends left out of the default run, with the reason shown in the output.
DEFAULT_SKIPS = {
    "dask": "lazy backend, 0.1–0.4 s per training step here (graphs built and run per step); "
    "run it with --backend dask",
}
#: array-api-strict's devices are stand-ins of each other; the others run on request (--device device2).
STRICT_DEFAULT_DEVICES = ("cpu", "device1")


def one_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: how a failure is shown in one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class RunSpec:
    backend: str
    device: str
    dtype: str

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.device}/{self.dtype}"


@dataclass
class Plan:
    runs: list[RunSpec] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # backend, device, dtype, reason

    def skipped_lines(self) -> list[str]:
        """``"torch/cuda: no CUDA device ..."`` for each combination that cannot run ("-" parts left out)."""
        return ["/".join(p for p in (b, d, t) if p != "-") + f": {why}" for b, d, t, why in self.skipped]


def _device_matches(label: str, wanted: str) -> bool:
    return (
        label == wanted
        or (wanted in ("cpu", "cuda") and label.startswith(wanted + ":"))
        or (wanted == "cuda:0" and label == "cuda")
    )


def plan_runs(backends: list[str] | None, devices: list[str] | None, dtypes: list[str]) -> Plan:
    """Every backend × device × dtype to train on, and what cannot run here with the reason."""
    plan = Plan()
    explicit = backends is not None
    names = [n for n in RUN_ORDER if n in backends] if backends is not None else list(RUN_ORDER)
    for name in names:
        if not explicit and name in DEFAULT_SKIPS:
            plan.skipped.append((name, "-", "-", DEFAULT_SKIPS[name]))
            continue
        try:
            entries = device_matrix(name)
        except Exception as exc:  # the package is there but fails to import or to list devices
            plan.skipped.append((name, "-", "-", one_line(exc)))
            continue
        if all(reason is not None for _, reason in entries):  # unusable here (not installed, no GPU)
            plan.skipped += [(name, label, "-", (reason or "").removeprefix(f"{name}: ")) for label, reason in entries]
            continue
        if devices is None:
            chosen = [
                (label, reason)
                for label, reason in entries
                if name != "array_api_strict" or label in STRICT_DEFAULT_DEVICES
            ]
        else:
            chosen = [(label, reason) for label, reason in entries if any(_device_matches(label, w) for w in devices)]
            for wanted in devices:
                if not any(_device_matches(label, wanted) for label, _ in entries):
                    known = ", ".join(label for label, reason in entries if reason is None) or "none"
                    plan.skipped.append((name, wanted, "-", f"{name} has no device {wanted!r} here (has: {known})"))
        for label, reason in chosen:
            if reason is not None:
                plan.skipped.append((name, label, "-", reason.removeprefix(f"{name}: ")))
                continue
            xp = resolve_namespace(name)
            usable = supported_dtypes(xp, resolve_device(xp, label))
            for dtype in dtypes:
                if dtype in usable:
                    plan.runs.append(RunSpec(name, label, dtype))
                else:
                    hint = " (needs JAX_ENABLE_X64=1 before jax is imported)" if name == "jax" else ""
                    plan.skipped.append((name, label, dtype, f"{name} on {label} has no {dtype}{hint}"))
    return plan
