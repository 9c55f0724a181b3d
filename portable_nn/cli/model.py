"""The command line's model and optimizer: an MLP of ``Linear`` layers and the optimizer chosen by name.

To add an optimizer option, add it to :data:`OPTIMIZERS` and :data:`DEFAULT_LR` (the parser
takes its choices and help from there) and build it in :func:`make_optimizer`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from ..lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR
from ..nn.activations import ReLU, Sigmoid, Tanh
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.sequential import Sequential
from ..optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_LR",
    "OPTIMIZERS",
    "SCHEDULES",
    "build_mlp",
    "describe_optimizer",
    "make_optimizer",
    "make_schedule",
]

ACTIVATIONS: dict[str, type[Module]] = {"tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid}
#: Optimizer name -> class; ``--optimizer`` offers these.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}
#: Learning rate when ``--lr`` is not given.
DEFAULT_LR: dict[str, float] = {"sgd": 0.04, "adam": 0.003, "adamw": 0.003, "rmsprop": 0.003, "adagrad": 0.05}
#: ``--schedule`` choices: the learning-rate schedule over the whole run (``steps`` optimizer steps).
SCHEDULES = ("none", "cosine", "onecycle", "step")


def build_mlp(sizes: Sequence[int], activation: str, *, xp: Any, device: Any, dtype: Any, seed: int) -> Sequential:
    """``Linear`` layers of the given widths with ``activation`` between them, initialized from one seeded stream.

    Parameters
    ----------
    sizes
        Widths ``[in, hidden..., out]``: ``len(sizes) - 1`` layers, layer ``i`` maps ``sizes[i]`` → ``sizes[i + 1]``.
    activation
        A key of :data:`ACTIVATIONS`, applied between layers (not after the last).
    xp, device, dtype
        Where the parameters live; ``seed`` gives the same initial weights on every backend.

    Examples
    --------
    >>> model = build_mlp([2, 8, 3], "tanh", xp="numpy", device=None, dtype="float32", seed=0)
    >>> model(np.zeros((5, 2), dtype=np.float32)).shape
    (5, 3)
    """
    rng = np.random.default_rng(seed)
    layers: list[Module] = []
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=rng))
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return Sequential(*layers)


def make_optimizer(name: str, model: Module, args: argparse.Namespace) -> Optimizer:
    """The optimizer ``name`` over ``model``'s parameters, with the options in ``args`` (``lr``, ``momentum``)."""
    if name == "sgd":
        return SGD(model, lr=args.lr, momentum=args.momentum)
    return OPTIMIZERS[name](model, lr=args.lr)


def make_schedule(name: str, optimizer: Optimizer, steps: int, lr: float) -> LRScheduler | None:
    """The ``--schedule`` over ``steps`` optimizer steps, stepped after each one (None for ``"none"``).

    ``cosine``: ``CosineAnnealingLR(T_max=steps)`` from ``lr`` to 0; ``onecycle``: ``OneCycleLR(max_lr=lr,
    total_steps=steps)``; ``step``: ``StepLR`` dividing the rate by 10 after each third of the run.
    """
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=steps)
    if name == "onecycle":
        return OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    if name == "step":
        return StepLR(optimizer, step_size=max(1, steps // 3), gamma=0.1)
    return None


def describe_optimizer(args: argparse.Namespace) -> str:
    """``SGD(lr=0.04, momentum=0.9)``, ``Adam(lr=0.003)``, ... for the run's title line, with schedule and clipping."""
    if args.optimizer == "sgd":
        text = f"SGD(lr={args.lr:g}, momentum={args.momentum:g})"
    else:
        text = f"{OPTIMIZERS[args.optimizer].__name__}(lr={args.lr:g})"
    if getattr(args, "schedule", "none") != "none":
        text += f", {args.schedule} schedule"
    if getattr(args, "clip_grad_norm", None) is not None:
        text += f", grad norm clipped at {args.clip_grad_norm:g}"
    return text
