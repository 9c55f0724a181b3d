"""``check_gradients``: verify a hand-written backward against float64 oracles.

The oracles are central finite differences of the forward in float64 (on the backend when it
has float64 on the inputs' device, else on the host with NumPy) and, when PyTorch is
installed, ``torch.autograd`` through the same forward re-run on float64 torch tensors. That
works because the forward is written against the array API: it runs unchanged on torch.

Integer and boolean inputs (indices, masks) are not differentiable: they are passed through
unchanged to every evaluation, and the backward returns None for them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._backend import (
    backend_name,
    device_of,
    dtype_name,
    from_host,
    namespace_of,
    resolve_dtype,
    supported_dtypes,
    to_host,
)
from ..typing import Array
from .arrays import random_array
from .assertions import assert_close
from .tolerances import tolerance

__all__ = ["GradientCheck", "check_gradients"]


_EPS64 = float(np.finfo(np.float64).eps)
#: Central-difference step relative to max(1, |value|): eps**(1/3) balances rounding and truncation.
_STEP = _EPS64 ** (1 / 3)
#: Safety factor on the rounding noise of a central difference, ``eps * sum|g * f| / step``: the
#: forward's own float64 rounding may exceed ``eps * |f|`` when its terms cancel. At 1000 the
#: slack is ~4e-8 * sum|g * f|, far below the O(1) error of a wrong backward.
_FD_NOISE_FACTOR = 1000.0


@dataclass
class GradientCheck:
    """What :func:`check_gradients` compared: reference name -> input name -> max abs error.

    Parameters
    ----------
    references : list of str
        The references ``backward`` was compared with (``"finite differences (host)"``, ``"torch.autograd"``...).
    max_abs_error : dict of str to dict of str to float
        Reference name -> input name -> the largest absolute difference found.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.testing import check_gradients
    >>> report = check_gradients(lambda x: x * x, lambda g, x: [2 * x * g], [np.array([1.0, 2.0])])
    >>> len(report.references) >= 1
    True
    """

    references: list[str] = field(default_factory=list)
    max_abs_error: dict[str, dict[str, float]] = field(default_factory=dict)


def check_gradients(
    forward: Callable[..., Array],
    backward: Callable[..., Sequence[Array | None]],
    inputs: Sequence[Array | None],
    *,
    names: Sequence[str] | None = None,
    grad_output: Array | None = None,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    finite_differences: Literal["auto", "backend", "host"] | None = "auto",
    autograd: bool | None = None,
) -> GradientCheck:
    """Check that ``backward`` is the vector-Jacobian product of ``forward``; raise AssertionError if not.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> output``, written against the array API (it is re-run on float64
        copies: NumPy or the inputs' backend for finite differences, torch for autograd).
    backward : callable
        ``backward(grad_output, *inputs) -> grads``, one gradient per input, each with the input's
        namespace, device, dtype and shape (``None`` exactly where the input is ``None`` or not
        differentiable: an integer or boolean array).
    inputs : sequence of arrays or None
        Arrays of one backend, or ``None`` for absent optional inputs (e.g. no bias). Floating
        inputs are checked; integer and boolean ones (indices, masks) are passed unchanged to every
        evaluation (as NumPy copies of the same dtype on the host, as int64/bool tensors for
        torch.autograd). Finite differences cost two forward calls per floating input element:
        keep them small.
    names : sequence of str, optional
        Labels for the inputs in messages (default ``inputs[i]``).
    grad_output : array, optional
        The upstream gradient ``dL/d output``, shaped like the output; default a seeded standard
        normal array (``seed``).
    seed : int
        Seed of the default ``grad_output``.
    rtol : float, optional
        Relative tolerance for the backward (computed in the inputs' dtype) against the float64
        references; default :func:`~portable_nn.testing.tolerance` of each input's dtype.
    atol : float, optional
        Absolute tolerance, as ``rtol``.
    finite_differences : {"auto", "backend", "host"} or None
        Where to evaluate the forward in float64: ``"backend"``, ``"host"`` (NumPy), ``"auto"``
        (the backend if it has float64 there, else the host) or None (skip).
    autograd : bool or None
        Compare against ``torch.autograd``: None = when torch is installed, True = required.

    Returns
    -------
    GradientCheck
        The references used and the max abs error per input.

    Raises
    ------
    AssertionError
        Naming the input, the reference, the number of mismatching elements and the worst one
        (index, values, abs/rel error); or for a malformed backward result.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn import functional as F
    >>> from portable_nn.testing import check_gradients
    >>> x, w = np.ones((2, 3)), np.full((4, 3), 0.5)
    >>> def backward(g, x, w):  # grad_x, grad_weight (no bias)
    ...     return F.linear_backward(g, x, w, has_bias=False)[:2]
    >>> check = check_gradients(F.linear, backward, [x, w], names=["x", "weight"])
    >>> check.references[0], check.max_abs_error[check.references[0]]["weight"] < 1e-8
    ('finite differences (float64 on backend)', True)

    An integer input (a lookup's indices) gets None as its gradient:

    >>> from portable_nn.nn.scatter import gather_rows, index_add
    >>> table, index = np.arange(6.0).reshape(3, 2), np.asarray([2, 0, 2])
    >>> check = check_gradients(
    ...     gather_rows, lambda g, t, i: (index_add(i, g, t.shape[0]), None), [table, index], names=["table", "index"]
    ... )
    >>> sorted(check.max_abs_error[check.references[0]])
    ['table']
    """
    __tracebackhide__ = True  # pytest shows the caller's line and the message, not this module's source
    inputs = list(inputs)
    names = list(names) if names is not None else [f"inputs[{i}]" for i in range(len(inputs))]
    present = [x for x in inputs if x is not None]
    if not present or len(names) != len(inputs):
        raise ValueError("check_gradients needs at least one array input and one name per input")
    xp = namespace_of(present[0])
    differentiable = [x is not None and bool(xp.isdtype(x.dtype, "real floating")) for x in inputs]
    if not any(differentiable):
        raise ValueError("check_gradients needs at least one floating (differentiable) input")
    output = forward(*inputs)
    if grad_output is None:
        shape, device = tuple(output.shape), device_of(output)
        grad_output, g64 = random_array(xp, shape, device=device, dtype=output.dtype, seed=seed)
    else:
        g64 = to_host(grad_output).astype(np.float64)
    grads = _checked_structure(backward(grad_output, *inputs), inputs, names, differentiable)
    for name, x, grad, wanted in zip(names, inputs, grads, differentiable, strict=True):
        if wanted:
            _check_like_input(grad, x, name)
    host = [
        None if x is None else to_host(x).astype(np.float64) if wanted else to_host(x)
        for x, wanted in zip(inputs, differentiable, strict=True)
    ]

    # (reference name, its gradients, the bound of its own error, added to atol)
    references: list[tuple[str, list[np.ndarray | None], float]] = []
    if finite_differences is not None:
        where = _fd_location(finite_differences, xp, present)
        evaluate = _host_forward(forward) if where == "host" else _backend_forward(forward, xp, inputs, differentiable)
        fd_grads, noise = _finite_differences(evaluate, host, g64, differentiable)
        references.append((f"finite differences (float64 on {where})", fd_grads, noise))
    if autograd or (autograd is None and importlib.util.find_spec("torch") is not None):
        references.append(("torch.autograd (float64)", _torch_autograd(forward, host, g64, differentiable), 0.0))
    if not references:
        raise ValueError("nothing to compare against: enable finite_differences or autograd")

    result = GradientCheck()
    for reference, expected, noise in references:
        result.references.append(reference)
        errors = result.max_abs_error.setdefault(reference, {})
        for name, x, grad, want in zip(names, inputs, grads, expected, strict=True):
            if x is None or want is None:
                continue
            dtype_rtol, dtype_atol = tolerance(dtype_name(xp, x.dtype))
            assert_close(
                grad, want, xp=xp, device=device_of(x), dtype=x.dtype,
                rtol=dtype_rtol if rtol is None else rtol, atol=(dtype_atol if atol is None else atol) + noise,
                msg=f"backward's gradient for {name!r} disagrees with {reference}",
            )  # fmt: skip
            errors[name] = float(np.max(np.abs(to_host(grad).astype(np.float64) - want), initial=0.0))
    return result


def _check_like_input(grad: Array, x: Array, name: str) -> None:
    """A gradient has its input's namespace, device, dtype and shape: anything else is a broken backward."""
    __tracebackhide__ = True
    what = f"backward's gradient for {name!r}"
    xp = namespace_of(x)
    try:
        grad_xp = namespace_of(grad)
    except Exception:
        raise AssertionError(f"{what}: expected a {backend_name(xp)} array, got a {type(grad).__name__}") from None
    if backend_name(grad_xp) != backend_name(xp):
        raise AssertionError(f"{what}: expected a {backend_name(xp)} array, got a {backend_name(grad_xp)} array")
    if device_of(grad) != device_of(x):
        raise AssertionError(f"{what}: expected an array on the input's device {device_of(x)}, got {device_of(grad)}")
    if grad.dtype != x.dtype:
        raise AssertionError(
            f"{what}: expected the input's dtype {dtype_name(xp, x.dtype)}, got {dtype_name(grad_xp, grad.dtype)}"
        )
    if tuple(grad.shape) != tuple(x.shape):
        raise AssertionError(f"{what}: expected the input's shape {tuple(x.shape)}, got {tuple(grad.shape)}")


def _checked_structure(
    grads: Any, inputs: list[Array | None], names: list[str], differentiable: list[bool]
) -> list[Array | None]:
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        count = len(grads) if isinstance(grads, (tuple, list)) else type(grads).__name__
        raise AssertionError(f"backward must return one gradient per input ({len(inputs)}), got {count}")
    for name, x, grad, wanted in zip(names, inputs, grads, differentiable, strict=True):
        if x is None and grad is not None:
            raise AssertionError(f"backward returned a gradient for {name!r}, which is None")
        if x is not None and not wanted and grad is not None:
            raise AssertionError(
                f"backward returned a gradient for {name!r}, which is not differentiable "
                f"(dtype {dtype_name(namespace_of(x), x.dtype)}): return None for it"
            )
        if wanted and grad is None:
            raise AssertionError(f"backward returned None as the gradient for {name!r}")
    return list(grads)


def _fd_location(choice: str, xp: Any, present: list[Array]) -> str:
    if choice not in ("auto", "backend", "host"):
        raise ValueError(f"finite_differences must be 'auto', 'backend', 'host' or None, got {choice!r}")
    if choice != "auto":
        return choice
    has_float64 = all("float64" in supported_dtypes(xp, device_of(x)) for x in present)
    return "backend" if has_float64 else "host"


def _host_forward(forward: Callable[..., Array]) -> Callable[[list[np.ndarray | None]], np.ndarray]:
    def evaluate(values: list[np.ndarray | None]) -> np.ndarray:
        return np.asarray(to_host(forward(*values)), dtype=np.float64)

    return evaluate


def _backend_forward(
    forward: Callable[..., Array], xp: Any, inputs: list[Array | None], differentiable: list[bool]
) -> Callable[[list[np.ndarray | None]], np.ndarray]:
    float64 = resolve_dtype(xp, "float64")
    devices = [None if x is None else device_of(x) for x in inputs]

    def evaluate(values: list[np.ndarray | None]) -> np.ndarray:
        arrays = [
            x if x is None or not wanted else from_host(v, xp, d, float64)  # integer inputs: the caller's own
            for x, v, d, wanted in zip(inputs, values, devices, differentiable, strict=True)
        ]
        return np.asarray(to_host(forward(*arrays)), dtype=np.float64)

    return evaluate


def _finite_differences(
    evaluate: Callable[[list[np.ndarray | None]], np.ndarray],
    host: list[np.ndarray | None],
    g64: np.ndarray,
    differentiable: list[bool],
) -> tuple[list[np.ndarray | None], float]:
    """Central differences of ``L = sum(g * forward(inputs))`` for every input element, and their noise bound."""
    base = evaluate(host)
    if base.shape != g64.shape:
        raise AssertionError(f"forward's output shape changed in float64: {base.shape} vs {g64.shape}")
    grads: list[np.ndarray | None] = []
    for i, x in enumerate(host):
        if x is None or not differentiable[i]:
            grads.append(None)
            continue
        grad = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            step = _STEP * max(1.0, abs(float(x[j])))
            losses = []
            for sign in (1.0, -1.0):
                moved = x.copy()
                moved[j] += sign * step
                losses.append(float(np.sum(g64 * evaluate([*host[:i], moved, *host[i + 1 :]]))))
            grad[j] = (losses[0] - losses[1]) / (2 * step)
        grads.append(grad)
    noise = _FD_NOISE_FACTOR * _EPS64 * float(np.sum(np.abs(g64 * base))) / _STEP
    return grads, noise


def _torch_autograd(
    forward: Callable[..., Array], host: list[np.ndarray | None], g64: np.ndarray, differentiable: list[bool]
) -> list[Any]:
    """Gradients of ``sum(g * forward(inputs))`` by torch.autograd on float64 CPU tensors (None: not differentiable)."""
    import torch

    leaves = [
        None if x is None else torch.tensor(x, dtype=torch.float64, requires_grad=True) if wanted else torch.tensor(x)
        for x, wanted in zip(host, differentiable, strict=True)
    ]
    output = forward(*leaves)
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"forward returned {type(output).__name__} for torch inputs; it must use the array API")
    wrt = [leaf for leaf, wanted in zip(leaves, differentiable, strict=True) if wanted and leaf is not None]
    found = iter(torch.autograd.grad(output, wrt, grad_outputs=torch.from_numpy(g64), allow_unused=True))
    grads: list[Any] = []
    for leaf, wanted in zip(leaves, differentiable, strict=True):
        if leaf is None or not wanted:
            grads.append(None)
            continue
        grad = next(found)
        grads.append(np.zeros(tuple(leaf.shape)) if grad is None else grad.detach().numpy())
    return grads
