"""The functional form of a model: ``functional_call`` and ``value_and_grad``, pure and traceable.

Both run a :class:`~portable_nn.nn.module.Module` with a name -> array mapping of parameters (the
keys of ``model.named_parameters()``) instead of the module's own, through the layers'
``functional_forward``/``functional_backward`` (their explicit backward, no autodiff), and
leave the module unchanged: nothing is kept on it, no gradient is accumulated, no buffer is
rebound and no random stream advances. With only shapes, dtypes and devices inspected,
``jax.jit`` traces them with the parameters as arguments.

State beyond parameters is explicit, as in the layers' pure form:

- **buffers** (BatchNorm's running statistics) are read from ``params`` under their names
  (``model.named_buffers()``; the model's own where ``params`` gives none); with
  ``return_buffers=True`` the new values come back (train mode updates them), else a model that
  updates buffers is an ``ArgumentError`` rather than an update silently dropped;
- **the mode**: ``training=`` (default: ``model.training``, read at call time; under a compiler's
  trace a model whose layers depend on the mode needs it given, so no stale mode is baked in);
- **randomness**: ``key=`` (:func:`portable_nn.nn.rng.key`), required in train mode by a model
  that draws (Dropout); a container hands its layer ``i`` the key ``fold_in(key, i)``.

Both validate their arguments (they are public entry points); :func:`loss_and_grads_fn` is the
one core they and ``train_step`` share, unvalidated where its caller validated the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._backend import is_traced
from .._checks import check_like
from ..errors import ArgumentError, ArgumentTypeError, UnknownParameterError
from ..losses._base import compute_of
from ..nn.buffers import split_saved
from ..nn.module import Call, Module
from ..nn.rng import _check_key
from ..typing import Array

__all__ = ["functional_call", "value_and_grad"]

LossFn = Callable[[Array, Array], tuple[Array, Array]]
#: ``core(params_and_buffers, x, y, training, key) -> (loss, grads, new buffers)``: :func:`loss_and_grads_fn`.
CoreFn = Callable[[Mapping[str, Array], Array, Array, bool, Any], tuple[Array, dict[str, Array], dict[str, Array]]]


def check_params(model: Module, params: Any) -> None:
    """Raise unless ``params`` maps every parameter name (and optionally buffer names) to arrays like the model's."""
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
        raise UnknownParameterError(
            f"{type(model).__name__} has no parameters or buffers {unknown}; parameters: {list(current)}"
            + (f", buffers: {list(buffers)}" if buffers else "")
        )
    missing = [name for name in current if name not in params]
    if missing:
        raise ArgumentError(f"params: missing parameters {missing}; expected exactly {list(current)}")
    for name, value in params.items():  # (a layer without parameters has no placement of its own)
        if name in current:
            check_like(value, f"params[{name!r}]", current[name], model.xp, model.device, model.dtype)
        else:  # a buffer: its own dtype (an integer counter stays integer)
            check_like(value, f"params[{name!r}]", buffers[name], model.xp, model.device, buffers[name].dtype)


def is_stateful(model: Module) -> bool:
    """Whether ``model`` has buffers or draws random numbers: its calls depend on the mode (and maybe a key)."""
    return bool(model.named_buffers()) or model._uses_randomness()


def call_mode(model: Module, training: Any, probes: tuple[Any, ...]) -> bool:
    """The mode of one call: ``training`` checked, or ``model.training`` when it is None.

    Reading ``model.training`` while a compiler traces (``probes`` traced) would bake the mode
    into the program: a model whose layers depend on it must be given ``training`` there.
    """
    if training is None:
        if any(is_traced(probe) for probe in probes) and is_stateful(model):
            raise ArgumentError(
                f"{type(model).__name__} depends on the train/eval mode (buffers or randomness) and this call is "
                f"traced by a compiler: pass training=True or training=False explicitly (model.training, read "
                "now, would be baked into the compiled program)"
            )
        return model.training
    if not isinstance(training, bool):
        raise ArgumentTypeError(f"training must be a bool or None (the model's mode), got {type(training).__name__}")
    return training


def call_key(model: Module, training: bool, key: Any) -> Any:
    """The key a call hands the layers: ``key`` (checked) when ``model`` draws in this mode, else None."""
    if not (training and model._uses_randomness()):
        return None
    if key is None:
        raise ArgumentError(
            f"{type(model).__name__} draws random numbers in train mode (Dropout): pass key=pnn.rng.key(seed) "
            "(a new key per call, e.g. pnn.rng.fold_in(key, step)), or training=False"
        )
    _check_key(key, "key")
    return key


