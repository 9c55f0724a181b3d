"""The training loop: one epoch of minibatch steps, shared by the command line and ``portable_nn.distributed``.

Backend-neutral: the model, loss and optimizer see only array-API arrays, and the loop only
calls them. One step is ``forward → loss → zero_grad → backward → read the loss → step()``;
the loss value is read *before* ``step()`` because on a lazy backend (Dask) ``step()`` stores
new parameters and a loss read afterwards would submit the forward's graph a second time.
(:func:`portable_nn.train_step`, which the command line and ``portable_nn.distributed.train_epoch``
pass as ``step=``, stores the loss in the same persist as the parameters instead.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["Stepper", "make_step", "run_epoch"]

Array = Any
#: ``loss_fn(prediction, target) -> (loss, grad_prediction)``, as portable_nn's losses.
LossFn = Callable[[Array, Array], tuple[Array, Array]]
#: ``step(x, y) -> loss value`` for one batch.
StepFn = Callable[[Array, Array], float]


class Stepper(Protocol):
    """What the loop needs of an optimizer: ``zero_grad()`` and ``step()`` (an :class:`~portable_nn.Optimizer`)."""

    def zero_grad(self) -> None: ...

    def step(self) -> None: ...


def make_step(
    model: Any,
    loss_fn: LossFn,
    optimizer: Stepper,
    *,
    read: Callable[[Array], float] = float,
    before_step: Callable[[], Any] | None = None,
) -> StepFn:
    """The default step: ``step(x, y)`` trains ``model`` on one batch and returns the batch loss as a float.

    Parameters
    ----------
    model
        A :class:`~portable_nn.module.Module` (``model(x)``, ``model.backward(grad)``).
    loss_fn
        ``loss_fn(prediction, target) -> (loss, grad)``, e.g. ``CrossEntropyLoss()``.
    optimizer
        Anything with ``zero_grad()`` and ``step()``.
    read
        Turns the 0-d loss array into a float (default ``float``); a Dask caller passes a
        time-bounded fetch. Called before ``optimizer.step()``.
    before_step
        Called after ``backward`` and before ``optimizer.step()``, e.g. gradient clipping
        (``lambda: pnn.clip_grad_norm_(model, 1.0)``).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(2, 3, seed=0)
    >>> step = make_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1))
    >>> import numpy as np
    >>> isinstance(step(np.ones((4, 2), dtype=np.float32), np.array([0, 1, 2, 0])), float)
    True
    """

    def step(x: Array, y: Array) -> float:
        loss, grad = loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(grad)
        value = read(loss)  # before step(): see the module docstring
        if before_step is not None:
            before_step()
        optimizer.step()
        return value

    return step


def run_epoch(
    model: Any,
    loss_fn: LossFn,
    optimizer: Stepper,
    batches: Iterable[tuple[Array, Array]],
    *,
    on_step: Callable[[int, float], None] | None = None,
    step: StepFn | None = None,
) -> list[float]:
    """Train on every ``(x, y)`` of ``batches`` once; returns the batch losses in order.

    Parameters
    ----------
    model, loss_fn, optimizer
        As for :func:`make_step` (ignored when ``step`` is given, except as documentation).
    batches
        ``(x, y)`` pairs, e.g. ``x`` (B, in) features and ``y`` (B,) class indices; consumed lazily.
    on_step
        Called as ``on_step(index, loss)`` after every step (progress bars, checkpoints).
    step
        Replaces the default step (:func:`make_step`): ``step(x, y) -> loss``, e.g. a compiled
        or otherwise fused train step.

    Returns
    -------
    list of float
        One loss per batch (the mean over that batch's samples).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(2, 2, seed=0)
    >>> x, y = np.ones((4, 2), dtype=np.float32), np.array([0, 1, 0, 1])
    >>> losses = run_epoch(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1), [(x, y), (x, y)])
    >>> len(losses)
    2
    """
    train_step = make_step(model, loss_fn, optimizer) if step is None else step
    losses: list[float] = []
    for index, (x, y) in enumerate(batches):
        value = float(train_step(x, y))
        losses.append(value)
        if on_step is not None:
            on_step(index, value)
    return losses
