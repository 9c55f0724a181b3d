"""portable_nn.nn.scatter on every backend: gather_rows and index_add against float64 NumPy (``np.take``,
``np.add.at`` on the host), the backend fast path against the generic one-hot form, the gradient of a lookup
checked by check_gradients (integer indices as an input), and out-of-range indices as a typed error.
"""

from __future__ import annotations

import numpy as np
import pytest

from portable_nn._backend import device_of, namespace_of, resolve_dtype
from portable_nn.backends.fast_paths import scatter_ops
from portable_nn.errors import ArgumentError, DTypeError, IndexOutOfRangeError, NamespaceError, ShapeError
from portable_nn.nn.scatter import _index_add_generic, gather_rows, index_add
from portable_nn.testing import assert_close, check_gradients, random_array, to_numpy

# (index shape, row shape, number of rows): repeats are certain where the index has more entries than rows
CASES = [((6,), (3,), 4), ((2, 5), (), 3), ((3, 2), (2, 2), 7), ((0,), (4,), 5), ((), (3,), 2), ((4,), (3,), 0)]
INDEX_DTYPES = ["int32", "int64", "int8"]


def _index(xp, device, shape, rows, dtype="int64", seed=0):
    """Seeded indices in [0, rows) of ``dtype`` on the backend, and their host copy."""
    host = np.random.default_rng(seed).integers(0, max(rows, 1), size=shape).astype(dtype)
    return xp.asarray(host, device=device), host


@pytest.mark.parametrize("index_shape,row,rows", [c for c in CASES if c[2] > 0 or np.prod(c[0]) == 0], ids=str)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_index_add_matches_numpy_add_at(xp, device, dtype, index_shape, row, rows, index_dtype):
    index, host_index = _index(xp, device, index_shape, rows, index_dtype, seed=1)
    values, values64 = random_array(xp, (*index_shape, *row), device=device, dtype=dtype, seed=2)
    want = np.zeros((rows, *row))
    np.add.at(want, host_index.reshape(-1), values64.reshape(-1, *row))
    got = index_add(index, values, rows)
    assert namespace_of(got) is xp and device_of(got) == device and got.dtype == dtype
    assert tuple(got.shape) == (rows, *row)
    assert_close(got, want, xp=xp)


@pytest.mark.parametrize("index_shape,row,rows", [((40,), (5,), 6), ((3, 4), (2,), 2)], ids=str)
def test_fast_path_gives_the_generic_numbers(xp, device, dtype, index_shape, row, rows):
    index, _ = _index(xp, device, index_shape, rows, seed=3)
    values, _ = random_array(xp, (*index_shape, *row), device=device, dtype=dtype, seed=4)
    count, width = int(np.prod(index_shape)), int(np.prod(row))
    flat_index, flat_values = xp.reshape(index, (count,)), xp.reshape(values, (count, width))
    generic = _index_add_generic(flat_index, flat_values, rows)
    ops = scatter_ops(values)
    fast = generic if ops is None else ops.index_add(flat_index, flat_values, rows)
    assert namespace_of(fast) is xp and device_of(fast) == device and fast.dtype == dtype
    assert_close(fast, to_numpy(generic).astype(np.float64), xp=xp)
    assert_close(index_add(index, values, rows), to_numpy(generic).astype(np.float64).reshape(rows, *row), xp=xp)


@pytest.mark.parametrize("index_shape,row,rows", [c for c in CASES if c[2] > 0], ids=str)
def test_gather_rows_matches_numpy_take(xp, device, dtype, index_shape, row, rows):
    index, host_index = _index(xp, device, index_shape, rows, seed=5)
    table, table64 = random_array(xp, (rows, *row), device=device, dtype=dtype, seed=6)
    got = gather_rows(table, index)
    assert namespace_of(got) is xp and device_of(got) == device and got.dtype == dtype
    assert tuple(got.shape) == (*index_shape, *row)
    assert_close(got, table64[host_index], xp=xp)


@pytest.mark.requires_float64
def test_index_add_is_the_gradient_of_gather_rows(xp, device):
    float64 = resolve_dtype(xp, "float64")
    table, _ = random_array(xp, (4, 3), device=device, dtype=float64, seed=7)
    index = xp.asarray([[1, 3, 1], [0, 1, 1]], device=device)  # row 1 four times, row 2 never

    def backward(g, table, index):
        return index_add(index, g, table.shape[0]), None

    check = check_gradients(gather_rows, backward, [table, index], names=["table", "index"])
    assert all(set(errors) == {"table"} for errors in check.max_abs_error.values())


@pytest.mark.parametrize("bad", [-1, 4, 100])
def test_out_of_range_indices_are_a_typed_error(xp, device, dtype, bad):
    values, _ = random_array(xp, (3, 2), device=device, dtype=dtype, seed=8)
    index = xp.asarray([0, bad, 1], device=device)
    with pytest.raises(IndexOutOfRangeError, match=r"\[0, 4\)"):
        index_add(index, values, 4)
    with pytest.raises(IndexOutOfRangeError, match=r"\[0, 3\)"):
        gather_rows(values, xp.asarray([bad if bad != 4 else 3], device=device))
    with pytest.raises(IndexError):  # the builtin a caller would catch
        gather_rows(values, index)


def test_malformed_arguments_are_typed_errors(xp, device, dtype):
    values, _ = random_array(xp, (3, 2), device=device, dtype=dtype, seed=9)
    index = xp.asarray([0, 1, 1], device=device)
    with pytest.raises(DTypeError):
        index_add(xp.astype(index, dtype), values, 2)
    with pytest.raises(DTypeError):
        index_add(index, index, 2)
    with pytest.raises(ShapeError):
        index_add(xp.asarray([0, 1], device=device), values, 2)
    with pytest.raises(ArgumentError):
        index_add(index, values, -1)
    with pytest.raises(NamespaceError):
        index_add([0, 1, 1], values, 2)  # a list is no array
    if xp is not namespace_of(np.zeros(1)):
        with pytest.raises(NamespaceError):
            index_add(np.asarray([0, 1, 1]), values, 2)  # another backend's array
    with pytest.raises(DTypeError):
        gather_rows(values, xp.astype(index, dtype))
    with pytest.raises(ShapeError):
        gather_rows(xp.asarray(1.0, device=device), index)
