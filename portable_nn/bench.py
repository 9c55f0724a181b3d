"""Benchmark harness: ``portable_nn.Linear`` side by side with ``torch.nn.Linear``, textbook NumPy and the bound.

``python -m portable_nn.bench --quick`` (``--help`` for the options; ``benchmarks/README.md`` explains the
method). For each device x dtype x shape, every variant below runs on the same numbers and is timed
interleaved (A B C A B C ..., the order rotating each repetition) so machine noise hits all of them alike:

- ``<backend>:portable_nn``: :class:`portable_nn.Linear`, validation included;
- ``<backend>:raw``: the array-API bound: the same standard calls (three matmuls, bias add, bias sum, the SGD
  update) with no wrapper and no validation;
- ``torch.nn``: ``torch.nn.Linear`` + autograd + ``torch.optim.SGD`` on the same device (baseline a);
- ``numpy(hand)``: the textbook NumPy layer ``X @ W + b`` with ``W`` (in, out) (baseline b, CPU only);
- ``jax:jit(functional)`` / ``jax:jit(grad)``: ``jax.jit`` of ``linear`` + ``linear_backward`` against
  ``jax.jit(jax.grad)`` of the same loss ``0.5 * sum(y ** 2)``.

Ops: ``forward``; ``backward`` (grads cleared, then backward of the last forward); ``step`` (the SGD update);
``fwd+bwd``; ``train`` (clear grads, forward, backward, step). Reported per op: median and spread of the
per-call time, GF/s, ratios to ``torch.nn``, to the bound and to ``numpy(hand)``, the overhead over the bound
in µs; per variant: the peak bytes one train step allocates.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import __version__
from . import functional as F
from ._backend import (
    available_devices,
    device_str,
    from_host,
    installed_backends,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_dtypes,
)
from .errors import PortableNNError
from .linear import Linear

__all__ = ["Shape", "main", "run"]

OPS: tuple[str, ...] = ("forward", "backward", "step", "fwd+bwd", "train")
CPU_SHAPES: tuple[str, ...] = ("32x64->64", "256x512->512", "1024x1024->1024", "4096x2048->2048", "8x128x512->512")
QUICK_SHAPES: tuple[str, ...] = ("32x64->64", "256x512->512", "1024x1024->1024", "4x64x256->256")
GPU_SHAPES: tuple[str, ...] = ("8192x4096->4096", "65536x1024->1024")
CPU_BACKENDS: tuple[str, ...] = ("numpy", "torch", "jax")
GPU_BACKENDS: tuple[str, ...] = ("torch", "cupy", "jax")
LR = 1e-6  # tiny, so thousands of timed steps leave the parameters (and so the timings) where they were

TORCH_NN, NUMPY_HAND, PNN, RAW, JIT_FUNCTIONAL, JIT_GRAD = (
    "torch.nn",
    "numpy(hand)",
    "portable_nn",
    "raw",
    "jit(functional)",
    "jit(grad)",
)

Fn = Callable[[], Any]


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Shape:
    """An input (*lead, in_features) mapped to (*lead, out_features); parsed from ``"32x64->64"`` or ``"32x64:64"``."""

    lead: tuple[int, ...]
    in_features: int
    out_features: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        try:
            left, out = text.replace(" ", "").replace("->", ":").split(":")
            dims = tuple(int(d) for d in left.lower().split("x"))
            shape = cls(dims[:-1], dims[-1], int(out))
        except ValueError:
            expected = "expected 'BATCHxIN->OUT' or 'AxBxIN->OUT' (or with ':' for '->'), e.g. '32x64->64'"
            raise ValueError(f"bad shape {text!r}: {expected}") from None
        if not shape.lead or min(*shape.lead, shape.in_features, shape.out_features) <= 0:
            raise ValueError(f"bad shape {text!r}: every size must be >= 1 and there must be a batch axis")
        return shape

    @property
    def rows(self) -> int:
        return math.prod(self.lead)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (*self.lead, self.in_features)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.lead, self.out_features)

    @property
    def label(self) -> str:
        return f"B{'x'.join(map(str, self.lead))} {self.in_features}->{self.out_features}"

    def flops(self, op: str) -> float:
        """Floating-point operations of ``op`` (a matmul of m x k by k x n counts 2mkn; adds and sums 1 each)."""
        mm = 2.0 * self.rows * self.in_features * self.out_features
        bias = float(self.rows * self.out_features)
        params = float(self.out_features * (self.in_features + 1))
        return {
            "forward": mm + bias,
            "backward": 2 * mm + bias,
            "step": 2 * params,
            "fwd+bwd": 3 * mm + 2 * bias,
            "train": 3 * mm + 2 * bias + 2 * params,
        }[op]


# --------------------------------------------------------------------------- variants


@dataclass
class Variant:
    """One implementation under test: a callable per op returning what to synchronize on."""

    backend: str
    kind: str
    ops: dict[str, Fn]
    sync: Callable[[Any], None]
    train_prepare: Fn | None = None
    train_body: Fn | None = None
    memory: str | None = None  # how peak memory is measured, None = not measured

    @property
    def name(self) -> str:
        return self.kind if self.kind in (TORCH_NN, NUMPY_HAND) else f"{self.backend}:{self.kind}"


def _no_sync(out: Any) -> None:
    return None


def _sync_for(backend: str, device: Any) -> Callable[[Any], None]:
    """Wait until the work behind ``out`` is done (asynchronous backends return before it is)."""
    if backend == "jax":
        jax = importlib.import_module("jax")
        return lambda out: None if out is None else jax.block_until_ready(out)
    if backend == "torch" and getattr(device, "type", "cpu") == "cuda":
        torch = importlib.import_module("torch")
        return lambda out: torch.cuda.synchronize(device)
    if backend == "cupy":
        cupy = importlib.import_module("cupy")
        return lambda out: cupy.cuda.Device(device.id).synchronize()
    return _no_sync


def _memory_method(backend: str, device_label: str) -> str | None:
    if backend in ("numpy", "array_api_strict"):
        return "tracemalloc"
    if backend == "torch":
        return "torch-cuda-allocator" if device_label.startswith("cuda") else "torch-profiler"
    if backend == "cupy":
        return "cupy-memory-hook"
    if backend == "jax" and device_label.startswith("cpu"):
        return "rss"
    return None


@dataclass
class Data:
    """Host float64 numbers every variant of a case starts from."""

    x: np.ndarray
    g: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def make(cls, shape: Shape, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(shape.in_features)
        return cls(
            rng.standard_normal(shape.input_shape),
            rng.standard_normal(shape.output_shape),
            rng.uniform(-bound, bound, (shape.out_features, shape.in_features)),
            rng.uniform(-bound, bound, (shape.out_features,)),
        )


def portable_nn_variant(backend: str, device: Any, dtype: Any, shape: Shape, data: Data) -> Variant:
    """:class:`portable_nn.Linear` used as documented."""
    xp = resolve_namespace(backend)
    layer = Linear(shape.in_features, shape.out_features, xp=xp, device=device, dtype=dtype, init="zeros")
    layer.set_parameters(
        {"weight": from_host(data.weight, xp, device, dtype), "bias": from_host(data.bias, xp, device, dtype)}
    )
    x, g = from_host(data.x, xp, device, dtype), from_host(data.g, xp, device, dtype)

    def forward() -> Any:
        return layer(x)

    def backward() -> Any:
        layer.zero_grad()
        return layer.backward(g), layer.grad_weight, layer.grad_bias

    def step() -> Any:
        layer.step(LR)
        return layer.weight, layer.bias

    def fwd_bwd() -> Any:
        layer.zero_grad()
        layer(x)
        return layer.backward(g), layer.grad_weight, layer.grad_bias

    def body() -> Any:
        layer(x)
        layer.backward(g)
        layer.step(LR)
        return layer.weight, layer.bias

    def train() -> Any:
        layer.zero_grad()
        return body()

    label = device_str(xp, device)
    ops = {"forward": forward, "backward": backward, "step": step, "fwd+bwd": fwd_bwd, "train": train}
    return Variant(backend, PNN, ops, _sync_for(backend, device), layer.zero_grad, body, _memory_method(backend, label))


def raw_variant(backend: str, device: Any, dtype: Any, shape: Shape, data: Data) -> Variant:
    """The bound: the standard calls ``Linear`` makes, inline, with no validation and no object around them."""
    xp = resolve_namespace(backend)
    x, g = from_host(data.x, xp, device, dtype), from_host(data.g, xp, device, dtype)
    s = SimpleNamespace(w=from_host(data.weight, xp, device, dtype), b=from_host(data.bias, xp, device, dtype))
    s.gw, s.gb = s.w, s.b
    rows, n_in, n_out = shape.rows, shape.in_features, shape.out_features
    flat = len(shape.lead) == 1

    def forward() -> Any:
        y = x @ s.w.T if flat else xp.reshape(xp.reshape(x, (rows, n_in)) @ s.w.T, shape.output_shape)
        y += s.b  # in place on the fresh matmul result; JAX and Dask rebind instead
        return y

    def backward() -> Any:
        if flat:
            gx, s.gw = g @ s.w, g.T @ x
            s.gb = xp.sum(g, axis=0)
        else:
            g2, x2 = xp.reshape(g, (rows, n_out)), xp.reshape(x, (rows, n_in))
            gx, s.gw = xp.reshape(g2 @ s.w, shape.input_shape), g2.T @ x2
            s.gb = xp.sum(g2, axis=0)
        return gx, s.gw, s.gb

    def step() -> Any:
        w = s.gw * (-LR)
        w += s.w
        b = s.gb * (-LR)
        b += s.b
        s.w, s.b = w, b
        return w, b

    def fwd_bwd() -> Any:
        forward()
        return backward()

    def train() -> Any:
        forward()
        backward()
        return step()

    ops = {"forward": forward, "backward": backward, "step": step, "fwd+bwd": fwd_bwd, "train": train}
    label = device_str(xp, device)
    return Variant(backend, RAW, ops, _sync_for(backend, device), None, train, _memory_method(backend, label))


class TextbookLinear:
    """The textbook hand-written NumPy dense layer: ``W`` is (in, out), ``Y = X @ W + b``."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.X = X
        return X @ self.W + self.b

    def backward(self, G: np.ndarray) -> np.ndarray:
        X = self.X
        if X.ndim != 2:
            X, G = X.reshape(-1, X.shape[-1]), G.reshape(-1, G.shape[-1])
        self.dW = X.T @ G
        self.db = G.sum(axis=0)
        return (G @ self.W.T).reshape(self.X.shape)

    def step(self, lr: float) -> None:
        self.W -= lr * self.dW
        self.b -= lr * self.db


