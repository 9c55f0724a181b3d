"""Benchmark harness of portable_nn (not installed with the package): ``python -m benchmarks.bench --quick``.

Two parts, each timed interleaved (A B C A B C ..., the order rotating each round) so machine noise hits every
variant alike, with ratios taken per round:

- **Linear rows** (:mod:`.cases`): ``portable_nn.Linear`` against ``torch.nn.Linear`` + autograd, textbook NumPy
  and the raw array-API bound, per op (forward, backward, step, fwd+bwd, train), with issue 7's targets;
- **train-step rows** (:mod:`.train_run`): a whole training step of an MLP (the demo 2-64-64-3 and a wide
  1024-1024-1024-1024) as portable_nn's eager API, hand-written, the raw array-API bound, torch.nn+optim and
  a hand-written ``jax.jit`` step, all checked to compute the same parameters.

Modules: ``cli`` (options, run), ``shapes``, ``variants`` / ``cases`` / ``targets`` (Linear rows),
``train_models`` / ``train_variants`` / ``train_run`` / ``train_report`` (train-step rows), ``timing``,
``memory``, ``report`` / ``summary`` (tables, several runs, plot), ``env`` (machine, threads), ``backends``
(the one import of portable_nn's backend adapter). Method and caveats: ``benchmarks/README.md``.
"""

from __future__ import annotations

from .cli import main, run
from .shapes import OPS, Shape

__all__ = ["OPS", "Shape", "main", "run"]
