"""The functional form of a model: ``functional_call`` and ``value_and_grad``, pure and traceable.

Both run a :class:`~portable_nn.nn.module.Module` with a name -> array mapping of parameters (the
keys of ``model.named_parameters()``) instead of the module's own, through the layers'
``functional_forward``/``functional_backward`` (their explicit backward, no autodiff), and
leave the module unchanged: nothing is kept on it, no gradient is accumulated. With only
shapes, dtypes and devices inspected, ``jax.jit`` traces them with the parameters as arguments.

Both validate their arguments (they are public entry points: :data:`~portable_nn.nn.module.CHECKED`);
:func:`loss_and_grads_fn` is the one unvalidated internal, for a caller that validated the input
signature already (``train_step``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .._checks import check_like
from ..errors import ArgumentError, ArgumentTypeError, UnknownParameterError
from ..losses._base import compute_of
from ..nn.buffers import split_saved
from ..nn.module import CHECKED, Call, Module
from ..typing import Array

__all__ = ["functional_call", "value_and_grad"]

LossFn = Callable[[Array, Array], tuple[Array, Array]]


def check_params(model: Module, params: Any) -> None:
    """Raise unless ``params`` maps exactly the model's parameter names to arrays placed and shaped like them."""
    if not isinstance(model, Module):
        raise ArgumentTypeError(
            f"expected a portable_nn Module, got {type(model).__module__}.{type(model).__qualname__}"
        )
    if not isinstance(params, Mapping):
        raise ArgumentTypeError(f"params must be a mapping of parameter name -> array, got {type(params).__name__}")
    current = model.named_parameters()
    buffers = model.named_buffers()
    unknown = [name for name in params if name not in current and name not in buffers]
    if unknown:
        raise UnknownParameterError(f"{type(model).__name__} has no parameters {unknown}; parameters: {list(current)}")
    missing = [name for name in current if name not in params]
    if missing:
        raise ArgumentError(f"params: missing parameters {missing}; expected exactly {list(current)}")
    xp, device, dtype = model.xp, model.device, model.dtype
    for name, value in params.items():
        if name in current:
            check_like(value, f"params[{name!r}]", current[name], xp, device, dtype)
        else:  # a buffer: its own dtype (an integer counter stays integer)
            check_like(value, f"params[{name!r}]", buffers[name], xp, device, buffers[name].dtype)


def _with_buffers(model: Module, params: Mapping[str, Array]) -> Mapping[str, Array]:
    """``params`` with the model's buffers (those ``params`` does not give), for the layers that read them."""
    buffers = model.named_buffers()
    return {**buffers, **params} if buffers else params


def _mode_call(model: Module, call: Call) -> Call:
    """``call`` in the model's mode; a model that draws needs a key, which these entry points do not carry yet."""
    if model.training and model._uses_randomness():
        raise ArgumentError(
            f"{type(model).__name__} draws random numbers in train mode (Dropout) and functional_call, "
            "value_and_grad and train_step do not carry a random key yet: call model.eval(), or run the pure "
            "form model.functional_forward(params, x, Call(training=True, key=...))"
        )
    return call if call.training == model.training else replace(call, training=model.training)


def _refuse_buffer_update(model: Module, saved: Any) -> Any:
    saved, updates = split_saved(saved)
    if updates:
        raise ArgumentError(
            f"{type(model).__name__} updates buffers {sorted(updates)} in train mode and functional_call, "
            "value_and_grad and train_step do not return buffers yet: call model.eval(), or run the pure form "
            "model.functional_forward (its saved is a BufferUpdate with the new values)"
        )
    return saved


def functional_call(model: Module, params: Mapping[str, Array], x: Array) -> Array:
    """``model(x)`` computed with ``params`` instead of the model's parameters; the model is not changed.

    Parameters
    ----------
    model : Module
        E.g. a :class:`~portable_nn.Sequential`.
    params : mapping of str to array
        Every name of ``model.named_parameters()``, arrays of the model's backend, device, dtype
        and the parameters' shapes (typed errors otherwise).
    x : array
        The input, (*, in_features) for a model starting with a ``Linear``.

    Returns
    -------
    array
        The output, as ``model(x)`` would give it with those parameters.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> zeros = {name: 0 * p for name, p in model.named_parameters().items()}
    >>> pnn.functional_call(model, zeros, model.xp.ones((3, 2), dtype=model.dtype)).tolist()
    [[0.0], [0.0], [0.0]]
    """
    check_params(model, params)
    y, saved = model.functional_forward(_with_buffers(model, params), x, _mode_call(model, CHECKED))
    _refuse_buffer_update(model, saved)
    return y