def numpy_variant(dtype_label: str, shape: Shape, data: Data) -> Variant:
    """Baseline (b): :class:`TextbookLinear`."""
    layer = TextbookLinear(np.ascontiguousarray(data.weight.T, dtype_label), data.bias.astype(dtype_label))
    x, g = data.x.astype(dtype_label), data.g.astype(dtype_label)

    def backward() -> Any:
        return layer.backward(g)

    def step() -> None:
        layer.step(LR)

    def train() -> None:
        layer.forward(x)
        layer.backward(g)
        layer.step(LR)

    def fwd_bwd() -> Any:
        layer.forward(x)
        return layer.backward(g)

    ops = {"forward": lambda: layer.forward(x), "backward": backward, "step": step, "fwd+bwd": fwd_bwd, "train": train}
    return Variant("numpy", NUMPY_HAND, ops, _no_sync, None, train, "tracemalloc")


def torch_variant(device_label: str, dtype_label: str, data: Data) -> Variant:
    """Baseline (a): ``torch.nn.Linear`` + autograd + ``torch.optim.SGD``; ``x`` requires grad like ours returns it."""
    torch = importlib.import_module("torch")
    device, dtype = torch.device(device_label), getattr(torch, dtype_label)
    lin = torch.nn.Linear(data.weight.shape[1], data.weight.shape[0], device=device, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(data.weight))
        lin.bias.copy_(torch.from_numpy(data.bias))
    x = torch.from_numpy(data.x).to(device, dtype).requires_grad_(True)
    g = torch.from_numpy(data.g).to(device, dtype)
    w, b = lin.weight, lin.bias
    opt = torch.optim.SGD(lin.parameters(), lr=LR)
    twin = copy.deepcopy(lin)  # the backward op replays one graph (retain_graph): its weights must not step
    kept = twin(x)

    def clear() -> None:  # the cheapest way to clear grads (opt.zero_grad() in train)
        w.grad = b.grad = x.grad = None

    def backward() -> Any:
        twin.weight.grad = twin.bias.grad = x.grad = None
        kept.backward(g, retain_graph=True)
        return x.grad

    def step() -> Any:
        opt.step()
        return w

    def fwd_bwd() -> Any:
        clear()
        lin(x).backward(g)
        return x.grad

    def prepare() -> None:
        opt.zero_grad()
        x.grad = None

    def body() -> Any:
        lin(x).backward(g)
        opt.step()
        return w

    def train() -> Any:
        prepare()
        return body()

    ops = {"forward": lambda: lin(x), "backward": backward, "step": step, "fwd+bwd": fwd_bwd, "train": train}
    memory = _memory_method("torch", device_label)
    return Variant("torch", TORCH_NN, ops, _sync_for("torch", device), prepare, body, memory)


