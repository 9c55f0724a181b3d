"""The training loop: one epoch of minibatch steps, shared by the command line and ``portable_nn.distributed``.

Backend-neutral: the model, loss and optimizer see only array-API arrays, and the loop only
calls them. A step is one call of :func:`portable_nn.train_step` (the default for a portable_nn
Module and Optimizer; the command line and ``portable_nn.distributed.train_epoch`` pass theirs as
``step=``), which stores the loss in the same persist as the parameters on Dask. :func:`make_step`
is the eager loop for anything else (or to run code between backward and the optimizer's step,
e.g. gradient clipping): ``forward → loss → zero_grad → backward → read the loss → step()``, the
loss read *before* ``step()`` because on a lazy backend ``step()`` stores new parameters and a
loss read afterwards would submit the forward's graph a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..errors import ArgumentError, ArgumentTypeError
from ..typing import Array

__all__ = ["Stepper", "make_step", "run_epoch"]

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
    model : Module
        A :class:`~portable_nn.nn.module.Module` (``model(x)``, ``model.backward(grad)``).
    loss_fn : callable
        ``loss_fn(prediction, target) -> (loss, grad)``, e.g. ``CrossEntropyLoss()``.
    optimizer : Stepper
        Anything with ``zero_grad()`` and ``step()``.
    read : callable, optional
        Turns the 0-d loss array into a float (default ``float``); a Dask caller passes a
        time-bounded fetch. Called before ``optimizer.step()``.
    before_step : callable or None, optional
        Called after ``backward`` and before ``optimizer.step()``, e.g. gradient clipping
        (``lambda: pnn.clip_grad_norm_(model, 1.0)``).

    Returns
    -------
    callable
        ``step(x, y) -> float``: one batch (``x`` (B, ...) inputs, ``y`` targets) through forward,
        loss, ``zero_grad``, ``backward``, ``before_step`` and ``optimizer.step()``; the batch loss
        as read before the step. Its attributes ``model``, ``loss_fn`` and ``optimizer`` name what
        it trains.

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

    step.model, step.loss_fn, step.optimizer = model, loss_fn, optimizer  # type: ignore[attr-defined]
    return step


def run_epoch(
    model: Any,
    loss_fn: LossFn | None,
    optimizer: Stepper | None,
    batches: Iterable[tuple[Array, Array]],
    *,
    on_step: Callable[[int, float], None] | None = None,
    step: StepFn | None = None,
    read: Callable[[Array], float] = float,
) -> list[float]:
    """Train on every ``(x, y)`` of ``batches`` once; returns the batch losses in order.

    Parameters
    ----------
    model, loss_fn, optimizer
        What to train. Without ``step`` each batch is one call of
        :func:`portable_nn.train_step` (a portable_nn Module and Optimizer; compiled where it
        pays) or, for any other model/optimizer pair, of :func:`make_step`.
    batches
        ``(x, y)`` pairs, e.g. ``x`` (B, in) features and ``y`` (B,) class indices; consumed lazily.
    on_step
        Called as ``on_step(index, loss)`` after every step (progress bars, checkpoints).
    step
        Replaces the default step: ``step(x, y) -> loss``. A :class:`~portable_nn.training.step.TrainStep`
        (or :func:`make_step`'s step) must train the given ``model``, ``loss_fn`` and
        ``optimizer``; any other callable is given with all three None (they would be ignored).
    read
        Turns a step's loss into a float (default ``float``); e.g. a time-bounded fetch on Dask.

    Returns
    -------
    list of float
        One loss per batch (the mean over that batch's samples).

    Raises
    ------
    ArgumentError
        A ``step`` that trains other objects than ``model``, ``loss_fn``, ``optimizer``, or an opaque
        ``step`` given with them.

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
    train = _default_step(model, loss_fn, optimizer) if step is None else _checked_step(step, model, loss_fn, optimizer)
    losses: list[float] = []
    for index, (x, y) in enumerate(batches):
        value = read(train(x, y))
        losses.append(value)
        if on_step is not None:
            on_step(index, value)
    return losses


def _default_step(model: Any, loss_fn: LossFn | None, optimizer: Stepper | None) -> StepFn:
    """:func:`portable_nn.train_step` for a portable_nn Module and Optimizer, else :func:`make_step`."""
    from ..nn.module import Module
    from ..optim import Optimizer
    from .step import train_step

    if loss_fn is None or optimizer is None:
        raise ArgumentError("run_epoch: model, loss_fn and optimizer are needed without a step")
    if isinstance(model, Module) and isinstance(optimizer, Optimizer):
        return train_step(model, loss_fn, optimizer)
    return make_step(model, loss_fn, optimizer, read=lambda loss: loss)


def _checked_step(step: Any, model: Any, loss_fn: Any, optimizer: Any) -> StepFn:
    """``step``, if it trains exactly ``model``, ``loss_fn`` and ``optimizer`` (or is opaque and they are None)."""
    if not callable(step):
        raise ArgumentTypeError(f"step must be callable (x, y) -> loss, got {type(step).__name__}")
    owned = [getattr(step, name, None) for name in ("model", "loss_fn", "optimizer")]
    given = [model, loss_fn, optimizer]
    if all(o is None for o in owned):
        if any(g is not None for g in given):
            raise ArgumentError(
                "run_epoch: a step was given with model, loss_fn or optimizer, which it would ignore; pass "
                "pnn.train_step(model, loss_fn, optimizer) (or make_step(...)) as step, or None for all three"
            )
        return step  # type: ignore[no-any-return]
    for name, o, g in zip(("model", "loss_fn", "optimizer"), owned, given, strict=True):
        if o is not g:
            raise ArgumentError(f"run_epoch: the step trains another {name} than the {name} given")
    return step  # type: ignore[no-any-return]
