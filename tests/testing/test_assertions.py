"""``assert_close``: kind checks (namespace, device, dtype, shape) and the failure message."""

from __future__ import annotations

import re

import numpy as np
import pytest

from portable_nn import _backend
from portable_nn.testing import assert_close, random_array, to_numpy, tolerance


def test_passes_within_the_dtype_tolerance(xp, device, dtype):
    x, x64 = random_array(xp, (3, 4), device=device, dtype=dtype, seed=0)
    rtol, atol = tolerance(_backend.dtype_name(xp, dtype))
    assert_close(x, x64, xp=xp, device=device, dtype=dtype)
    assert_close(x, x64 + 0.5 * (atol + rtol * np.abs(x64)))
    with pytest.raises(AssertionError, match="12 of 12 elements differ"):
        assert_close(x, x64 + 2 * (atol + rtol * np.abs(x64)))


def test_message_names_backend_dtype_worst_element_and_errors(xp, device, dtype, backend):
    x, x64 = random_array(xp, (2, 3), device=device, dtype=dtype, seed=1)
    expected = x64.copy()
    expected[1, 2] += 0.75
    expected[0, 1] -= 0.25
    name = _backend.dtype_name(xp, dtype)
    with pytest.raises(AssertionError) as info:
        assert_close(x, expected, msg="layer output")
    text = str(info.value)
    assert text.startswith("layer output: 2 of 6 elements differ beyond atol=")
    assert f"({backend} {name}, shape (2, 3))" in text
    actual = float(to_numpy(x)[1, 2])
    assert f"worst at index (1, 2): actual {actual!r}, expected {float(expected[1, 2])!r}" in text
    abs_error = float(re.search(r"max abs error ([0-9.e+-]+)", text).group(1))
    assert abs_error == pytest.approx(0.75, rel=1e-2)
    assert "max rel error" in text


def test_shape_mismatch(xp, device, dtype):
    x, x64 = random_array(xp, (2, 3), device=device, dtype=dtype)
    with pytest.raises(AssertionError, match=r"shape mismatch: actual \(2, 3\), expected \(3, 2\)"):
        assert_close(x, x64.T)
    with pytest.raises(AssertionError, match=r"shape mismatch: actual \(2, 3\), expected \(1, 3\)"):
        assert_close(x, x64[:1])  # no broadcasting


def test_dtype_is_checked_against_a_same_backend_expected(xp, device, dtype, backend):
    names = _backend.supported_dtypes(xp, device)
    current = _backend.dtype_name(xp, dtype)
    other = next((n for n in ("float64", "float32") if n != current and n in names), None)
    if other is None:
        pytest.skip(f"{_backend.backend_name(xp)} has no second float dtype on this device")
    x, _ = random_array(xp, (3,), device=device, dtype=dtype)
    y, _ = random_array(xp, (3,), device=device, dtype=other)
    if backend == "numpy":  # a NumPy expected is an oracle (typically float64): its dtype is not compared
        assert_close(x, to_numpy(x).astype(other), rtol=1e-6, atol=1e-6)
    else:
        with pytest.raises(AssertionError, match=f"dtype mismatch: actual {current}, expected {other}"):
            assert_close(x, y)
    with pytest.raises(AssertionError, match=f"expected dtype {other}, got {current}"):
        assert_close(x, to_numpy(x), dtype=other)
    with pytest.raises(AssertionError, match=f"expected dtype {other}, got {current}"):
        assert_close(x, to_numpy(x), dtype=_backend.resolve_dtype(xp, other))


def test_namespace_is_checked(backend, xp):
    others = [n for n in ("numpy", "array_api_strict", "torch") if n != backend and n in _backend.installed_backends()]
    if not others:
        pytest.skip("needs a second installed backend")
    x = xp.asarray(np.ones(3, dtype=np.float32)) if backend != "numpy" else np.ones(3, dtype=np.float32)
    with pytest.raises(AssertionError, match=f"expected a {others[0]} array, got a {backend} array"):
        assert_close(x, np.ones(3), xp=others[0])
    assert_close(x, np.ones(3), xp=backend)
    non_numpy = [n for n in others if n != "numpy"]
    if non_numpy:
        y = _backend.resolve_namespace(non_numpy[0]).asarray(np.ones(3, dtype=np.float32))
        with pytest.raises(AssertionError, match=f"namespace mismatch: actual is a {backend} array, expected a "):
            assert_close(x, y)


@pytest.mark.backends(only=["array_api_strict", "jax"], reason="several devices on a CPU machine")
def test_device_is_checked(backend, xp):
    devices = list(_backend.available_devices(xp))
    x, x64 = random_array(xp, (3,), device=devices[1], dtype="float32")
    assert_close(x, x64, device=devices[1])
    with pytest.raises(AssertionError, match=f"expected an array on device '{devices[0]}', got one on '{devices[1]}'"):
        assert_close(x, x64, device=devices[0])


def test_nan_and_infinity():
    assert_close(np.array([np.nan, np.inf, -np.inf, 1.0]), np.array([np.nan, np.inf, -np.inf, 1.0]))
    with pytest.raises(AssertionError, match=r"1 element\(s\) NaN on one side only, first at index \(1,\)"):
        assert_close(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match="1 of 1 elements differ"):
        assert_close(np.array([np.inf]), np.array([-np.inf]))
    with pytest.raises(AssertionError, match="1 of 2 elements differ"):
        assert_close(np.array([np.inf, 1.0]), np.array([1e308, 1.0]))


def test_empty_scalar_bool_and_explicit_tolerances():
    assert_close(np.zeros((0, 3), dtype=np.float32), np.zeros((0, 3)))
    assert_close(np.float32(1.0), 1.0)
    assert_close(np.array([True, False]), np.array([True, False]))
    with pytest.raises(AssertionError):
        assert_close(np.array([True, False]), np.array([True, True]))
    assert_close(np.array([1.0]), np.array([1.1]), rtol=0.2)
    with pytest.raises(AssertionError, match="atol=0 \\+ rtol=0"):
        assert_close(np.array([1.0]), np.array([1.0 + 1e-15]), rtol=0, atol=0)