def _full_state(model: Module, params: Mapping[str, Array]) -> Mapping[str, Array]:
    """``params`` with the model's buffers that ``params`` does not give."""
    buffers = model.named_buffers()
    return {**buffers, **params} if buffers else params


def _buffers_out(model: Module, full: Mapping[str, Array], updates: Mapping[str, Array]) -> dict[str, Array]:
    """Every buffer of ``model`` after a call: the new values, else those the call read."""
    return {name: updates.get(name, full[name]) for name in model.named_buffers()}


def _refuse_updates(model: Module, updates: Mapping[str, Array], what: str) -> None:
    if updates:
        raise ArgumentError(
            f"{type(model).__name__} updates buffers {sorted(updates)} in train mode: call {what} with "
            "return_buffers=True to get their new values, or with training=False"
        )


def functional_call(
    model: Module,
    params: Mapping[str, Array],
    x: Array,
    *,
    key: Array | None = None,
    training: bool | None = None,
    return_buffers: bool = False,
) -> Any:
    """``model(x)`` computed with ``params`` (and buffers, mode and key given) instead of the model's; pure.

    Parameters
    ----------
    model : Module
        E.g. a :class:`~portable_nn.Sequential`.
    params : mapping of str to array
        Every name of ``model.named_parameters()``, and optionally names of ``model.named_buffers()``
        (the model's own buffers are used for the others): arrays of the model's backend, device,
        dtype and the parameters' shapes (typed errors otherwise).
    x : array
        The input, (*, in_features) for a model starting with a ``Linear``.
    key : array or None
        A random key (:func:`portable_nn.nn.rng.key`), needed in train mode by a model that draws
        (Dropout); ignored otherwise.
    training : bool or None
        Train or eval mode; None: ``model.training`` (must be given under a compiler's trace when
        the model has buffers or randomness).
    return_buffers : bool
        Return ``(y, buffers)``: every buffer's value after the call (updated in train mode).

    Returns
    -------
    array, or (array, dict of str to array)
        The output, as ``model(x)`` would give it with this state; with ``return_buffers`` also the buffers.

    Raises
    ------
    ArgumentError
        A missing key, or buffers updated without ``return_buffers``.
    UnknownParameterError, NamespaceError, DeviceError, DTypeError, ShapeError
        ``params`` or ``x`` do not fit the model.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> zeros = {name: 0 * p for name, p in model.named_parameters().items()}
    >>> pnn.functional_call(model, zeros, model.xp.ones((3, 2), dtype=model.dtype)).tolist()
    [[0.0], [0.0], [0.0]]

    With a buffer and a random key (BatchNorm's running statistics come back, Dropout draws from ``key``):

    >>> net = pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.BatchNorm1d(4), pnn.Dropout(0.5))
    >>> x = net.xp.ones((3, 2), dtype=net.dtype)
    >>> y, buffers = pnn.functional_call(net, net.named_parameters(), x, key=pnn.rng.key(0, xp=net.xp),
    ...                                  return_buffers=True)
    >>> y.shape, int(buffers["1.num_batches_tracked"]), int(net[1].num_batches_tracked)
    ((3, 4), 1, 0)
    """
    check_params(model, params)
    if not isinstance(return_buffers, bool):
        raise ArgumentTypeError(f"return_buffers must be a bool, got {type(return_buffers).__name__}")
    mode = call_mode(model, training, (x, *params.values()))
    full = _full_state(model, params)
    y, saved = model.functional_forward(full, x, Call(True, mode, call_key(model, mode, key)))
    _, updates = split_saved(saved)
    if return_buffers:
        return y, _buffers_out(model, full, updates)
    _refuse_updates(model, updates, "functional_call")
    return y


