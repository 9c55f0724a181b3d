"""Train-step models (the demo MLP, a wide MLP) and the step math every hand-written variant shares.

The step is: forward through ``Linear -> Tanh -> ... -> Linear``, the loss (cross-entropy of integer targets,
or mean squared error), backward, SGD with momentum (``torch.optim.SGD``'s rule: ``buf = g`` on the first step,
then ``buf = momentum * buf + g``; ``p = p - lr * buf``) and clearing the gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

CE, MSE = "cross_entropy", "mse"


@dataclass(frozen=True)
class MLPSpec:
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with tanh between layers, a loss, a batch and SGD settings."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    loss: str = CE
    lr: float = 0.04
    momentum: float = 0.9

    @property
    def label(self) -> str:
        loss = "CE" if self.loss == CE else "MSE"
        return f"{self.name} {'-'.join(map(str, self.sizes))} B{self.batch} {loss}"

    def flops(self, op: str) -> float:
        """Matmul flops of one train step (forward 1, backward 2 matmuls per layer but the first's grad_x)."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        per_matmul = [2.0 * self.batch * n_in * n_out for n_in, n_out in pairs]
        return 3 * sum(per_matmul) - per_matmul[0]


DEMO = MLPSpec("demo", (2, 64, 64, 3), 60, CE, 0.04, 0.9)
WIDE = MLPSpec("wide", (1024, 1024, 1024, 1024), 1024, MSE, 0.04, 0.9)
MODELS: dict[str, MLPSpec] = {"demo": DEMO, "wide": WIDE}


@dataclass
class HostData:
    """float64 host numbers of one model: weights (out, in), biases (out,), a batch and its targets."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    x: np.ndarray
    target: np.ndarray  # int64 class indices (CE) or float64 values (MSE)

    @classmethod
    def make(cls, spec: MLPSpec, seed: int = 0) -> HostData:
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(n_in)  # torch.nn.Linear's default init range
            weights.append(rng.uniform(-bound, bound, (n_out, n_in)))
            biases.append(rng.uniform(-bound, bound, (n_out,)))
        x = rng.standard_normal((spec.batch, spec.sizes[0]))
        if spec.loss == CE:
            target: np.ndarray = rng.integers(0, spec.sizes[-1], spec.batch)
        else:
            target = rng.standard_normal((spec.batch, spec.sizes[-1]))
        return cls(weights, biases, x, target)

    def flat(self) -> list[np.ndarray]:
        """``[W1, b1, W2, b2, ...]``: the order every variant reports its parameters in."""
        return [a for pair in zip(self.weights, self.biases, strict=True) for a in pair]


def loss_and_grad(xp: Any, spec: MLPSpec, logits: Any, target: Any, labels: Any) -> tuple[Any, Any]:
    """The loss and ``dL/dlogits`` in array-API calls (``labels`` = ``arange(classes)`` for cross-entropy)."""
    if spec.loss == MSE:
        diff = logits - target
        count = math.prod(logits.shape)
        return xp.sum(diff * diff) / count, diff * (2 / count)
    n, classes = logits.shape
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    onehot = xp.astype(xp.reshape(target, (n, 1)) == xp.reshape(labels, (1, classes)), logits.dtype)
    return -xp.sum(log_probs * onehot) / n, (xp.exp(log_probs) - onehot) / n


def step_math(
    xp: Any, spec: MLPSpec, params: list[Any], bufs: list[Any] | None, x: Any, target: Any, labels: Any
) -> tuple[Any, list[Any], list[Any]]:
    """One SGD-with-momentum step in array-API calls, rebinding every array: (loss, params, momentum buffers).

    ``bufs`` is None before the first step. The first layer's ``grad_x`` is not computed (nobody needs it).
    """
    weights, biases = params[0::2], params[1::2]
    acts = [x]
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = acts[-1] @ w.T + b
        acts.append(xp.tanh(z) if i < len(weights) - 1 else z)
    loss, g = loss_and_grad(xp, spec, acts[-1], target, labels)
    grads: list[Any] = [None] * len(params)
    for i in range(len(weights) - 1, -1, -1):
        grads[2 * i], grads[2 * i + 1] = g.T @ acts[i], xp.sum(g, axis=0)
        if i:
            h = acts[i]
            g = (g @ weights[i]) * (1 - h * h)
    new_bufs = grads if bufs is None else [spec.momentum * m + d for m, d in zip(bufs, grads, strict=True)]
    new_params = [p - spec.lr * m for p, m in zip(params, new_bufs, strict=True)]
    return loss, new_params, new_bufs
