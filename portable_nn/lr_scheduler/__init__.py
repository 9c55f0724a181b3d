"""Learning-rate schedules whose rate sequences equal ``torch.optim.lr_scheduler``'s.

They drive any optimizer with ``param_groups`` (a list of dicts with an ``"lr"``), such as
portable_nn's optimizers::

    opt = pnn.SGD(model, lr=0.1, momentum=0.9)
    sched = pnn.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        train_one_epoch(model, opt)
        sched.step()

``ReduceLROnPlateau`` takes the metric: ``sched.step(val_loss)``. Every scheduler has
``get_last_lr()``, ``state_dict()`` and ``load_state_dict()``; ``load_state_dict`` checks every
value by the constructor's rules (one validation function per scheduler serves both) and raises
a ``SerializationError`` naming the bad value, changing nothing.
"""

from __future__ import annotations

from ._base import LRScheduler
from .basic import CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR, StepLR
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .sequential import SequentialLR

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
