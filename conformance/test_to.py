"""``layer.to(xp, device, dtype)``: parameters and grads move between every pair of backends and devices."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import random_array, to_numpy

from .helpers import assert_unchanged, snapshot
from .io_helpers import (
    assert_same_outputs,
    has_dtype,
    host_bytes,
    parametrize_targets,
    target_namespace_device,
    trained_layer,
)

pytest_generate_tests = parametrize_targets

NAMES = ("weight", "bias", "grad_weight", "grad_bias")


def test_to_moves_parameters_and_grads(xp, device, dtype, target):
    layer, x64 = trained_layer(xp, device, dtype)
    target_xp, target_device = target_namespace_device(target)
    name = _backend.dtype_name(xp, dtype)
    if not has_dtype(target_xp, target_device, name):
        before = snapshot(layer)
        with pytest.raises(pnn.DTypeError, match=f"has no {name}"):
            layer.to(target_xp, target.device)
        assert_unchanged(layer, before)
        return
    x = _backend.from_host(x64, xp, device, dtype)
    y_before = layer(x)
    layer.backward(xp.ones_like(y_before))  # grads now hold 5 backward passes; the input is saved
    before = {n: host_bytes(getattr(layer, n)) for n in NAMES}
    assert layer.to(target_xp, target.device) is layer
    assert (layer.xp, layer.device, layer.dtype) == (target_xp, target_device, _backend.resolve_dtype(target_xp, name))
    for n in NAMES:
        array = getattr(layer, n)
        assert _backend.namespace_of(array) is target_xp, n
        assert _backend.device_of(array) == target_device, n
        assert host_bytes(array) == before[n], f"{n} changed value while moving"
    if target_xp is not xp or target_device != device:  # a real move drops the saved input
        with pytest.raises(pnn.CallOrderError, match="no forward"):
            layer.backward(_backend.from_host(np.ones((6, 3)), target_xp, target_device, layer.dtype))
    x_target = _backend.from_host(x64, target_xp, target_device, layer.dtype)
    assert_same_outputs(layer(x_target), y_before, same_backend=target_xp is xp)
    layer.backward(target_xp.ones_like(layer(x_target)))
    layer.step(0.1)  # keeps training on the new backend


def test_to_with_nothing_to_do_keeps_everything(xp, device, dtype):
    layer, _ = trained_layer(xp, device, dtype)
    before = snapshot(layer)
    assert layer.to() is layer
    assert layer.to(xp, device, dtype) is layer
    assert_unchanged(layer, before)
    assert layer._saved is not None


def test_to_another_dtype_is_an_explicit_cast(xp, device, dtype):
    layer, _ = trained_layer(xp, device, dtype)
    names = _backend.supported_dtypes(xp, device)
    other = next((n for n in ("float64", "float32") if n != _backend.dtype_name(xp, dtype) and n in names), None)
    if other is None:
        pytest.skip(f"{_backend.backend_name(xp)} has no second float dtype here")
    expected = {n: _backend.from_host(to_numpy(getattr(layer, n)), xp, device, other) for n in NAMES}
    layer.to(dtype=other)
    assert _backend.dtype_name(xp, layer.dtype) == other
    for n in NAMES:
        assert host_bytes(getattr(layer, n)) == host_bytes(expected[n]), n


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"xp": "tensorflow"}, pnn.UnknownBackendError),
        ({"device": "cuda:7"}, pnn.DeviceError),
        ({"dtype": "int32"}, pnn.DTypeError),
    ],
    ids=["unknown-backend", "missing-device", "integer-dtype"],
)
def test_failed_to_changes_nothing(xp, device, dtype, kwargs, error):
    layer, _ = trained_layer(xp, device, dtype)
    before = snapshot(layer)
    placement = (layer.xp, layer.device, layer.dtype)
    with pytest.raises(error):
        layer.to(**kwargs)
    assert_unchanged(layer, before)
    assert (layer.xp, layer.device, layer.dtype) == placement


def test_bfloat16_to_numpy_needs_an_explicit_dtype(xp, device):
    """NumPy has no bfloat16: moving a bfloat16 layer there is a DTypeError unless dtype= says what to use."""
    if "bfloat16" not in _backend.supported_dtypes(xp, device):
        pytest.skip(f"{_backend.backend_name(xp)} has no bfloat16")
    layer = pnn.Linear(4, 3, xp=xp, device=device, dtype="bfloat16", seed=0)
    x, _ = random_array(xp, (2, 4), device=device, dtype=layer.dtype)
    layer.backward(xp.ones_like(layer(x)))
    before = snapshot(layer)
    with pytest.raises(pnn.DTypeError, match=r"numpy has no bfloat16.*dtype='float32'"):
        layer.to("numpy")
    assert_unchanged(layer, before)
    values = {n: host_bytes(getattr(layer, n)) for n in NAMES}
    layer.to("numpy", dtype="float32")
    assert all(host_bytes(getattr(layer, n)) == values[n] for n in NAMES), "bfloat16 -> float32 must be exact"
