"""Losses: one call returns the loss and its gradient, ``loss, grad = loss_fn(pred, target)``.

They follow ``torch.nn``'s losses of the same names (options, defaults, numbers): ``loss`` is
on ``pred``'s backend, device and dtype (a 0-d array for ``reduction="mean"``, the default, and
``"sum"``; per-element for ``"none"``), ``grad = dloss/dpred`` has ``pred``'s shape and is what
``model.backward(grad)`` takes. For ``"none"``, ``grad`` is the gradient of the per-element
losses summed (an upstream of ones) unless ``grad_output=`` gives the upstream. Losses hold only
their options, so one instance serves any backend.

=====================  ====================================================================
loss                   options (PyTorch's defaults)
=====================  ====================================================================
MSELoss, L1Loss        ``reduction``
SmoothL1Loss           ``reduction``, ``beta=1.0``
HuberLoss              ``reduction``, ``delta=1.0``
CrossEntropyLoss       ``weight``, ``ignore_index=-100``, ``reduction``, ``label_smoothing=0.0``
NLLLoss                ``weight``, ``ignore_index=-100``, ``reduction``
BCEWithLogitsLoss      ``weight``, ``reduction``, ``pos_weight``
=====================  ====================================================================
"""

from __future__ import annotations

from ._base import REDUCTIONS, Loss
from .bce import BCEWithLogitsLoss
from .cross_entropy import CrossEntropyLoss, NLLLoss
from .regression import HuberLoss, L1Loss, MSELoss, SmoothL1Loss

__all__ = [
    "REDUCTIONS",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
]
