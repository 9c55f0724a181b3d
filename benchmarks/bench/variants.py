"""The Linear-layer variants timed side by side: portable_nn, the raw array-API bound, the baselines.

- ``<backend>:portable_nn``: :class:`portable_nn.Linear`, validation included;
- ``<backend>:raw``: the array-API bound: the same standard calls (three matmuls, bias add, bias sum, the SGD
  update) with no wrapper and no validation;
- ``torch.nn``: ``torch.nn.Linear`` + autograd + ``torch.optim.SGD`` on the same device (baseline a);
- ``numpy(hand)``: the textbook NumPy layer ``X @ W + b`` with ``W`` (in, out) (baseline b, CPU only);
- ``jax:jit(functional)`` / ``jax:jit(grad)``: ``jax.jit`` of ``linear`` + ``linear_backward`` against
  ``jax.jit(jax.grad)`` of the same loss ``0.5 * sum(y ** 2)``.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from portable_nn import Linear
from portable_nn import functional as F

from .backends import device_str, from_host, resolve_namespace
from .shapes import Data, Shape

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
    parameters: Callable[[], list[np.ndarray]] | None = None  # host float64 parameters (train-step variants)

    @property
    def name(self) -> str:
        return self.kind if self.kind in (TORCH_NN, NUMPY_HAND) else f"{self.backend}:{self.kind}"


def _no_sync(out: Any) -> None:
    return None


def sync_for(backend: str, device: Any) -> Callable[[Any], None]:
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


def memory_method(backend: str, device_label: str) -> str | None:
    if backend in ("numpy", "array_api_strict"):
        return "tracemalloc"
    if backend == "torch":
        return "torch-cuda-allocator" if device_label.startswith("cuda") else "torch-profiler"
    if backend == "cupy":
        return "cupy-memory-hook"
    if backend == "jax" and device_label.startswith("cpu"):
        return "rss"
    return None


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
    return Variant(backend, PNN, ops, sync_for(backend, device), layer.zero_grad, body, memory_method(backend, label))


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
    return Variant(backend, RAW, ops, sync_for(backend, device), None, train, memory_method(backend, label))


class TextbookLinear:
    """The textbook hand-written NumPy dense layer: ``W`` is (in, out), ``Y = X @ W + b``."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b

    def forward(self, X: np.ndarray) -> Any:
        self.X = X
        return X @ self.W + self.b

    def backward(self, G: np.ndarray) -> Any:
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
    memory = memory_method("torch", device_label)
    return Variant("torch", TORCH_NN, ops, sync_for("torch", device), prepare, body, memory)


def jax_jit_variants(device: Any, dtype: Any, data: Data) -> list[Variant]:
    """``jax.jit`` of the functional forward+backward, and ``jax.jit(jax.grad)`` of the same loss."""
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")
    xp = resolve_namespace("jax")
    x, w, b = (from_host(a, xp, device, dtype) for a in (data.x, data.weight, data.bias))

    def forward_backward(x: Any, w: Any, b: Any) -> Any:
        y = F.linear(x, w, b)
        return F.linear_backward(y, x, w)  # dL/dy = y for L = 0.5 * sum(y ** 2)

    functional = jax.jit(forward_backward)

    def loss(x: Any, w: Any, b: Any) -> Any:
        y = x @ w.T + b
        return 0.5 * jnp.sum(y * y)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    sync = sync_for("jax", device)
    return [
        Variant("jax", JIT_FUNCTIONAL, {"fwd+bwd": lambda: functional(x, w, b)}, sync),
        Variant("jax", JIT_GRAD, {"fwd+bwd": lambda: grad(x, w, b)}, sync),
    ]
