"""portable_nn.nn.scatter inside compiled programs: traced indices cannot be range-checked, so the documented rule
applies (index_add drops out-of-range rows, gather_rows fills them with NaN on JAX); in-range results equal eager."""

from __future__ import annotations

import numpy as np
import pytest

from portable_nn.nn.scatter import gather_rows, index_add
from portable_nn.testing import to_numpy


def test_jax_jit_equals_eager_and_drops_or_fills_out_of_range_rows():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    table = jnp.arange(12.0, dtype=jnp.float32).reshape(4, 3)
    values = jnp.ones((3, 3), dtype=jnp.float32)
    index = jnp.asarray([3, 0, 3], dtype=jnp.int32)
    added = jax.jit(lambda i, v: index_add(i, v, 4))
    gathered = jax.jit(gather_rows)
    np.testing.assert_array_equal(to_numpy(added(index, values)), to_numpy(index_add(index, values, 4)))
    np.testing.assert_array_equal(to_numpy(gathered(table, index)), to_numpy(gather_rows(table, index)))
    bad = jnp.asarray([3, 7, -9], dtype=jnp.int32)  # traced: not read, so no error
    np.testing.assert_array_equal(to_numpy(added(bad, values))[3], np.ones(3))  # the in-range row only
    assert float(to_numpy(added(bad, values)).sum()) == 3.0
    rows = to_numpy(gathered(table, bad))
    np.testing.assert_array_equal(rows[0], to_numpy(table)[3])
    assert np.isnan(rows[1:]).all()


def test_jax_vmap_over_a_batch_of_index_arrays():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    index = jnp.asarray([[0, 0, 2], [1, 2, 2]], dtype=jnp.int32)
    values = jnp.arange(18.0, dtype=jnp.float32).reshape(2, 3, 3)
    batched = jax.vmap(lambda i, v: index_add(i, v, 3))(index, values)
    for b in range(2):
        np.testing.assert_array_equal(to_numpy(batched[b]), to_numpy(index_add(index[b], values[b], 3)))


def test_torch_compile_equals_eager_and_still_checks_the_range():
    torch = pytest.importorskip("torch")
    from portable_nn.errors import IndexOutOfRangeError

    compiled = torch.compile(lambda t, i: index_add(i, gather_rows(t, i), t.shape[0]))
    table = torch.arange(12.0).reshape(4, 3)
    index = torch.tensor([3, 0, 3])
    np.testing.assert_array_equal(to_numpy(compiled(table, index)), to_numpy(index_add(index, table[index], 4)))
    with pytest.raises(IndexOutOfRangeError):
        compiled(table, torch.tensor([4, 0, 3]))
