"""µs per training step of the demo MLP (2→64→64→3 tanh, batch 60, CrossEntropyLoss, SGD lr .04 momentum .9, float32).

Rows per backend: the eager library loop (``loss_fn(model(x), y)``, ``zero_grad``, ``backward``,
``step``), ``train_step(compile=False)``, ``train_step(compile="auto")``, and a hand-written step
in the backend's own array code (raw ops, same math); on JAX also a hand-written ``jax.jit`` step.
Median of ``--rounds`` rounds of ``--steps`` steps each, after a warm-up; one thread.

    python benchmarks/train_step_bench.py --backends numpy,torch,jax
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np

import portable_nn as pnn

LR, MOMENTUM, BATCH = 0.04, 0.9, 60


def model_for(xp: str) -> pnn.Sequential:
    rng = np.random.default_rng(0)
    return pnn.Sequential(
        pnn.Linear(2, 64, xp=xp, seed=rng),
        pnn.Tanh(),
        pnn.Linear(64, 64, xp=xp, seed=rng),
        pnn.Tanh(),
        pnn.Linear(64, 3, xp=xp, seed=rng),
    )


def batch(model: pnn.Sequential):
    rng = np.random.default_rng(1)
    xp = model.xp
    return xp.asarray(rng.standard_normal((BATCH, 2)).astype(np.float32)), xp.asarray(rng.integers(0, 3, BATCH))


def time_all(steps_by_name: dict, sync, steps: int, rounds: int) -> dict[str, float]:
    """Median µs/step of each step function; rounds interleave the functions (a shared machine's load hits all)."""
    for step in steps_by_name.values():
        for _ in range(20):
            out = step()
        sync(out)
    samples: dict[str, list[float]] = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = step()
            sync(out)
            samples[name].append((time.perf_counter() - start) / steps * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def hand_written(xp_name: str, model: pnn.Sequential):
    """The same step in raw backend code: forward, softmax cross-entropy, explicit backward, SGD momentum."""
    xp = model.xp
    names = list(model.named_parameters())
    params = dict(model.named_parameters())
    bufs: dict = {}
    x, y = batch(model)
    onehot = xp.astype(xp.reshape(y, (-1, 1)) == xp.reshape(xp.arange(3), (1, 3)), xp.float32)

    def step():
        w0, b0, w1, b1, w2, b2 = (params[n] for n in names)
        h0 = xp.tanh(x @ w0.T + b0)
        h1 = xp.tanh(h0 @ w1.T + b1)
        z = h1 @ w2.T + b2
        s = z - xp.max(z, axis=1, keepdims=True)
        logp = s - xp.log(xp.sum(xp.exp(s), axis=1, keepdims=True))
        loss = -xp.sum(logp * onehot) / BATCH
        g = (xp.exp(logp) - onehot) / BATCH
        grads = {names[4]: g.T @ h1, names[5]: xp.sum(g, axis=0)}
        g = (g @ w2) * (1 - h1 * h1)
        grads[names[2]], grads[names[3]] = g.T @ h0, xp.sum(g, axis=0)
        g = (g @ w1) * (1 - h0 * h0)
        grads[names[0]], grads[names[1]] = g.T @ x, xp.sum(g, axis=0)
        for n in names:
            buf = grads[n] if n not in bufs else MOMENTUM * bufs[n] + grads[n]
            bufs[n] = buf
            params[n] = params[n] - LR * buf
        return loss

    return step


def jax_jit_hand_written(model: pnn.Sequential):
    import jax
    import jax.numpy as jnp

    names = list(model.named_parameters())
    x, y = batch(model)
    onehot = jax.nn.one_hot(y, 3, dtype=jnp.float32)

    def pure(params, bufs, x, onehot):
        w0, b0, w1, b1, w2, b2 = (params[n] for n in names)
        h0 = jnp.tanh(x @ w0.T + b0)
        h1 = jnp.tanh(h0 @ w1.T + b1)
        z = h1 @ w2.T + b2
        logp = jax.nn.log_softmax(z, axis=1)
        loss = -jnp.sum(logp * onehot) / BATCH
        g = (jnp.exp(logp) - onehot) / BATCH
        grads = {names[4]: g.T @ h1, names[5]: g.sum(0)}
        g = (g @ w2) * (1 - h1 * h1)
        grads[names[2]], grads[names[3]] = g.T @ h0, g.sum(0)
        g = (g @ w1) * (1 - h0 * h0)
        grads[names[0]], grads[names[1]] = g.T @ x, g.sum(0)
        new_bufs = {n: MOMENTUM * bufs[n] + grads[n] for n in names}
        return loss, {n: params[n] - LR * new_bufs[n] for n in names}, new_bufs

    jitted = jax.jit(pure, donate_argnums=(1,))
    state = {
        "params": dict(model.named_parameters()),
        "bufs": {n: jnp.zeros_like(p) for n, p in model.named_parameters().items()},
    }

    def step():
        loss, state["params"], state["bufs"] = jitted(state["params"], state["bufs"], x, onehot)
        return loss

    return step


def run(backend: str, steps: int, rounds: int) -> dict[str, float]:
    def sync(out=None):
        if out is not None and hasattr(out, "block_until_ready"):
            out.block_until_ready()

    model = model_for(backend)
    opt = pnn.SGD(model, lr=LR, momentum=MOMENTUM)
    loss_fn = pnn.CrossEntropyLoss()
    x, y = batch(model)

    def loop():
        loss, grad = loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(grad)
        opt.step()
        return loss

    variants = {"eager library loop": loop}
    for compile_ in (False, "auto") if hasattr(pnn, "train_step") else ():  # absent before train_step existed
        m = model_for(backend)
        step = pnn.train_step(m, loss_fn, pnn.SGD(m, lr=LR, momentum=MOMENTUM), compile=compile_)
        if compile_ == "auto" and not step.compiled:
            continue
        variants[f"train_step(compile={compile_!r})"] = lambda s=step: s(x, y)
    variants["hand-written raw step"] = hand_written(backend, model_for(backend))
    if backend == "jax":
        variants["hand-written jax.jit step"] = jax_jit_hand_written(model_for(backend))
    return time_all(variants, sync, steps, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch,jax")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    for backend in args.backends.split(","):
        for what, us in run(backend, args.steps, args.rounds).items():
            print(f"{backend:6s} {what:32s} {us:8.1f} µs/step")


if __name__ == "__main__":
    main()
