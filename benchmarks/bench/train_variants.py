"""Train-step variants of one MLP on one backend; each returns a Variant with one op, ``train``.

- ``portable eager``: ``portable_nn.Sequential`` + loss object + ``portable_nn.SGD`` (zero_grad, backward, step);
- ``train_step(compile=False)`` / ``train_step(compile='auto')``: ``portable_nn.train_step`` when it exists;
- ``hand``: the same step in plain calls of the backend library itself (NumPy, torch without autograd), in place;
- ``raw``: the array-API bound: :func:`~.train_models.step_math` through the array-API namespace, rebinding;
- ``torch.nn+optim`` (torch only): ``torch.nn.Sequential`` + autograd + ``torch.optim.SGD``;
- ``jax.jit hand`` (jax only): ``jax.value_and_grad`` of the loss and the SGD update in one ``jax.jit``, the
  parameters and buffers donated.

Every variant exposes ``parameters()`` (host float64 ``[W1, b1, ...]``) so a test can check they all compute
the same training run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

import portable_nn as pnn

from .backends import device_str, from_host, resolve_namespace, to_host
from .train_models import CE, HostData, MLPSpec, step_math
from .variants import Variant, memory_method, sync_for

EAGER, HAND, RAW, TORCH_NN_OPTIM, JAX_JIT_HAND = ("portable eager", "hand", "raw", "torch.nn+optim", "jax.jit hand")
TRAIN_STEP_EAGER, TRAIN_STEP_AUTO = "train_step(compile=False)", "train_step(compile='auto')"

Params = Callable[[], list[np.ndarray]]


def _variant(
    backend: str,
    kind: str,
    step: Callable[[], Any],
    device: Any,
    label: str,
    params: Params,
    live: Callable[[], Any] | None = None,
) -> Variant:
    """``live()``: the variant's current device parameters, waited for with the loss after each timed loop.

    A step returns its loss, computed in the forward pass: on an asynchronous backend (JAX) waiting for it
    alone would stop the clock before the last step's backward and update have run.
    """
    sync, memory = sync_for(backend, device), memory_method(backend, label)
    if live is not None:
        base = sync

        def sync(out: Any) -> None:
            base(None if out is None else (out, live()))

    return Variant(backend, kind, {"train": step}, sync, None, step, memory, parameters=params)


def _targets(xp: Any, data: HostData, spec: MLPSpec, device: Any, dtype: Any) -> Any:
    if spec.loss == CE:
        return xp.asarray(data.target, device=device)
    return from_host(data.target, xp, device, dtype)


def _bound(step: Callable[[Any, Any], Any], x: Any, target: Any) -> Callable[[], Any]:
    return lambda: step(x, target)


def portable_variants(backend: str, device: Any, dtype: Any, spec: MLPSpec, data: HostData) -> list[Variant]:
    """``portable eager`` and, when ``portable_nn.train_step`` exists, its two compile settings."""
    xp = resolve_namespace(backend)
    label = device_str(xp, device)
    x, target = from_host(data.x, xp, device, dtype), _targets(xp, data, spec, device, dtype)

    def build() -> tuple[pnn.Sequential, Any, pnn.SGD]:
        layers: list[pnn.Module] = []
        for i, (w, b) in enumerate(zip(data.weights, data.biases, strict=True)):
            lin = pnn.Linear(w.shape[1], w.shape[0], xp=xp, device=device, dtype=dtype, init="zeros")
            lin.set_parameters({"weight": from_host(w, xp, device, dtype), "bias": from_host(b, xp, device, dtype)})
            layers += [lin] if i == len(data.weights) - 1 else [lin, pnn.Tanh()]
        model = pnn.Sequential(*layers)
        loss_fn = pnn.CrossEntropyLoss() if spec.loss == CE else pnn.MSELoss()
        return model, loss_fn, pnn.SGD(model, lr=spec.lr, momentum=spec.momentum)

    def params_of(model: pnn.Sequential) -> Params:
        return lambda: [np.asarray(to_host(p), dtype=np.float64) for p in model.named_parameters().values()]

    model, loss_fn, optimizer = build()

    def eager() -> Any:
        loss, grad = loss_fn(model(x), target)
        optimizer.zero_grad()
        model.backward(grad)
        optimizer.step()
        return loss

    out = [_variant(backend, EAGER, eager, device, label, params_of(model), model.named_parameters)]
    train_step = getattr(pnn, "train_step", None)
    if train_step is not None:
        for kind, compile_ in ((TRAIN_STEP_EAGER, False), (TRAIN_STEP_AUTO, "auto")):
            m, f, o = build()
            out.append(
                _variant(
                    backend,
                    kind,
                    _bound(train_step(m, f, o, compile=compile_), x, target),
                    device,
                    label,
                    params_of(m),
                    m.named_parameters,
                )
            )
    return out


def raw_variant(backend: str, device: Any, dtype: Any, spec: MLPSpec, data: HostData) -> Variant:
    """The array-API bound: :func:`step_math` on the backend's array-API namespace."""
    xp = resolve_namespace(backend)
    x, target = from_host(data.x, xp, device, dtype), _targets(xp, data, spec, device, dtype)
    labels = xp.arange(spec.sizes[-1], dtype=target.dtype, device=device) if spec.loss == CE else None
    state: dict[str, Any] = {"params": [from_host(a, xp, device, dtype) for a in data.flat()], "bufs": None}

    def step() -> Any:
        loss, state["params"], state["bufs"] = step_math(xp, spec, state["params"], state["bufs"], x, target, labels)
        return loss

    def params() -> list[np.ndarray]:
        return [np.asarray(to_host(p), dtype=np.float64) for p in state["params"]]

    return _variant(backend, RAW, step, device, device_str(xp, device), params, lambda: state["params"])


