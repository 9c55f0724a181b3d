"""Gradient clipping over any :class:`~portable_nn.nn.module.Module`, as ``torch.nn.utils``'s functions.

Both read the module's accumulated gradients (``named_grads``; parameters without a gradient
are skipped, like PyTorch's) and rebind clipped ones through ``Module.set_grads``: the arrays a
caller may hold are never modified.

Usage::

    model.backward(grad)
    total = pnn.clip_grad_norm_(model, max_norm=1.0)
    opt.step()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._arrays import as_array
from .._backend import device_of, dtype_name, resolve_dtype, to_host
from .._checks import check_real
from ..errors import ArgumentError, ArgumentTypeError
from ..typing import Array
from .module import Module

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(module: Any, what: str) -> dict[str, Array]:
    if not isinstance(module, Module):
        raise ArgumentTypeError(
            f"{what} clips the gradients of a portable_nn Module, got {type(module).__module__}."
            f"{type(module).__qualname__}"
        )
    if not module.named_parameters():
        raise ArgumentError(
            f"{what}: {type(module).__name__} has no parameters, hence no gradients to clip "
            "(pass the model that holds the parameters)"
        )
    return {name: grad for name, grad in module.named_grads().items() if grad is not None}


#: Half-precision gradients are reduced in float32 and the result rounded back, as PyTorch's
#: ``vector_norm`` accumulates them (a float16 sum of squares overflows from a norm of 256).
_WIDENED = ("float16", "bfloat16")


def _norm_type(value: Any) -> float:
    if isinstance(value, str) and value.lower() == "inf":
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    return check_real("norm_type", value, low=0.0, low_open=True)


def _vector_norm(xp: ModuleType, x: Array, p: float) -> Array:
    """The ``p``-norm of all of ``x``'s elements, as a 0-d array of ``x``'s dtype (0 for an empty array).

    float16/bfloat16 are accumulated in float32 and the norm rounded back to ``x``'s dtype.
    """
    if dtype_name(xp, x.dtype) in _WIDENED:
        wide = _vector_norm(xp, xp.astype(x, resolve_dtype(xp, "float32")), p)
        return as_array(xp, xp.astype(wide, x.dtype))
    if p == math.inf:
        if math.prod(x.shape) == 0:
            return xp.zeros((), dtype=x.dtype, device=device_of(x))
        return as_array(xp, xp.max(xp.abs(x)))
    if p == 2.0:
        return as_array(xp, xp.sqrt(xp.sum(x * x)))
    if p == 1.0:
        return as_array(xp, xp.sum(xp.abs(x)))
    return as_array(xp, xp.sum(xp.abs(x) ** p) ** (1.0 / p))


def clip_grad_norm_(module: Module, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Array:
    """Scale every gradient by ``min(1, max_norm / (total_norm + 1e-6))``; return ``total_norm``.

    ``total_norm`` is the ``norm_type``-norm of the per-gradient norms (= the norm of all
    gradients concatenated), a 0-d array on the module's backend, device and dtype, taken
    before clipping, as ``torch.nn.utils.clip_grad_norm_`` returns it.

    Parameters
    ----------
    module : Module
        Any portable_nn module (``Linear``, ``Sequential``, a user layer).
    max_norm : float
        The largest total norm kept, ``>= 0``.
    norm_type : float
        ``p > 0`` of the p-norm; ``math.inf`` (or ``"inf"``) for the largest absolute value.
    error_if_nonfinite : bool
        Raise an ``ArgumentError`` (and change nothing) when the total norm is NaN or infinite;
        this reads it back to the host. Otherwise non-finite norms propagate, as in PyTorch.

    Returns
    -------
    total_norm : 0-d array
        0 when no parameter has a gradient. float16/bfloat16 gradients are reduced in float32
        and each norm rounded to their dtype, as PyTorch does.

    Raises
    ------
    ArgumentError
        ``module`` has no parameters at all (e.g. an activation), a bad ``max_norm`` or
        ``norm_type``, or a non-finite norm with ``error_if_nonfinite=True``; nothing is changed.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> layer = pnn.Linear(2, 1, bias=False, seed=0)
    >>> layer.set_grads({"weight": layer.xp.asarray([[3.0, 4.0]], dtype=layer.dtype)})
    >>> float(clip_grad_norm_(layer, 1.0)), [round(v, 4) for v in layer.grad_weight[0].tolist()]
    (5.0, [0.6, 0.8])
    """
    grads = _grads(module, "clip_grad_norm_")
    max_norm = check_real("max_norm", max_norm, low=0.0)
    p = _norm_type(norm_type)
    if not isinstance(error_if_nonfinite, bool):
        raise ArgumentTypeError(f"error_if_nonfinite must be a bool, got {type(error_if_nonfinite).__name__}")
    xp: ModuleType = module.xp
    if not grads:
        return xp.zeros((), dtype=module.dtype, device=module.device)
    total = total_norm(xp, grads, p)
    if error_if_nonfinite and not math.isfinite(float(to_host(total))):
        raise ArgumentError(
            f"the total norm of order {p} of the gradients is non-finite ({float(to_host(total))}), so they "
            "cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    module.set_grads(scaled_to_norm(xp, grads, total, max_norm))
    return total


def total_norm(xp: ModuleType, grads: Mapping[str, Array], p: float = 2.0) -> Array:
    """The ``p``-norm of every array of ``grads`` concatenated (the norm of their norms), a 0-d array; pure.

    Parameters
    ----------
    xp : namespace
        The arrays' namespace.
    grads : mapping of str to array
        At least one array, all of one dtype.
    p : float
        The order (``math.inf`` for the largest absolute value).

    Returns
    -------
    0-d array
        The total norm, in the arrays' dtype (float16/bfloat16 reduced in float32).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> float(total_norm(xp, {"a": xp.asarray([3.0]), "b": xp.asarray([4.0])}))
    5.0
    """
    norms = xp.stack([_vector_norm(xp, grad, p) for grad in grads.values()])
    return _vector_norm(xp, norms, p)


def scaled_to_norm(xp: ModuleType, grads: Mapping[str, Array], total: Array, max_norm: float) -> dict[str, Array]:
    """``grads`` scaled by ``min(1, max_norm / (total + 1e-6))`` as ``torch.nn.utils.clip_grad_norm_`` scales; pure.

    Parameters
    ----------
    xp : namespace
        The arrays' namespace.
    grads : mapping of str to array
        The gradients.
    total : 0-d array
        Their total norm (:func:`total_norm`).
    max_norm : float
        The largest total norm kept.

    Returns
    -------
    dict of str to array
        New arrays (``grads`` is not modified); NaN norms give NaN gradients, as in PyTorch.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> g = {"w": xp.asarray([3.0, 4.0])}
    >>> scaled_to_norm(xp, g, total_norm(xp, g), 1.0)["w"].round(4).tolist()
    [0.6, 0.8]
    """
    coefficient = max_norm / (total + 1e-6)
    coefficient = xp.minimum(coefficient, xp.ones_like(coefficient))  # NaN stays NaN, as torch's clamp
    return {name: as_array(xp, grad * coefficient) for name, grad in grads.items()}


def clip_grad_value_(module: Module, clip_value: float) -> None:
    """Clip every gradient elementwise into ``[-clip_value, clip_value]``: ``torch.nn.utils.clip_grad_value_``.

    ``clip_value`` is a finite number ``>= 0``. NaN entries stay NaN, as in PyTorch. A module
    without parameters (e.g. an activation) is an ``ArgumentError``, as in ``clip_grad_norm_``.

    Parameters
    ----------
    module : Module
        The model whose gradients (``grad_<name>``, each its parameter's shape) are replaced by
        clipped copies (rebound, never changed in place); gradients still None are skipped.
    clip_value : float
        The bound, finite and ``>= 0``.

    Raises
    ------
    ArgumentTypeError
        ``module`` is not a portable_nn Module.
    ArgumentError
        ``module`` has no parameters, or ``clip_value`` is negative or not finite; nothing is changed.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> layer = pnn.Linear(2, 1, bias=False, seed=0)
    >>> layer.set_grads({"weight": layer.xp.asarray([[3.0, -0.5]], dtype=layer.dtype)})
    >>> clip_grad_value_(layer, 1.0); layer.grad_weight.tolist()
    [[1.0, -0.5]]
    """
    grads = _grads(module, "clip_grad_value_")
    limit = check_real("clip_value", clip_value, low=0.0)
    xp: ModuleType = module.xp
    module.set_grads({name: as_array(xp, xp.clip(grad, -limit, limit)) for name, grad in grads.items()})
