"""What ``train_step`` checks before it trusts an input signature: the loss's return, the signature, the abstract trace.

Private to :mod:`portable_nn.training.step`: a new input signature is validated once, as the eager
loop would validate it (the same typed errors), then the step runs unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .._backend import device_of, namespace_of
from .._trusted import checked_trace
from ..errors import ArgumentTypeError
from ..nn.module import Module
from ..typing import Array
from .functional_model import CoreFn, LossFn, check_params

__all__ = ["array_device", "check_abstractly", "placed_like", "returns_a_pair", "signature_of"]


def check_abstractly(
    checker: Callable[..., Any],
    checked_core: CoreFn,
    model: Module,
    params: dict[str, Array],
    buffers: dict[str, Array],
    training: bool,
    key: Any,
    x: Array,
    y: Array,
) -> Any:
    """Validate a new signature as the eager loop would, by an abstract trace (no device op, nothing compiled).

    The checked loss-and-gradient runs under the backend's abstract trace
    (:func:`portable_nn.backends.fast_paths.step_checker`) inside :class:`portable_nn._trusted.checked_trace`:
    every namespace, dtype, shape and device check raises as in the eager loop, and the range
    of class targets is checked on a host copy of ``y``. ``x`` or ``y`` that is no array of the
    parameters' backend and device enters the trace concrete (its check raises there); if then
    nothing raised, or a value check could not run, the eager validation decides (it runs the
    step's forward eagerly and keeps nothing: no buffer changes, no draw is taken). Returns the
    gradients (abstract: shapes and dtypes).

    Parameters
    ----------
    checker : callable
        The backend's abstract tracer, ``checker(fn, *args)`` (JAX: ``jax.eval_shape``).
    checked_core : callable
        The checked loss-and-gradient core (:func:`~portable_nn.training.functional_model.loss_and_grads_fn`).
    model : Module
        The model trained.
    params, buffers : dict of str to array
        Its parameters and buffers.
    training : bool
        The step's mode.
    key : array or None
        The step's random key.
    x, y : array
        The batch.

    Returns
    -------
    dict of str to array
        The gradients (abstract where the trace decided).
    """
    first = next(iter(params.values()))
    xp, device = namespace_of(first), array_device(first)
    traced = [placed_like(a, xp, device) for a in (x, y)]

    def probe(params: dict[str, Array], state: Any, *args: Array) -> Any:
        given = iter(args)
        tx, ty = (next(given) if on else a for a, on in zip((x, y), traced, strict=True))
        concrete = {id(t): a for t, a, on in ((tx, x, traced[0]), (ty, y, traced[1])) if on}
        traced_buffers, traced_key = state
        full = {**params, **traced_buffers} if traced_buffers else params
        with checked_trace(concrete, device) as unchecked:
            check_params(model, full)
            out = checked_core(full, tx, ty, training, traced_key)
        not_run.extend(unchecked)
        return out

    not_run: list[str] = []
    args = (a for a, on in zip((x, y), traced, strict=True) if on)
    _, grads, _ = checker(probe, params, (buffers, key), *args)
    if not_run or not all(traced):
        full = {**params, **buffers} if buffers else params
        check_params(model, full)
        _, grads, _ = checked_core(full, x, y, training, key)  # eager: the eager loop's checks
    return grads


def returns_a_pair(loss_fn: LossFn) -> LossFn:
    """``loss_fn``, with a typed error when it returns anything but a pair ``(loss, dloss/dprediction)``."""

    def checked(prediction: Array, target: Array) -> tuple[Array, Array]:
        out = loss_fn(prediction, target)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
            raise ArgumentTypeError(
                f"loss_fn must return a pair (loss, dloss/dprediction) like portable_nn's losses, got {got}"
            )
        return out[0], out[1]

    return checked


def signature_of(x: Array, y: Array) -> Hashable | None:
    """Types, shapes, dtypes and devices of ``x`` and ``y``, or None (not arrays, unhashable parts)."""
    try:
        signature = (
            type(x),
            tuple(x.shape),
            x.dtype,
            array_device(x),
            type(y),
            tuple(y.shape),
            y.dtype,
            array_device(y),
        )
        hash(signature)
    except Exception:  # not arrays, or unhashable parts: validate every call
        return None
    return signature


def placed_like(a: Any, xp: Any, device: Any) -> bool:
    """Whether ``a`` is an array of namespace ``xp`` on ``device`` (anything else: False, never an error)."""
    try:
        return namespace_of(a) is xp and array_device(a) == device
    except Exception:  # not an array: the checks inside the trace say so
        return False


def array_device(x: Array) -> Any:
    """``x.device`` where it is an attribute (~0.1-0.4 µs), else :func:`portable_nn._backend.device_of`."""
    device = getattr(x, "device", None)
    return device_of(x) if device is None or callable(device) else device
