"""Pure forward/backward math of the linear layer, written only against the array API standard.

PyTorch layout: ``weight`` is ``(out, in)``, ``bias`` is ``(out,)``. Inputs are ``(*, in)``: 1-D, 2-D or
N-D, with any batch size including 0. Everything here is stateless and traceable by
``jax.jit`` (only shapes, dtypes and devices are inspected, never values). Operands of
another namespace, dtype or device than ``weight`` raise NamespaceError, DTypeError or DeviceError.

For the (in, out) layout ``Z = X W + b`` of other texts, pass ``weight = W.T``.
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import backend_name, device_of, namespace_of
from ._checks import check_features, check_same_device, check_same_dtype, shape_str
from .backends.fast_paths import array_ops
from .errors import NamespaceError, ShapeError
from .typing import Array

__all__ = ["linear", "linear_backward"]


def _check_operands(x: Array, weight: Array, bias: Array | None) -> None:
    xp = namespace_of(weight)
    for what, arr in (("input", x), ("bias", bias)):
        if arr is not None and namespace_of(arr) is not xp:
            given = backend_name(namespace_of(arr))
            raise NamespaceError(f"{what}: expected a {backend_name(xp)} array like weight, got a {given} array")
    if weight.ndim != 2:
        raise ShapeError(f"weight: expected shape (out_features, in_features), got {shape_str(weight.shape)}")
    device = device_of(weight)
    check_same_device(xp, "input", device, x)
    if bias is not None:
        check_same_device(xp, "bias", device, bias)
    check_features(x, weight.shape[1])
    check_same_dtype(xp, "input", weight.dtype, x.dtype)
    if bias is not None:
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"bias: expected shape ({weight.shape[0]},), got {shape_str(bias.shape)}")
        check_same_dtype(xp, "bias", weight.dtype, bias.dtype)


def _rows(a: Array, features: int) -> Array:
    """``a`` (*, features) viewed as a matrix (rows, features); non-empty 2-D arrays pass through."""
    leading = a.shape[:-1]
    static = all(isinstance(d, int) for d in leading)
    rows = math.prod(leading) if static else -1
    xp = namespace_of(a)
    if static and rows * features == 0:
        # Empty: nothing to move, so build it (Dask fails to reshape or contract empty arrays split in chunks).
        return xp.zeros((rows, features), dtype=a.dtype, device=device_of(a))
    return a if a.ndim == 2 else xp.reshape(a, (rows, features))


def linear(x: Array, weight: Array, bias: Array | None = None) -> Array:
    """``y = x @ weight.T + bias``.

    Shapes: ``x`` ``(*, in)``, ``weight`` ``(out, in)``, ``bias`` ``(out,)`` or None -> ``y`` ``(*, out)``.

    Parameters
    ----------
    x : array
        The input, shape ``(*, in)`` (any number of leading axes, batch size 0 included).
    weight : array
        Shape ``(out, in)``, PyTorch's layout; ``x`` and ``bias`` share its namespace, device and dtype.
    bias : array or None
        Shape ``(out,)``, or None for no bias.

    Returns
    -------
    array
        ``y``, shape ``(*, out)``, ``weight``'s dtype and device.

    Raises
    ------
    NamespaceError, DeviceError, DTypeError
        An operand of another namespace, device or dtype than ``weight``.
    ShapeError
        ``weight`` not 2-D, ``x``'s last axis not ``in``, or ``bias`` not ``(out,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.functional import linear
    >>> weight = np.asarray([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    >>> linear(np.ones((4, 3)), weight, np.asarray([0.5, -1.0])).tolist()[0]
    [6.5, 0.0]
    """
    _check_operands(x, weight, bias)
    return _linear(x, weight, bias)


def _linear(x: Array, weight: Array, bias: Array | None) -> Array:
    """:func:`linear` without validation (callers have checked)."""
    ndim = x.ndim
    if (ndim == 2 and 0 not in x.shape) or ndim == 1 or None in x.shape:  # common case, or symbolic sizes
        if bias is not None and ndim == 2:
            fused = _fused_linear.get(type(x), _UNKNOWN)  # one dict lookup per call, no frame
            if fused is _UNKNOWN:
                fused = _fused_op(_fused_linear, x, "linear")
            if fused is not None:  # one kernel where the backend has it (torch's addmm)
                return fused(x, weight, bias)
        y = x @ weight.T  # weight.T is a strided view: BLAS reads it transposed, no copy
    else:  # N-D, or empty (built by _rows: Dask cannot contract empty arrays split in chunks)
        y = _rows(x, weight.shape[1]) @ weight.T
        if x.ndim != 2:
            y = namespace_of(x).reshape(y, (*x.shape[:-1], weight.shape[0]))
    if bias is not None:
        # The standard's in-place add, on the matmul result nobody else holds: no second (*, out) buffer.
        # Libraries without in-place operators (JAX, Dask) fall back to ``y = y + bias``.
        y += bias
    return y


def linear_backward(
    grad_output: Array, x: Array, weight: Array, has_bias: bool = True
) -> tuple[Array, Array, Array | None]:
    """Gradients of ``linear`` given the upstream gradient ``g = dL/dy``.

    Shapes: ``grad_output`` ``(*, out)``, ``x`` ``(*, in)``, ``weight`` ``(out, in)``. Leading axes are
    flattened to rows: ``grad_x = g @ weight`` (shape of x), ``grad_weight = g.T @ x``
    (out, in), ``grad_bias = sum(g, axis=0)`` (out,) or None when ``has_bias`` is False.

    Parameters
    ----------
    grad_output : array
        ``dL/dy``, shape ``(*, out)``.
    x : array
        The forward's input, shape ``(*, in)``.
    weight : array
        Shape ``(out, in)``; the other operands share its namespace, device and dtype.
    has_bias : bool
        Whether the forward had a bias (False: ``grad_bias`` is None).

    Returns
    -------
    grad_x : array
        ``dL/dx``, the shape of ``x``.
    grad_weight : array
        ``dL/dweight``, shape ``(out, in)``.
    grad_bias : array or None
        ``dL/dbias``, shape ``(out,)``, or None without a bias.

    Raises
    ------
    NamespaceError, DeviceError, DTypeError
        An operand of another namespace, device or dtype than ``weight``.
    ShapeError
        ``weight`` not 2-D, ``x``'s last axis not ``in``, or ``grad_output`` not ``(*, out)``.

    Examples
    --------
    >>> import numpy as np
    >>> from portable_nn.functional import linear_backward
    >>> weight = np.asarray([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    >>> grad_x, grad_weight, grad_bias = linear_backward(np.ones((4, 2)), np.ones((4, 3)), weight)
    >>> grad_x[0].tolist(), grad_weight.tolist(), grad_bias.tolist()
    ([1.0, 3.0, 3.0], [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], [4.0, 4.0])
    """
    _check_operands(x, weight, None)
    if namespace_of(grad_output) is not namespace_of(weight):
        raise NamespaceError(
            f"grad_output: expected a {backend_name(namespace_of(weight))} array, "
            f"got a {backend_name(namespace_of(grad_output))} array"
        )
    expected = (*x.shape[:-1], weight.shape[0])
    if tuple(grad_output.shape) != expected:
        raise ShapeError(f"grad_output: expected shape {shape_str(expected)}, got {shape_str(grad_output.shape)}")
    xp = namespace_of(weight)
    check_same_dtype(xp, "grad_output", weight.dtype, grad_output.dtype)
    check_same_device(xp, "grad_output", device_of(weight), grad_output)
    return _linear_backward(xp, grad_output, x, weight, has_bias)


def _linear_backward(
    xp: Any, grad_output: Array, x: Array, weight: Array, has_bias: bool, input_grad: bool = True
) -> tuple[Array, Array, Array | None]:
    """:func:`linear_backward` without validation (callers have checked); ``xp`` is the arrays' namespace.

    ``input_grad=False`` skips ``dL/dx`` (its caller drops it) and returns ``None`` in its place.
    """
    grad_x: Any = None
    if x.ndim == 2 and 0 not in x.shape and 0 not in grad_output.shape:  # the common case: no reshapes
        g, rows = grad_output, x
        if input_grad:
            grad_x = g @ weight
    else:  # 1-D, N-D or empty: through (rows, features) matrices
        out_features, in_features = weight.shape
        g, rows = _rows(grad_output, out_features), _rows(x, in_features)
        if input_grad:
            grad_x = g @ weight
            if x.ndim != 2:
                grad_x = xp.reshape(grad_x, tuple(x.shape))
    grad_weight = g.T @ rows  # (out, rows) @ (rows, in): both operands read as stored, no copies
    grad_bias = None
    if has_bias:
        sum_rows = _fused_sum_rows.get(type(g), _UNKNOWN)  # NumPy: its reduce without np.sum's wrapper
        if sum_rows is _UNKNOWN:
            sum_rows = _fused_op(_fused_sum_rows, g, "sum_rows")
        grad_bias = xp.sum(g, axis=0) if sum_rows is None else sum_rows(g)
    return grad_x, grad_weight, grad_bias


#: array type -> the backend's fused ``linear`` / ``sum_rows`` (:func:`~portable_nn.backends.fast_paths.array_ops`)
#: or None: asked on every layer call, so kept per type here (one dict lookup, no call)
_fused_linear: dict[type, Any] = {}
_fused_sum_rows: dict[type, Any] = {}
_UNKNOWN: Any = object()


def _fused_op(cache: dict[type, Any], x: Array, name: str) -> Any:
    """The primitive ``name`` of ``x``'s backend (None: the generic code), remembered in ``cache`` by array type."""
    ops = array_ops(x)
    op = cache[type(x)] = None if ops is None else getattr(ops, name, None)
    return op
