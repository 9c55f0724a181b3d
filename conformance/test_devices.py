"""Placement on non-default devices and mixing errors, without a GPU.

array-api-strict has the devices ``CPU_DEVICE``, ``device1``, ``device2`` (and float32-only
ones) and refuses to combine arrays of two of them; JAX gets two CPU devices (``cpu``,
``cpu:1``) from the ini key ``pnn_jax_cpu_devices = 2``. Both stand in for multi-GPU machines:
results stay on the operands' device, and operands on two devices raise DeviceError from the
layer and from the functional API alike (the backends' own errors would be a ValueError or
RuntimeError). On a GPU machine the same tests cover ``cuda:0`` / ``cuda:1`` and cpu / cuda.
"""

from __future__ import annotations

from typing import Any

import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn import functional as F
from portable_nn.testing import assert_close, random_array

from .helpers import host_params, oracle_forward

#: Backends that must offer several devices here (the suite's ini asks JAX for two CPU devices).
MULTI_DEVICE_HERE = ("array_api_strict", "jax")


def _devices(xp: Any, dtype: Any) -> dict[str, Any]:
    """Every device of the backend that holds ``dtype``, by portable name."""
    name = _backend.dtype_name(xp, dtype)
    return {
        label: device for label, device in _backend.available_devices(xp).items()
        if name in _backend.supported_dtypes(xp, device)
    }  # fmt: skip


def _pairs(backend: str, xp: Any, dtype: Any) -> list[tuple[str, Any, str, Any]]:
    """All ordered pairs (here, there) of distinct devices; skip (with the reason) if there is one device."""
    devices = _devices(xp, dtype)
    if backend in MULTI_DEVICE_HERE:
        assert len(devices) >= 2, f"{backend} should have several devices here, has {list(devices)}"
    if len(devices) < 2:
        pytest.skip(f"{backend} has a single device here ({', '.join(devices)})")
    return [(a, devices[a], b, devices[b]) for a in devices for b in devices if a != b]


@pytest.mark.backends(only=list(MULTI_DEVICE_HERE), reason="the others have no fixed device list on a CPU machine")
def test_strict_and_jax_offer_the_expected_devices(backend, xp):
    wanted = {"array_api_strict": {"cpu", "device1", "device2"}, "jax": {"cpu", "cpu:1"}}[backend]
    assert wanted <= set(_backend.available_devices(xp))


def test_layer_results_stay_on_its_device(backend, xp, dtype):
    for label, here, _, _ in _pairs(backend, xp, dtype):
        layer = pnn.Linear(3, 2, xp=xp, device=here, dtype=dtype, seed=0)
        x, x64 = random_array(xp, (4, 3), device=here, dtype=dtype, seed=1)
        y = layer(x)
        grad_x = layer.backward(xp.ones_like(y))
        for result in (y, grad_x, layer.grad_weight, layer.grad_bias, F.linear(x, layer.weight, layer.bias)):
            assert _backend.device_of(result) == here, f"result left {label}"
        assert_close(y, oracle_forward(x64, *host_params(layer)), msg=label)


def test_layer_rejects_arrays_from_another_device(backend, xp, dtype):
    for here_label, here, there_label, there in _pairs(backend, xp, dtype):
        layer = pnn.Linear(3, 2, xp=xp, device=here, dtype=dtype, seed=0)
        x_there, _ = random_array(xp, (4, 3), device=there, dtype=dtype)
        message = f"expected an array on device {here_label!r}, got one on {there_label!r}"
        with pytest.raises(pnn.DeviceError, match=message):
            layer(x_there)
        layer(random_array(xp, (4, 3), device=here, dtype=dtype)[0])
        with pytest.raises(pnn.DeviceError, match=message):
            layer.backward(random_array(xp, (4, 2), device=there, dtype=dtype)[0])
        weight_there, _ = random_array(xp, (2, 3), device=there, dtype=dtype)
        with pytest.raises(pnn.DeviceError, match=message):
            layer.set_parameters({"weight": weight_there})


def test_functional_rejects_mixed_devices(backend, xp, dtype):
    for here_label, here, there_label, there in _pairs(backend, xp, dtype):

        def on(device: Any, shape: tuple[int, ...]) -> Any:
            return random_array(xp, shape, device=device, dtype=dtype)[0]

        w, x, g = on(here, (2, 3)), on(here, (4, 3)), on(here, (4, 2))
        message = f"expected an array on device {here_label!r} like weight, got one on {there_label!r}"
        with pytest.raises(pnn.DeviceError, match=f"input: {message}"):
            F.linear(on(there, (4, 3)), w, on(here, (2,)))
        with pytest.raises(pnn.DeviceError, match=f"bias: {message}"):
            F.linear(x, w, on(there, (2,)))
        with pytest.raises(pnn.DeviceError, match=f"grad_output: {message}"):
            F.linear_backward(on(there, (4, 2)), x, w)
        with pytest.raises(pnn.DeviceError, match=f"input: {message}"):
            F.linear_backward(g, on(there, (4, 3)), w)


@pytest.mark.backends(only=["jax"], reason="jax.jit is JAX's own")
def test_device_check_keeps_the_functional_api_traceable(backend, xp, dtype):
    """Under jax.jit the operands are tracers without a device: the check lets them through."""
    jax = pytest.importorskip("jax")
    for _, here, _, _ in _pairs(backend, xp, dtype):
        w, w64 = random_array(xp, (2, 3), device=here, dtype=dtype, seed=1)
        x, x64 = random_array(xp, (4, 3), device=here, dtype=dtype, seed=2)
        g, g64 = random_array(xp, (4, 2), device=here, dtype=dtype, seed=3)
        y = jax.jit(F.linear)(x, w)
        grad_x, grad_w, _ = jax.jit(F.linear_backward, static_argnames="has_bias")(g, x, w, has_bias=False)
        assert_close(y, oracle_forward(x64, w64, None))
        assert_close(grad_w, g64.T @ x64)
        assert_close(grad_x, g64 @ w64)
        assert {_backend.device_of(a) for a in (y, grad_x, grad_w)} == {here}