def numpy_hand_variant(spec: MLPSpec, data: HostData, dtype_label: str) -> Variant:
    """The step as a NumPy user writes it: plain NumPy, momentum and parameters updated in place."""
    ws = [np.ascontiguousarray(w, dtype_label) for w in data.weights]
    bs = [b.astype(dtype_label) for b in data.biases]
    x = data.x.astype(dtype_label)
    target = data.target if spec.loss == CE else data.target.astype(dtype_label)
    rows = np.arange(spec.batch)
    bufs: list[np.ndarray] = []

    def step() -> Any:
        acts = [x]
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = acts[-1] @ w.T
            z += b
            acts.append(np.tanh(z) if i < len(ws) - 1 else z)
        logits = acts[-1]
        if spec.loss == CE:
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -log_probs[rows, target].mean()
            g = np.exp(log_probs)
            g[rows, target] -= 1
            g /= spec.batch
        else:
            diff = logits - target
            loss = (diff * diff).mean()
            g = diff * (2 / diff.size)
        grads: list[np.ndarray] = [np.empty(0)] * (2 * len(ws))
        for i in range(len(ws) - 1, -1, -1):
            grads[2 * i], grads[2 * i + 1] = g.T @ acts[i], g.sum(axis=0)
            if i:
                g = (g @ ws[i]) * (1 - acts[i] * acts[i])
        params = [a for pair in zip(ws, bs, strict=True) for a in pair]
        if not bufs:
            bufs.extend(grads)
        else:
            for m, d in zip(bufs, grads, strict=True):
                m *= spec.momentum
                m += d
        for p, m in zip(params, bufs, strict=True):
            p -= spec.lr * m
        return loss

    def params() -> list[np.ndarray]:
        return [np.asarray(a, np.float64) for pair in zip(ws, bs, strict=True) for a in pair]

    return _variant("numpy", HAND, step, "cpu", "cpu", params)


