"""Every misuse raises a typed error naming expected vs given, and leaves the layer exactly as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import random_array

from .helpers import assert_unchanged, snapshot


@pytest.fixture
def trained(xp, device, dtype):
    """A layer after one forward+backward (so params, grads and the saved input all exist)."""
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=0)
    x, _ = random_array(xp, (5, 4), device=device, dtype=dtype, seed=1)
    layer.backward(xp.ones_like(layer(x)))
    return layer


def test_wrong_in_features(trained, xp, device, dtype):
    x, _ = random_array(xp, (5, 6), device=device, dtype=dtype)
    before = snapshot(trained)
    with pytest.raises(pnn.ShapeError, match=r"\(\*, 4\).*\(5, 6\)") as info:
        trained(x)
    assert isinstance(info.value, ValueError)
    assert_unchanged(trained, before)


def test_zero_dim_input(trained, xp, device, dtype):
    x, _ = random_array(xp, (), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError):
        trained(x)


def test_grad_output_shape_mismatch(trained, xp, device, dtype):
    g, _ = random_array(xp, (5, 2), device=device, dtype=dtype)
    before = snapshot(trained)
    with pytest.raises(pnn.ShapeError, match=r"grad_output: expected shape \(5, 3\), got \(5, 2\)"):
        trained.backward(g)
    assert_unchanged(trained, before)


def test_backward_before_forward(xp, device, dtype):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=0)
    g, _ = random_array(xp, (5, 3), device=device, dtype=dtype)
    before = snapshot(layer)
    with pytest.raises(pnn.CallOrderError, match="no forward") as info:
        layer.backward(g)
    assert isinstance(info.value, RuntimeError)
    assert_unchanged(layer, before)


def test_step_before_backward(xp, device, dtype):
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=0)
    before = snapshot(layer)
    with pytest.raises(pnn.CallOrderError, match="backward"):
        layer.step(0.1)
    assert_unchanged(layer, before)


def _other_namespace(backend: str):
    for other in ("numpy", "array_api_strict", "torch"):
        if other != backend and other in _backend.installed_backends():
            return _backend.resolve_namespace(other)
    pytest.skip("needs a second installed backend")


def test_input_from_another_namespace(trained, backend, xp, dtype):
    other = _other_namespace(backend)
    x = other.asarray(np.ones((5, 4), dtype=np.float32))
    before = snapshot(trained)
    with pytest.raises(pnn.NamespaceError, match=f"expected a {backend} array") as info:
        trained(x)
    assert isinstance(info.value, TypeError)
    with pytest.raises(pnn.NamespaceError):
        trained.backward(other.asarray(np.ones((5, 3), dtype=np.float32)))
    assert_unchanged(trained, before)


@pytest.mark.parametrize("value", [[[1.0] * 4], 3.0, "text"], ids=["list", "float", "str"])
def test_non_array_input(trained, value):
    before = snapshot(trained)
    with pytest.raises(pnn.NamespaceError, match="expected an array"):
        trained(value)
    assert_unchanged(trained, before)


def _other_device(xp, device):
    devices = _backend.available_devices(xp)
    label = _backend.device_str(xp, device)
    others = [d for name, d in devices.items() if name != label and name not in ("no_float64", "no_x64")]
    if not others:
        pytest.skip(f"{_backend.backend_name(xp)} has only one device here")
    return others[0]


def test_input_on_another_device(trained, xp, device, dtype):
    other = _other_device(xp, device)
    x, _ = random_array(xp, (5, 4), device=other, dtype=dtype)
    g, _ = random_array(xp, (5, 3), device=other, dtype=dtype)
    before = snapshot(trained)
    with pytest.raises(pnn.DeviceError, match="expected an array on device") as info:
        trained(x)
    assert isinstance(info.value, ValueError)
    with pytest.raises(pnn.DeviceError):
        trained.backward(g)
    assert_unchanged(trained, before)


@pytest.mark.parametrize("bad", ["int64", "int32", "bool"])
def test_integer_and_bool_input(trained, xp, device, bad):
    x = (
        xp.asarray(np.ones((5, 4), dtype=bad), device=device)
        if _backend.backend_name(xp) != "dask"
        else xp.ones((5, 4), dtype=getattr(xp, bad))
    )
    before = snapshot(trained)
    with pytest.raises(pnn.DTypeError, match="expected dtype") as info:
        trained(x)
    assert isinstance(info.value, TypeError)
    assert_unchanged(trained, before)


def test_other_float_dtype_is_not_cast(trained, xp, device, dtype):
    names = _backend.supported_dtypes(xp, device)
    current = _backend.dtype_name(xp, dtype)
    other = next((n for n in ("float64", "float32") if n != current and n in names), None)
    if other is None:
        pytest.skip(f"{_backend.backend_name(xp)} has no second float dtype here")
    x, _ = random_array(xp, (5, 4), device=device, dtype=_backend.resolve_dtype(xp, other))
    g, _ = random_array(xp, (5, 3), device=device, dtype=_backend.resolve_dtype(xp, other))
    before = snapshot(trained)
    with pytest.raises(pnn.DTypeError, match=f"expected dtype {current}, got {other}"):
        trained(x)
    with pytest.raises(pnn.DTypeError):
        trained.backward(g)
    assert_unchanged(trained, before)


@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf, -math.inf])
def test_bad_lr_value(trained, lr):
    before = snapshot(trained)
    with pytest.raises(pnn.ArgumentError, match=r"lr must be a finite number in \[0, inf\]") as info:
        trained.step(lr)
    assert isinstance(info.value, ValueError)
    assert_unchanged(trained, before)


@pytest.mark.parametrize("lr", ["0.1", None, True], ids=["str", "none", "bool"])
def test_bad_lr_type(trained, lr):
    before = snapshot(trained)
    with pytest.raises(pnn.ArgumentTypeError, match="lr must be a real number"):
        trained.step(lr)
    assert_unchanged(trained, before)


def test_failed_set_parameters_is_all_or_nothing(trained, xp, device, dtype):
    good, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    bad, _ = random_array(xp, (2,), device=device, dtype=dtype)
    before = snapshot(trained)
    with pytest.raises(pnn.ShapeError, match=r"bias: expected shape \(3,\), got \(2,\)"):
        trained.set_parameters({"weight": good, "bias": bad})
    with pytest.raises(pnn.UnknownParameterError, match="no parameter 'kernel'"):
        trained.set_parameters({"weight": good, "kernel": good})
    assert_unchanged(trained, before)


def test_all_errors_share_the_base_class():
    for name in pnn.errors.__all__:
        assert issubclass(getattr(pnn.errors, name), pnn.PortableNNError)