def jax_jit_variants(device: Any, dtype: Any, data: Data) -> list[Variant]:
    """``jax.jit`` of the functional forward+backward, and ``jax.jit(jax.grad)`` of the same loss."""
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")
    xp = resolve_namespace("jax")
    x, w, b = (from_host(a, xp, device, dtype) for a in (data.x, data.weight, data.bias))

    @jax.jit
    def functional(x: Any, w: Any, b: Any) -> Any:
        y = F.linear(x, w, b)
        return F.linear_backward(y, x, w)  # dL/dy = y for L = 0.5 * sum(y ** 2)

    def loss(x: Any, w: Any, b: Any) -> Any:
        y = x @ w.T + b
        return 0.5 * jnp.sum(y * y)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    sync = _sync_for("jax", device)
    return [
        Variant("jax", JIT_FUNCTIONAL, {"fwd+bwd": lambda: functional(x, w, b)}, sync),
        Variant("jax", JIT_GRAD, {"fwd+bwd": lambda: grad(x, w, b)}, sync),
    ]


# --------------------------------------------------------------------------- peak memory


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _peak_tracemalloc(body: Fn) -> int:
    """Peak bytes allocated (and traced: NumPy reports its buffers) while ``body`` runs, above the start."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        body()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _peak_torch_profiler(body: Fn) -> int:
    """Peak bytes torch's CPU allocator holds for blocks allocated while ``body`` runs (profiler events)."""
    profiler = importlib.import_module("torch.profiler")
    event_type = importlib.import_module("torch._C._profiler")._EventType
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        body()
    events: list[tuple[int, int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == event_type.Allocation:
            events.append((event.start_time_ns, event.extra_fields.alloc_size, event.extra_fields.ptr))
    live: set[int] = set()
    current = peak = 0
    for _, size, ptr in sorted(events):
        if size > 0:
            live.add(ptr)
        elif ptr not in live:
            continue  # a block from before the step: tracemalloc would not see its free either
        else:
            live.discard(ptr)
        current += size
        peak = max(peak, current)
    return peak


def _peak_torch_cuda(body: Fn) -> int:
    torch = importlib.import_module("torch")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    body()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _peak_cupy(body: Fn) -> int:
    cupy = importlib.import_module("cupy")

    class PeakHook(cupy.cuda.MemoryHook):
        name = "portable_nn_bench_peak"

        def __init__(self) -> None:
            self.current = self.peak = 0
            self.mine: set[int] = set()

        def malloc_postprocess(self, **kw: Any) -> None:
            self.mine.add(kw["mem_ptr"])
            self.current += kw["mem_size"]
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kw: Any) -> None:
            if kw["mem_ptr"] in self.mine:
                self.mine.discard(kw["mem_ptr"])
                self.current -= kw["mem_size"]

    hook = PeakHook()
    with hook:
        body()
        cupy.cuda.Device().synchronize()
    return hook.peak


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _peak_rss(body: Fn) -> int:
    """Rise of the resident set's high-water mark (reset through /proc/self/clear_refs) while ``body`` runs."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    base = _rss_kib("VmRSS")
    jax = importlib.import_module("jax")
    jax.block_until_ready(body())
    return max(0, _rss_kib("VmHWM") - base) * 1024


_PEAK: dict[str, Callable[[Fn], int]] = {
    "tracemalloc": _peak_tracemalloc,
    "torch-profiler": _peak_torch_profiler,
    "torch-cuda-allocator": _peak_torch_cuda,
    "cupy-memory-hook": _peak_cupy,
    "rss": _peak_rss,
}


def peak_bytes(variant: Variant) -> tuple[int | None, str | None]:
    """Peak bytes one train step (after clearing grads) allocates, and how it was measured."""
    if variant.memory is None or variant.train_body is None:
        return None, None
    if variant.train_prepare is not None:
        variant.train_prepare()
    gc.collect()
    try:
        with _gc_paused():
            return _PEAK[variant.memory](variant.train_body), variant.memory
    except Exception as exc:  # a private profiler API moved, /proc not writable...: say so, don't guess
        return None, f"{variant.memory} failed: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- timing


def _timed(fn: Fn, sync: Callable[[Any], None], number: int) -> float:
    """Seconds per call of ``number`` back-to-back calls, device synchronized before and after."""
    sync(None)
    start = time.perf_counter()
    out = None
    for _ in range(number):
        out = fn()
    sync(out)
    return (time.perf_counter() - start) / number


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: list[float], number: int, flops: float) -> dict[str, Any]:
    median = _quantile(samples, 0.5)
    q25, q75 = _quantile(samples, 0.25), _quantile(samples, 0.75)
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


def time_variants(variants: list[Variant], shape: Shape, reps: int, min_time: float) -> dict[str, dict[str, Any]]:
    """Median/spread per variant and op; repetitions interleave the variants, rotating their order."""
    numbers: dict[tuple[str, str], int] = {}
    with _gc_paused():
        for v in variants:
            for op, fn in v.ops.items():
                _timed(fn, v.sync, 1)  # first call: compile (jit, JAX's eager ops), allocate, page in
                once = _timed(fn, v.sync, 1)  # a warm call sizes the loop
                number = max(1, min(100_000, math.ceil(min_time / max(once, 1e-9))))
                if number > 1:
                    _timed(fn, v.sync, number)  # warm-up at the measured loop length
                numbers[v.name, op] = number
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in numbers}
        for rep in range(reps):
            for op in OPS:
                order = [v for v in variants if op in v.ops]
                if not order:
                    continue
                turn = rep % len(order)
                for v in order[turn:] + order[:turn]:
                    samples[v.name, op].append(_timed(v.ops[op], v.sync, numbers[v.name, op]))
    result: dict[str, dict[str, Any]] = {v.name: {} for v in variants}
    for (name, op), values in samples.items():
        result[name][op] = summarize(values, numbers[name, op], shape.flops(op))
    return result


# --------------------------------------------------------------------------- one case


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


def _skip(config: Config, what: str, reason: str, **where: str) -> None:
    entry = {"what": what, "reason": reason, **where}
    if entry not in config.skipped:
        config.skipped.append(entry)
        print(f"  skipped {what}{' (' + ', '.join(where.values()) + ')' if where else ''}: {reason}", file=sys.stderr)


def _backend_place(config: Config, backend: str, dtype_label: str) -> tuple[Any, Any] | None:
    """(device, dtype) objects of ``backend`` for the run, or None (recorded as skipped) if it cannot run."""
    if backend == "dask":
        _skip(config, backend, "lazy backend: timings would measure graph building, not compute (not supported)")
        return None
    if backend not in installed_backends():
        _skip(config, backend, "not installed")
        return None
    try:
        xp = resolve_namespace(backend)
        device = resolve_device(xp, config.device)
        if dtype_label not in supported_dtypes(xp, device):
            raise PortableNNError(f"{dtype_label} is not supported here")
        return device, resolve_dtype(xp, dtype_label)
    except (PortableNNError, ImportError) as exc:
        _skip(config, backend, str(exc), device=config.device, dtype=dtype_label)
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
            _skip(config, TORCH_NN, f"torch has no device {device_label} here", device=device_label)
        elif dtype_label not in supported_dtypes(xp):
            _skip(config, TORCH_NN, f"torch has no {dtype_label}", dtype=dtype_label)
        else:
            variants.append(torch_variant(device_label, dtype_label, data()))
    if config.device != "cpu":
        _skip(config, NUMPY_HAND, "NumPy runs on the CPU only", device=config.device)
    elif dtype_label in ("float16", "float32", "float64"):
        variants.append(numpy_variant(dtype_label, shape, data()))
    else:
        _skip(config, NUMPY_HAND, f"numpy has no {dtype_label}", dtype=dtype_label)
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


def _paired(v: dict[str, Any], other: dict[str, Any], op: str, combine: Callable[[float, float], float]) -> float:
    """Median over repetitions of ``combine(v, other)``: each pair was timed back to back in one round."""
    pairs = zip(v["ops"][op]["samples_s"], other["ops"][op]["samples_s"], strict=True)
    return _quantile([combine(a, b) for a, b in pairs], 0.5)


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
            ratios[key] = {op: _paired(v, other, op, lambda a, b: a / b) for op in common}
            of_medians[key] = {op: v["ops"][op]["median_s"] / other["ops"][op]["median_s"] for op in common}
        v["ratios"], v["ratios_of_medians"] = ratios, of_medians
        v["reference"] = ref["name"] if ref else None
        common = [op for op in v["ops"] if ref and op in ref["ops"]]
        v["overhead_us"] = {op: _paired(v, ref, op, lambda a, b: (a - b) * 1e6) for op in common} if ref else {}
        # The least-disturbed estimate (timeit's): fastest sample minus the bound's fastest sample.
        v["overhead_us_min"] = {op: (v["ops"][op]["min_s"] - ref["ops"][op]["min_s"]) * 1e6 for op in common}
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
        entry = {"name": v.name, "backend": v.backend, "kind": v.kind, "ops": timings[v.name]}
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


# --------------------------------------------------------------------------- targets


def _find(cases: list[dict[str, Any]], label: str, name: str) -> dict[str, Any] | None:
    for case in cases:
        if case["shape"]["label"] == label:
            for v in case["variants"]:
                if v["name"] == name:
                    return v | {"case": case}
    return None


def evaluate_targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, checked against this run's figures (missing variants are left out)."""
    out: list[dict[str, Any]] = []

    def add(name: str, case: dict[str, Any], value: float, limit: float, unit: str = "x") -> None:
        where = f"{case['device']} {case['dtype']} {case['shape']['label']}"
        out.append(
            {"target": name, "where": where, "value": value, "limit": limit, "unit": unit, "holds": value <= limit}
        )

    small, large = "B32 64->64", ("B1024 1024->1024", "B4096 2048->2048")
    for backend in ("torch", "cupy"):
        pnn = _find(cases, small, f"{backend}:{PNN}")
        if pnn and "torch.nn" in pnn["ratios"] and backend == "torch":
            add("small fwd+bwd vs torch.nn+autograd", pnn["case"], pnn["ratios"]["torch.nn"]["fwd+bwd"], 0.40)
    for backend in ("numpy", "torch"):
        pnn = _find(cases, small, f"{backend}:{PNN}")
        if pnn and pnn["overhead_us"]:
            add(f"{backend} small fwd+bwd overhead over raw", pnn["case"], pnn["overhead_us"]["fwd+bwd"], 5.0, "µs")
            out[-1]["min_based"] = pnn["overhead_us_min"]["fwd+bwd"]  # shown beside it, not judged
        for label in large:
            pnn = _find(cases, label, f"{backend}:{PNN}")
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


# --------------------------------------------------------------------------- report


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{seconds * 1e6:.2f}µs"


def _fmt_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 2**20:
        return f"{count / 2**10:.1f}KiB"
    return f"{count / 2**20:.1f}MiB"


def _fmt(value: float | None, spec: str) -> str:
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
        return _fmt(ratios.get(key, {}).get(op), ".2f")

    fb = ops.get("fwd+bwd", {})
    peak = v["peak_bytes"]
    return [
        v["name"],
        *(_fmt_time(med(op)) for op in ("forward", "backward", "step", "fwd+bwd")),
        f"{fb['spread'] * 100:.0f}%" if fb else "-",
        _fmt_time(med("train")),
        _fmt(fb.get("gflops"), ".1f"),
        ratio("torch.nn"),
        ratio("reference"),
        ratio("numpy(hand)"),
        _fmt(v["overhead_us"].get("fwd+bwd"), "+.1f"),
        ratio("torch.nn", "train"),
        _fmt_bytes(peak),
    ]


def format_text(result: dict[str, Any]) -> str:
    lines = [_header(result), ""]
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
    lines += [*_legend(), "", *_targets_text(result["targets"])]
    if result["skipped"]:
        lines += ["", "skipped:"] + [f"  {s['what']}: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines)


def format_markdown(result: dict[str, Any]) -> str:
    """The same table as Markdown (what README.md's Performance section shows)."""
    names = ["shape"] + [name for name, _ in COLUMNS]
    lines = [_header(result), ""]
    for case in result["cases"]:
        lines.append(f"**{case['device']} · {case['dtype']} · {case['shape']['label']}**")
        lines += ["", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for v in case["variants"]:
            lines.append("| " + " | ".join([case["shape"]["label"], *_row(v)]) + " |")
        lines.append("")
    return "\n".join(lines + _targets_text(result["targets"]))


def _header(result: dict[str, Any]) -> str:
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
        value = f"{t['value']:.2f}{t['unit']}" if t["unit"] == "x" else f"{t['value']:+.1f} {t['unit']}"
        limit = f"{t['limit']:.2f}{t['unit']}" if t["unit"] == "x" else f"{t['limit']:.0f} {t['unit']}"
        extra = f"; min-sample based {t['min_based']:+.1f} {t['unit']}" if "min_based" in t else ""
        verdict = "holds " if t["holds"] else "MISSED"
        lines.append(f"  {verdict} {t['target']} [{t['where']}]: {value} (<= {limit}){extra}")
    return lines


def _spread_text(values: list[float], spec: str) -> str:
    """Median of per-run figures, with the range over runs when there are several."""
    if not values:
        return "-"
    mid = _quantile(values, 0.5)
    if len(values) == 1:
        return format(mid, spec)
    return f"{format(mid, spec)} ({format(min(values), spec)}–{format(max(values), spec)})"


def format_summary(results: list[dict[str, Any]]) -> str:
    """Markdown summary of several runs of the same cases: medians over runs, (min–max) over runs.

    One row per portable_nn variant (and JAX's jit(functional)); baselines appear as their times.
    """

    def per_run(label: str, name: str, get: Callable[[dict[str, Any]], float | None]) -> list[float]:
        values = []
        for result in results:
            v = _find(result["cases"], label, name)
            value = get(v) if v else None
            if value is not None:
                values.append(value)
        return values

    def fb_time(label: str, name: str | None) -> str:
        times = per_run(label, name, lambda x: x["ops"].get("fwd+bwd", {}).get("median_s")) if name else []
        return _fmt_time(_quantile(times, 0.5)) if times else "-"

    first = results[0]
    lines = [_header(first), f"{len(results)} runs; ratio cells: median over runs (min–max over runs)", ""]
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
                return _spread_text(per_run(label, name, lambda x: x["ratios"].get(key, {}).get(op)), ".2f")

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
                _spread_text(overhead, "+.1f"),
                _spread_text(overhead_min, "+.1f"),
                ratio("torch.nn", "train"),
                _spread_text(memory, ".2f"),
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
                        other = _find(result["cases"], case["shape"]["label"], v["name"])
                        if other and op in other["ratios"].get(key, {}):
                            values.append(other["ratios"][key][op])
                    by_op[op] = _quantile(values, 0.5)
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


# --------------------------------------------------------------------------- environment


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "portable_nn": __version__}
    for name in ("numpy", "torch", "jax", "jaxlib", "cupy", "array_api_compat", "array_api_strict"):
        module = sys.modules.get(name)
        if module is None and importlib.util.find_spec(name) is not None and name in ("numpy", "array_api_compat"):
            module = importlib.import_module(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    blas: list[dict[str, Any]] = []
    with contextlib.suppress(ImportError):  # optional tooling: which BLAS kernel numpy (and torch) run
        threadpoolctl = importlib.import_module("threadpoolctl")
        blas = [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "prefix")}
            for info in threadpoolctl.threadpool_info()
        ]
    torch = sys.modules.get("torch")
    env_names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "blas": blas,
        "torch_threads": torch.get_num_threads() if torch else None,
        "env": {k: os.environ[k] for k in env_names if k in os.environ},
        "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# --------------------------------------------------------------------------- entry point


def run(config: Config, quick: bool = False) -> dict[str, Any]:
    """Run every case of ``config``; the JSON-ready result (machine, versions, cases, targets, skipped)."""
    for backend in config.backends:  # import what will run before describing the machine
        with contextlib.suppress(ImportError, PortableNNError):
            if backend != "dask":
                resolve_namespace(backend)
    with contextlib.suppress(ImportError):
        importlib.import_module("torch")
    machine = _machine()
    cases = []
    total = len(config.dtypes) * len(config.shapes)
    for i, (dtype_label, shape) in enumerate(((d, s) for d in config.dtypes for s in config.shapes), 1):
        start = time.perf_counter()
        case = run_case(config, dtype_label, shape)
        took = time.perf_counter() - start
        print(f"[{i}/{total}] {config.device} {dtype_label} {shape.label}: {took:.1f} s", file=sys.stderr, flush=True)
        if case is not None:
            cases.append(case)
    machine["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    settings = {"quick": quick, "reps": config.reps, "min_time": config.min_time, "device": config.device, "lr": LR}
    return {
        "schema": "portable_nn.bench/1",
        "machine": machine,
        "versions": _versions(),
        "settings": settings,
        "cases": cases,
        "targets": evaluate_targets(cases),
        "skipped": config.skipped,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portable_nn.bench",
        description="Time portable_nn.Linear against torch.nn.Linear+autograd, textbook NumPy and the raw "
        "array-API bound (forward, backward, step, fwd+bwd, train step), interleaved in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (< 2 minutes on 2 cores)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (GPU shapes, float32+bfloat16)")
    parser.add_argument(
        "--backends",
        help=f"comma list (default cpu: {','.join(CPU_BACKENDS)}; cuda: "
        f"{','.join(GPU_BACKENDS)}); also array_api_strict",
    )
    parser.add_argument("--dtypes", help="comma list (default cpu: float32; cuda: float32,bfloat16)")
    parser.add_argument("--shapes", help="comma list like 32x64->64,8x128x512->512 (BATCH[xSEQ]xIN->OUT)")
    parser.add_argument("--reps", type=int, help="repetitions per variant and op (default 9, quick 5)")
    parser.add_argument("--min-time", type=float, help="seconds per sample; calls are looped to reach it")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch and BLAS (through threadpoolctl) threads; default 1 on CPU (see benchmarks/README.md), "
        "0 = leave the libraries' own defaults; GPU runs leave them unless given",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG: ratio vs shape per backend")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--load",
        metavar="PATH",
        action="append",
        help="re-render a saved --json run (table, --plot), running nothing; repeat it to summarize several runs",
    )
    return parser


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m portable_nn.bench`` / ``python -m portable_nn bench``)."""
    args = _parser().parse_args(argv)
    if args.load:
        results = [json.loads(Path(path).read_text()) for path in args.load]
        if len(results) == 1:
            print(format_markdown(results[0]) if args.markdown else format_text(results[0]))
        else:
            print(format_summary(results))
        if args.plot:
            plot(median_of_runs(results), args.plot)
        return 0
    gpu = args.device.startswith("cuda")
    try:
        shapes = [
            Shape.parse(s)
            for s in _csv(args.shapes) or (GPU_SHAPES if gpu else QUICK_SHAPES if args.quick else CPU_SHAPES)
        ]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    backends = _csv(args.backends) or [b for b in (GPU_BACKENDS if gpu else CPU_BACKENDS) if b in installed_backends()]
    unknown = [b for b in backends if b not in ("numpy", "torch", "jax", "cupy", "array_api_strict", "dask")]
    if unknown:
        print(f"error: unknown backends {unknown}", file=sys.stderr)
        return 2
    config = Config(
        backends=backends,
        device=args.device,
        dtypes=_csv(args.dtypes) or (["float32", "bfloat16"] if gpu else ["float32"]),
        shapes=shapes,
        reps=args.reps or (5 if args.quick else 9),
        min_time=args.min_time if args.min_time is not None else (0.02 if args.quick else 0.05),
        memory=not args.no_memory,
    )
    threads = args.threads if args.threads is not None else (0 if gpu else 1)
    if threads:
        # Interleaving backends on few cores: a library's idle worker threads spin for a while after its
        # call and steal the core the next variant's threads wait for (measured: torch at 1.70x its own
        # bound when timed right after 2-thread OpenBLAS; 0.99x with OpenBLAS at 1 thread).
        _limit_threads(threads)
    if gpu:  # JAX would otherwise take 75% of the GPU at its first array and starve torch/CuPy
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    result = run(config, quick=args.quick)
    print(format_markdown(result) if args.markdown else format_text(result))
    if not result["cases"]:
        print(f"nothing could run on {config.device} here: see 'skipped' above", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
    if args.plot:
        plot(result, args.plot)
    return 0 if result["cases"] else 1


def _limit_threads(n: int) -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module("torch").set_num_threads(n)
    try:
        importlib.import_module("threadpoolctl").threadpool_limits(n)
    except ImportError:
        print("warning: threadpoolctl is not installed: BLAS threads are not limited", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