def torch_hand_variant(device_label: str, dtype_label: str, spec: MLPSpec, data: HostData) -> Variant:
    """The step in plain torch calls on tensors that do not require grad, momentum and parameters in place."""
    torch = importlib.import_module("torch")
    device, dtype = torch.device(device_label), getattr(torch, dtype_label)

    def put(a: np.ndarray) -> Any:
        return torch.from_numpy(a).to(device, dtype)

    ws, bs = [put(w) for w in data.weights], [put(b) for b in data.biases]
    x = put(data.x)
    target = torch.from_numpy(data.target).to(device) if spec.loss == CE else put(data.target)
    rows = torch.arange(spec.batch, device=device)
    bufs: list[Any] = []

    def step() -> Any:  # no tensor requires grad: autograd records nothing
        acts = [x]
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = torch.addmm(b, acts[-1], w.T)
            acts.append(torch.tanh(z) if i < len(ws) - 1 else z)
        logits = acts[-1]
        if spec.loss == CE:
            log_probs = torch.log_softmax(logits, dim=1)
            loss = -log_probs[rows, target].mean()
            g = log_probs.exp_()
            g[rows, target] -= 1
            g /= spec.batch
        else:
            diff = logits - target
            loss = (diff * diff).mean()
            g = diff.mul_(2 / diff.numel())
        grads: list[Any] = [None] * (2 * len(ws))
        for i in range(len(ws) - 1, -1, -1):
            grads[2 * i], grads[2 * i + 1] = g.T @ acts[i], g.sum(dim=0)
            if i:
                g = (g @ ws[i]).mul_(1 - acts[i] * acts[i])
        params = [a for pair in zip(ws, bs, strict=True) for a in pair]
        if not bufs:
            bufs.extend(grads)
        else:
            for m, d in zip(bufs, grads, strict=True):
                m.mul_(spec.momentum).add_(d)
        for p, m in zip(params, bufs, strict=True):
            p.sub_(m, alpha=spec.lr)
        return loss

    def params() -> list[np.ndarray]:
        return [a.detach().cpu().double().numpy() for pair in zip(ws, bs, strict=True) for a in pair]

    return _variant("torch", HAND, step, device, device_label, params)


def torch_nn_variant(device_label: str, dtype_label: str, spec: MLPSpec, data: HostData) -> Variant:
    """``torch.nn.Sequential`` + autograd + ``torch.optim.SGD`` (``opt.zero_grad()`` sets grads to None)."""
    torch = importlib.import_module("torch")
    device, dtype = torch.device(device_label), getattr(torch, dtype_label)
    layers: list[Any] = []
    for i, (w, b) in enumerate(zip(data.weights, data.biases, strict=True)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], device=device, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin] if i == len(data.weights) - 1 else [lin, torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss() if spec.loss == CE else torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    x = torch.from_numpy(data.x).to(device, dtype)
    target = (
        torch.from_numpy(data.target).to(device) if spec.loss == CE else torch.from_numpy(data.target).to(device, dtype)
    )

    def step() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        return loss

    def params() -> list[np.ndarray]:
        return [p.detach().cpu().double().numpy() for p in model.parameters()]

    return _variant("torch", TORCH_NN_OPTIM, step, device, device_label, params)


def jax_jit_variant(device: Any, dtype: Any, spec: MLPSpec, data: HostData) -> Variant:
    """``jax.value_and_grad`` + the momentum update in one ``jax.jit``, parameters and buffers donated."""
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")
    xp = resolve_namespace("jax")
    x, target = from_host(data.x, xp, device, dtype), _targets(xp, data, spec, device, dtype)
    labels = jnp.arange(spec.sizes[-1])

    def loss_of(params: list[Any], x: Any, target: Any) -> Any:
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = jnp.tanh(h)
        if spec.loss == CE:
            log_probs = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.sum(jnp.where(target[:, None] == labels[None, :], log_probs, 0), axis=1))
        return jnp.mean((h - target) ** 2)

    def update(params: list[Any], bufs: list[Any], first: bool, x: Any, target: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_of)(params, x, target)
        bufs = grads if first else [spec.momentum * m + g for m, g in zip(bufs, grads, strict=True)]
        return loss, [p - spec.lr * m for p, m in zip(params, bufs, strict=True)], bufs

    jitted = jax.jit(update, donate_argnums=(0, 1), static_argnums=(2,))
    params0 = [from_host(a, xp, device, dtype) for a in data.flat()]
    state: dict[str, Any] = {"params": params0, "bufs": [jnp.zeros_like(p) for p in params0], "first": True}

    def step() -> Any:
        loss, state["params"], state["bufs"] = jitted(state["params"], state["bufs"], state["first"], x, target)
        state["first"] = False
        return loss

    def params() -> list[np.ndarray]:
        return [np.asarray(p, dtype=np.float64) for p in state["params"]]

    return _variant("jax", JAX_JIT_HAND, step, device, device_str(xp, device), params, lambda: state["params"])
