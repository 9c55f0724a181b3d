"""Scale-out training on Dask: schedulers, a lazily generated chunked dataset and an epoch loop.

Tooling (may import dask): the layers themselves stay backend-neutral and only see
``dask.array`` arrays through the array API. A model trained here is any
:class:`~portable_nn.nn.module.Module` built with ``xp="dask"`` (``forward``, ``backward``,
``zero_grad``, ``named_parameters``, ``set_parameters``), trained by an
:class:`~portable_nn.Optimizer` (plain :class:`~portable_nn.SGD` unless the caller gives one).

Data flow of one step: the batch (rows ``[start, stop)`` of ``x`` and ``y``, chunked along the
batch axis) is persisted on the workers; :func:`portable_nn.train_step` builds the graphs of
forward, loss, backward and the optimizer's update, and persists the new parameters, the
optimizer's buffers and the batch loss in one call (one chunk each, see
:func:`portable_nn._backend.materialize`), with ``grad_weight = g.T @ x`` and ``grad_bias``
summed as tree reductions over the batch chunks by ``dask.array`` itself. The stored loss is
then fetched for the progress bar. Every ``checkpoint_every`` steps the parameters and the
optimizer's buffers are copied to the host and re-rooted, which bounds the lineage the
distributed scheduler keeps (and so its memory and what it recomputes when a worker dies) to
that many steps.
"""

from __future__ import annotations

from ._data import mse_loss, synthetic_regression
from ._scheduler import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_PROGRESS_TIMEOUT_S, SCHEDULERS, dask_scheduler
from ._training import DEFAULT_LR, EpochStats, checkpoint, train, train_epoch
from .cluster import check_address

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_LR",
    "DEFAULT_PROGRESS_TIMEOUT_S",
    "SCHEDULERS",
    "EpochStats",
    "check_address",
    "checkpoint",
    "dask_scheduler",
    "mse_loss",
    "synthetic_regression",
    "train",
    "train_epoch",
]
