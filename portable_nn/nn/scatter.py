"""Row gather and scatter-add with checked indices: an embedding's lookup and its weight gradient.

- :func:`gather_rows` ``(table, index)``: ``table[index]``, one row per index (``index.shape +
  table.shape[1:]``);
- :func:`index_add` ``(index, values, num_rows)``: ``out[index[j]] += values[j]`` into zeros of
  ``(num_rows,) + values.shape[index.ndim:]``, repeated indices summed (the transpose of
  :func:`gather_rows`).

Index values outside ``[0, size)`` raise :class:`~portable_nn.errors.IndexOutOfRangeError` whenever
the values can be read (eager arrays, Dask's computed on the spot, ``torch.compile`` by a graph
break). Inside a compiler that hides values (a JAX tracer in ``jax.jit``/``jax.vmap``) nothing can
be read: an out-of-range index then adds nowhere in :func:`index_add` (JAX's and the one-hot form's
rule) and gives a row of NaN in :func:`gather_rows` (``jnp.take``'s ``fill`` rule); check the indices
before the compiled call.

The array API has no scatter, so the generic :func:`index_add` is a one-hot matrix product
(``O(num_rows * n * row)`` work, ``num_rows * n`` memory). Backends with a scatter-add use it
through ``portable_nn.backends.fast_paths.scatter_ops`` (NumPy ``np.add.at``, PyTorch ``index_add_``,
JAX ``.at[index].add``); they agree with the generic form within float rounding (the sums run
in another order).

Examples
--------
>>> import array_api_compat.numpy as xp
>>> from portable_nn.nn.scatter import gather_rows, index_add
>>> table = xp.reshape(xp.arange(6.0), (3, 2))
>>> gather_rows(table, xp.asarray([[2, 0]])).tolist()
[[[4.0, 5.0], [0.0, 1.0]]]
>>> index_add(xp.asarray([1, 1, 2]), xp.ones((3, 2)), 3).tolist()
[[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]]
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import device_of, dtype_name, has_values, is_lazy, is_traced, namespace_of
from .._checks import check_array, namespace_of_arg, shape_str
from ..backends.fast_paths import scatter_ops
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, IndexOutOfRangeError, ShapeError
from ..typing import Array

__all__ = ["check_index_range", "gather_rows", "index_add"]


def check_index_range(index: Array, size: int, what: str = "index") -> None:
    """Raise :class:`~portable_nn.errors.IndexOutOfRangeError` if a value of ``index`` lies outside ``[0, size)``.

    One read-back of one boolean when all values are in range (and of the min and max when not, for
    the message). A traced array (inside ``jax.jit``/``jax.vmap``) or a symbolic one (an ndonnx graph
    input, as :func:`~portable_nn.export_onnx` traces) is not read: it passes.

    Parameters
    ----------
    index : array
        Integer indices, any shape.
    size : int
        The number of rows indexed.
    what : str
        The name of ``index`` in the message.

    Raises
    ------
    IndexOutOfRangeError
        Naming the range found and the range allowed.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from portable_nn.nn.scatter import check_index_range
    >>> check_index_range(xp.asarray([0, 3]), 3)
    Traceback (most recent call last):
    ...
    portable_nn.errors.IndexOutOfRangeError: index: values must lie in [0, 3), got values in [0, 3]
    """
    xp = namespace_of(index)
    if is_traced(index) or (is_lazy(xp) and not has_values(index)) or math.prod(index.shape) == 0:
        return  # a tracer or a symbolic array (an ndonnx graph input, export_onnx) has no values to read
    if bool(xp.any((index < 0) | (index >= size))):
        low, high = int(xp.min(index)), int(xp.max(index))
        raise IndexOutOfRangeError(f"{what}: values must lie in [0, {size}), got values in [{low}, {high}]")


def _check_index(index: Array, what: str) -> Any:
    xp = namespace_of_arg(what, index)
    if not xp.isdtype(index.dtype, "integral"):
        raise DTypeError(f"{what}: expected an integer array, got dtype {dtype_name(xp, index.dtype)}")
    return xp


def _check_size(size: Any, what: str) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise ArgumentTypeError(f"{what}: expected an int, got {type(size).__name__}")
    if size < 0:
        raise ArgumentError(f"{what}: expected an int >= 0, got {size}")
    return size


def gather_rows(table: Array, index: Array) -> Array:
    """``table[index]``: row ``index[...]`` of ``table`` for every index (an embedding lookup).

    Parameters
    ----------
    table : array
        Shape ``(num_rows, *row)``, any dtype.
    index : array
        Integer indices of any shape, on ``table``'s namespace and device, in ``[0, num_rows)``.

    Returns
    -------
    array
        Shape ``index.shape + row``, ``table``'s dtype.

    Raises
    ------
    IndexOutOfRangeError
        An index outside ``[0, num_rows)`` (not checked on traced indices: see the module notes).
    DTypeError, NamespaceError, DeviceError, ShapeError
        A non-integer ``index``, arrays of two backends or devices, a 0-d ``table``, a symbolic
        ``index`` with more than one unknown dimension.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from portable_nn.nn.scatter import gather_rows
    >>> gather_rows(xp.asarray([[1.0], [2.0]]), xp.asarray([1, 1, 0])).tolist()
    [[2.0], [2.0], [1.0]]
    """
    xp = namespace_of_arg("table", table)
    _check_index(index, "index")
    check_array(index, "index", xp, device_of(table))
    if len(table.shape) == 0:
        raise ShapeError("table: expected at least one axis (rows), got a 0-d array")
    check_index_range(index, table.shape[0])
    if None not in index.shape and math.prod(index.shape) == 0:  # JAX would place an empty take on the default device
        return xp.zeros((*index.shape, *table.shape[1:]), dtype=table.dtype, device=device_of(table))
    if index.ndim == 1:
        return xp.take(table, index, axis=0)
    rows = xp.take(table, xp.reshape(index, (-1,)), axis=0)
    return xp.reshape(rows, (*_reshape_sizes(index.shape), *table.shape[1:]))


def _reshape_sizes(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """``shape`` for ``reshape``, its one unknown size (``None``: a symbolic dimension of an ndonnx graph input)
    as ``-1``."""
    unknown = sum(size is None for size in shape)
    if unknown > 1:
        raise ShapeError(
            f"index: at most one unknown (symbolic) dimension can be gathered by the array API, got shape {shape}"
        )
    return tuple(-1 if size is None else size for size in shape)


def index_add(index: Array, values: Array, num_rows: int) -> Array:
    """Zeros of ``(num_rows, *row)`` with ``values[j]`` added to row ``index[j]`` (repeats summed).

    The transpose of :func:`gather_rows`: the gradient of a lookup with respect to its table is
    ``index_add(index, grad_output, num_rows)``.

    Parameters
    ----------
    index : array
        Integer indices of any shape, in ``[0, num_rows)``.
    values : array
        Floating, shape ``index.shape + row``, on ``index``'s namespace and device.
    num_rows : int
        The number of rows of the result.

    Returns
    -------
    array
        Shape ``(num_rows, *row)``, ``values``' dtype, namespace and device (a new array).

    Raises
    ------
    IndexOutOfRangeError
        An index outside ``[0, num_rows)`` (not checked on traced indices: see the module notes).
    DTypeError, NamespaceError, DeviceError, ShapeError, ArgumentError, ArgumentTypeError
        A non-integer ``index`` or non-floating ``values``, mismatched backends, devices or leading
        shape, a bad ``num_rows``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from portable_nn.nn.scatter import index_add
    >>> index_add(xp.asarray([[0, 2], [0, 0]]), xp.ones((2, 2, 1)), 3).tolist()
    [[3.0], [0.0], [1.0]]
    """
    xp = namespace_of_arg("values", values)
    if not xp.isdtype(values.dtype, "real floating"):
        raise DTypeError(f"values: expected a floating array, got dtype {dtype_name(xp, values.dtype)}")
    _check_index(index, "index")
    check_array(index, "index", xp, device_of(values))
    num_rows = _check_size(num_rows, "num_rows")
    lead = tuple(values.shape[: len(index.shape)])
    if lead != tuple(index.shape):
        raise ShapeError(
            f"values: expected a shape starting with index's {shape_str(index.shape)}, got {shape_str(values.shape)}"
        )
    check_index_range(index, num_rows)
    row = tuple(values.shape[len(index.shape) :])
    count = math.prod(index.shape)
    flat_index = xp.reshape(index, (count,))
    flat_values = xp.reshape(values, (count, math.prod(row)))
    ops = scatter_ops(values)
    summed = (
        _index_add_generic(flat_index, flat_values, num_rows)
        if ops is None
        else ops.index_add(flat_index, flat_values, num_rows)
    )
    return xp.reshape(summed, (num_rows, *row))


def _index_add_generic(index: Array, values: Array, num_rows: int) -> Array:
    """``index`` (n,), ``values`` (n, m) -> (num_rows, m): a one-hot ``(num_rows, n)`` matrix times ``values``."""
    xp = namespace_of(values)
    kind = xp.int64 if index.dtype == xp.int64 else xp.int32  # int8 cannot count 300 rows
    index = xp.astype(index, kind)
    rows = xp.arange(num_rows, dtype=kind, device=device_of(index))
    onehot = xp.astype(xp.reshape(rows, (num_rows, 1)) == xp.reshape(index, (1, index.shape[0])), values.dtype)
    return xp.matmul(onehot, values)
