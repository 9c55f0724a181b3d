"""check_gradients with non-differentiable (integer, boolean) inputs: they pass through unchanged, their gradient
is None, and a wrong gradient of the floating inputs is still caught."""

from __future__ import annotations

import pytest

from portable_nn._backend import namespace_of
from portable_nn.nn.scatter import gather_rows, index_add
from portable_nn.testing import check_gradients, random_array


def _lookup_times_mask(table, index, mask):
    """Rows of ``table`` picked by ``index``, zeroed where ``mask`` (bool, one per index) is False."""
    rows = gather_rows(table, index)
    return rows * namespace_of(rows).astype(mask, rows.dtype)[..., None]


def _backward(g, table, index, mask):
    return index_add(index, g * namespace_of(g).astype(mask, g.dtype)[..., None], table.shape[0]), None, None


@pytest.fixture
def inputs(xp, device, dtype):
    table, _ = random_array(xp, (5, 3), device=device, dtype=dtype, seed=1)
    index = xp.asarray([[4, 0], [4, 4]], device=device)
    mask = xp.asarray([[True, False], [True, True]], device=device)
    return [table, index, mask]


def test_integer_and_boolean_inputs_pass_through(inputs):
    check = check_gradients(_lookup_times_mask, _backward, inputs, names=["table", "index", "mask"])
    assert check.references  # finite differences, and torch.autograd where torch is installed
    assert all(set(errors) == {"table"} for errors in check.max_abs_error.values())


def test_a_wrong_table_gradient_is_still_caught(inputs):
    def wrong(g, table, index, mask):  # forgets the mask
        return index_add(index, g, table.shape[0]), None, None

    with pytest.raises(AssertionError, match="'table'"):
        check_gradients(_lookup_times_mask, wrong, inputs, names=["table", "index", "mask"])


def test_a_gradient_for_an_integer_input_is_refused(inputs):
    def extra(g, table, index, mask):
        return index_add(index, g, table.shape[0]), index, None

    with pytest.raises(AssertionError, match="'index', which is not differentiable"):
        check_gradients(_lookup_times_mask, extra, inputs, names=["table", "index", "mask"])


def test_only_integer_inputs_is_a_usage_error(xp, device):
    index = xp.asarray([0, 1], device=device)
    with pytest.raises(ValueError, match="floating"):
        check_gradients(lambda i: i, lambda g, i: (None,), [index])