def value_and_grad(model: Module, loss_fn: LossFn, *, return_buffers: bool = False) -> Callable[..., Any]:
    """``f(params, x, y, *, key=None, training=None) -> (loss, grads)``: the loss of ``model`` and its gradient, pure.

    ``f`` runs the layers' pure pair (their explicit backward, with ``need_input_grad=False`` for the
    model's input): the model keeps no state, accumulates no gradient, rebinds no buffer and
    advances no random stream. Every call checks its arguments (``params`` as
    :func:`functional_call` does, ``x`` and ``y`` by the layers and the loss).

    Parameters
    ----------
    model : Module
        E.g. a :class:`~portable_nn.Sequential`.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``, e.g. :class:`~portable_nn.CrossEntropyLoss`.
    return_buffers : bool
        ``f`` returns ``(loss, grads, buffers)``: every buffer's value after the forward (BatchNorm's
        running statistics, updated in train mode). Without it a model that updates buffers is an
        ``ArgumentError``.

    Returns
    -------
    callable
        ``f(params, x, y, *, key=None, training=None) -> (loss, grads)``: ``params`` maps every name
        of ``model.named_parameters()`` (and optionally of ``named_buffers()``) to an array; ``grads``
        maps the parameter names to ``dL/dparam``; ``key`` and ``training`` as in :func:`functional_call`.

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

    A model with Dropout takes a key per call in train mode:

    >>> net = pnn.Sequential(pnn.Linear(2, 4, seed=0), pnn.Dropout(0.5), pnn.Linear(4, 1, seed=1))
    >>> g = pnn.value_and_grad(net, pnn.MSELoss())
    >>> k = pnn.rng.key(7, xp=net.xp)
    >>> x, y = np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32)
    >>> bool(g(net.named_parameters(), x, y, key=k)[0] == g(net.named_parameters(), x, y, key=k)[0])
    True
    """
    if not isinstance(model, Module):
        raise ArgumentTypeError(
            f"expected a portable_nn Module, got {type(model).__module__}.{type(model).__qualname__}"
        )
    if not callable(loss_fn):
        raise ArgumentTypeError(f"loss_fn must be callable (prediction, target) -> (loss, grad), got {type(loss_fn)}")
    if not isinstance(return_buffers, bool):
        raise ArgumentTypeError(f"return_buffers must be a bool, got {type(return_buffers).__name__}")
    core = loss_and_grads_fn(model, loss_fn, validate=True)

    def f(
        params: Mapping[str, Array], x: Array, y: Array, *, key: Array | None = None, training: bool | None = None
    ) -> Any:
        check_params(model, params)
        mode = call_mode(model, training, (x, *params.values()))
        full = _full_state(model, params)
        loss, grads, updates = core(full, x, y, mode, call_key(model, mode, key))
        if return_buffers:
            return loss, grads, _buffers_out(model, full, updates)
        _refuse_updates(model, updates, "value_and_grad's function")
        return loss, grads

    return f


def loss_and_grads_fn(model: Module, loss_fn: LossFn, *, validate: bool) -> CoreFn:
    """The one core of :func:`value_and_grad` and ``train_step``: ``core(params, x, y, training, key)``.

    ``core`` returns ``(loss, grads, new buffers)`` (the buffers the forward updated, by name;
    ``{}`` for most models). ``params`` holds the parameters and every buffer (checked by the
    caller); ``training`` and ``key`` are the call's mode and key (checked by the caller; ``key``
    None unless the model draws in this mode). With ``validate=False`` the layers and a built-in
    loss skip their checks (``train_step``'s steps after the first of an input signature; the
    class-target range is still checked wherever values are readable). A built-in loss is called
    as ``_compute(prediction, y, call)``; a user's ``loss_fn`` (or a :class:`~portable_nn.losses.Loss`
    subclass defining its own ``__call__``) as ``loss_fn(prediction, y)``.

    Parameters
    ----------
    model : Module
        The model.
    loss_fn : callable
        ``loss_fn(prediction, y) -> (loss, dL/dprediction)``.
    validate : bool
        Whether the layers and the loss check their arguments (``Call.validate``).

    Returns
    -------
    callable
        ``core(params, x, y, training, key) -> (loss, grads, new_buffers)``.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> model = pnn.Linear(2, 1, seed=0)
    >>> core = loss_and_grads_fn(model, pnn.MSELoss(), validate=False)
    >>> loss, grads, buffers = core(model.named_parameters(), np.ones((3, 2), np.float32),
    ...                             np.zeros((3, 1), np.float32), True, None)
    >>> sorted(grads), buffers
    (['bias', 'weight'], {})
    """
    forward, backward = model.functional_forward, model.functional_backward
    compute = compute_of(loss_fn)  # a built-in loss: called with ``call``, not ``loss_fn(prediction, y)``
    unkeyed = {True: Call(validate, True), False: Call(validate, False)}

    def core(
        params: Mapping[str, Array], x: Array, y: Array, training: bool, key: Any
    ) -> tuple[Array, dict[str, Array], dict[str, Array]]:
        call = unkeyed[training] if key is None else Call(validate, training, key)
        prediction, saved = forward(params, x, call)
        saved, updates = split_saved(saved)
        loss, grad = loss_fn(prediction, y) if compute is None else compute(prediction, y, call)
        _, grads = backward(params, saved, grad, False, call)  # the model's dL/dx is dropped: not computed
        return loss, grads, updates

    return core
