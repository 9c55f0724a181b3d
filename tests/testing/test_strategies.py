"""The hypothesis strategies reach the shapes they promise and give exact host copies."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, find, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from portable_nn import _backend  # noqa: E402
from portable_nn.testing import strategies as pst  # noqa: E402
from portable_nn.testing import to_numpy  # noqa: E402


@pytest.mark.parametrize(
    "wanted",
    [lambda s: 0 in s, lambda s: 1 in s, lambda s: len(s) == 3 and min(s) >= 2, lambda s: s == ()],
    ids=["empty-axis", "singleton-axis", "3d", "scalar"],
)
def test_shapes_reach(wanted):
    assert wanted(find(pst.shapes(), wanted))


def test_linear_shapes_cover_the_catalog():
    seen = set()
    find(pst.linear_shapes(), lambda t: seen.add(t) or len(seen) == len(pst.LEADING_SHAPES) * len(pst.FEATURES))
    assert {t[0] for t in seen} == set(pst.LEADING_SHAPES)
    assert {(t[1], t[2]) for t in seen} == set(pst.FEATURES)


def test_dtype_names_respect_the_backend(xp, device):
    usable = set(_backend.supported_dtypes(xp, device))
    assert find(pst.dtype_names(xp, device), lambda n: True) in usable
    with pytest.raises(hypothesis.errors.NoSuchExample):
        find(pst.dtype_names(xp, device), lambda n: n not in usable)


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_arrays_come_with_their_exact_host_copy(xp, device, dtype, data):
    shape = data.draw(pst.shapes(max_dims=2))
    array, host = data.draw(pst.arrays(xp, shape, device=device, dtype=dtype))
    name = _backend.dtype_name(xp, dtype)
    assert tuple(array.shape) == shape and array.dtype == dtype and _backend.device_of(array) == device
    assert host.dtype == np.float64
    np.testing.assert_array_equal(to_numpy(array).astype(np.float64), host)
    assert np.all(np.abs(host) <= pst.MAX_MAGNITUDE[name])
