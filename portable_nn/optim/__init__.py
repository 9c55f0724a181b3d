"""Optimizers over any :class:`~portable_nn.nn.module.Module`, with ``torch.optim``'s signatures and update rules.

``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad``; each has a pure form (``init``/``update``,
traceable by ``jax.jit``) and the stateful ``zero_grad``/``step`` built on it, param groups
(``param_groups=[{"params": names or predicate, **overrides}]``, see ``portable_nn.optim.groups``) and
``state_dict``/``load_state_dict``. One file per optimizer; the shared machinery is in ``portable_nn.optim.base``.
"""

from __future__ import annotations

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop"]