def value_and_grad(model: Module, loss_fn: LossFn) -> Callable[[Mapping[str, Array], Array, Array], tuple[Array, Any]]:
    """``f(params, x, y) -> (loss, grads)``: the loss of ``model`` with ``params`` and its gradient, pure.

    ``f`` runs the layers' pure pair (their explicit backward, with ``need_input_grad=False`` for the
    model's input): the model keeps no state and accumulates no gradient. Every call checks its
    arguments (``params`` as :func:`functional_call` does, ``x`` and ``y`` by the layers and the loss).

    Parameters
    ----------
    model : Module
        E.g. a :class:`~portable_nn.Sequential`.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``, e.g. :class:`~portable_nn.CrossEntropyLoss`.

    Returns
    -------
    callable
        ``f(params, x, y) -> (loss, grads)``: ``params`` maps every name of ``model.named_parameters()``
        to an array; ``grads`` maps the same names to ``dL/dparam``.

    Raises
    ------
    ArgumentTypeError
        ``model`` is no Module or ``loss_fn`` is not callable.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> f = pnn.value_and_grad(model, pnn.MSELoss())
    >>> loss, grads = f(model.named_parameters(), np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32))
    >>> sorted(grads), grads["weight"].shape, model.grad_weight is None
    (['bias', 'weight'], (1, 2), True)
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(
            f"expected a portable_nn Module, got {type(model).__module__}.{type(model).__qualname__}"
        )
    if not callable(loss_fn):
        raise ArgumentTypeError(f"loss_fn must be callable (prediction, target) -> (loss, grad), got {type(loss_fn)}")

    return loss_and_grads_fn(model, loss_fn, CHECKED)


def loss_and_grads_fn(
    model: Module, loss_fn: LossFn, call: Call
) -> Callable[[Mapping[str, Array], Array, Array], tuple[Array, Any]]:
    """:func:`value_and_grad`'s function for arguments already checked; ``call`` says whether the layers check.

    With :data:`~portable_nn.nn.module.CHECKED` it checks ``params`` too (what :func:`value_and_grad`
    returns); with :data:`~portable_nn.nn.module.UNCHECKED` nothing is checked: for ``train_step``'s
    steps after the first of an input signature, which ran checked. ``call`` reaches a built-in loss
    too (its ``_compute(prediction, y, call)``, the one way it skips its checks; the class-target
    range is still checked wherever values are readable); a user's ``loss_fn`` is called as
    ``loss_fn(prediction, y)``, as is a subclass of :class:`~portable_nn.losses.Loss` that defines
    its own ``__call__``.

    Parameters
    ----------
    model : Module
        The model.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``.
    call : Call
        Handed to the layers' pure pair.

    Returns
    -------
    callable
        ``f(params, x, y) -> (loss, grads)``.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> from portable_nn.nn.module import UNCHECKED
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> f = loss_and_grads_fn(model, pnn.MSELoss(), UNCHECKED)
    >>> loss, grads = f(model.named_parameters(), np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32))
    >>> sorted(grads)
    ['bias', 'weight']
    """
    forward, backward, validate = model.functional_forward, model.functional_backward, call.validate
    compute = compute_of(loss_fn)  # a built-in loss: called with ``call``, not ``loss_fn(prediction, y)``
    mode_dependent = bool(model.named_buffers()) or model._uses_randomness()  # the structure is fixed

    def loss_and_grads(params: Mapping[str, Array], x: Array, y: Array) -> tuple[Array, Any]:
        if validate:
            check_params(model, params)
        this_call = _mode_call(model, call) if mode_dependent else call  # the mode of this call, read now
        params = _with_buffers(model, params)
        prediction, saved = forward(params, x, this_call)
        saved = _refuse_buffer_update(model, saved)
        loss, grad = loss_fn(prediction, y) if compute is None else compute(prediction, y, this_call)
        _, grads = backward(params, saved, grad, False, this_call)  # the model's dL/dx is dropped: not computed
        return loss, grads

    return loss_and_grads
