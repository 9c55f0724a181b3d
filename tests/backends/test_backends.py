"""The backend adapters (``portable_nn.backends``): one registry entry per backend, each adapter's devices,
dtypes and host transfer, and the errors of unknown and uninstalled backends.

The device/dtype tests run on every backend × device (× dtype) of the plugin's matrix; the
oracles are NumPy float64 host values and the backends' own array attributes.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from typing import Any

import array_api_compat
import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.backends import ADAPTERS, BACKENDS, FLOAT_DTYPES, BackendAdapter, get_adapter
from portable_nn.backends.cupy_backend import CupyAdapter
from portable_nn.backends.registry import adapter_for_array, adapter_for_namespace
from portable_nn.backends.torch_backend import TorchAdapter
from portable_nn.errors import (
    BackendUnavailableError,
    DeviceError,
    DTypeError,
    NamespaceError,
    UnknownBackendError,
)

EXPECTED = {"numpy", "torch", "cupy", "jax", "array_api_strict", "dask"}


# --------------------------------------------------------------------------- the registry


def test_registry_has_one_adapter_per_backend():
    names = [adapter.name for adapter in ADAPTERS]
    assert sorted(names) == sorted(EXPECTED) and len(names) == len(set(names))
    assert BACKENDS == tuple(names) == _backend.BACKENDS
    assert len({type(adapter) for adapter in ADAPTERS}) == len(ADAPTERS)
    for adapter in ADAPTERS:  # one file per backend, named after it
        assert type(adapter).__module__ == f"portable_nn.backends.{adapter.name}_backend"
        assert get_adapter(adapter.name) is adapter
        for alias in adapter.aliases:
            assert get_adapter(alias) is adapter, alias


def test_installed_backends_are_the_adapters_that_import():
    for adapter in ADAPTERS:
        installed = adapter.name in _backend.installed_backends()
        assert installed == (importlib.util.find_spec(adapter.package.split(".")[0]) is not None)
        assert (adapter.unavailable_reason() is None) == installed


def test_every_namespace_and_array_finds_its_adapter(xp, device, backend):
    adapter = get_adapter(backend)
    assert adapter.namespace() is xp
    assert adapter_for_namespace(xp) is adapter
    raw = importlib.import_module(adapter.package)
    assert adapter_for_namespace(raw) is adapter  # the unwrapped module too (torch, dask.array, jax...)
    x = _backend.from_host(np.ones((2, 3)), xp, device, _backend.resolve_dtype(xp, "float32"))
    assert adapter_for_array(x) is adapter
    assert _backend.namespace_of(x) is xp
    assert _backend.backend_name(xp) == backend


@pytest.mark.parametrize("name", ["tensorflow", "", "NumPy", "cuda"])
def test_unknown_name_is_an_error_naming_the_known_backends(name):
    with pytest.raises(UnknownBackendError, match=rf"unknown backend {name!r}; known backends: .*'numpy'"):
        get_adapter(name)
    with pytest.raises(UnknownBackendError, match="unknown backend"):
        _backend.resolve_namespace(name)
    with pytest.raises(UnknownBackendError, match="unknown backend"):
        _backend.device_matrix(name)


def test_unknown_namespaces_and_non_arrays_are_typed_errors():
    with pytest.raises(UnknownBackendError, match="not a supported array namespace"):
        adapter_for_namespace(math)
    with pytest.raises(UnknownBackendError, match="not a supported array namespace"):
        _backend.backend_name("numpy")  # a name is not a namespace
    for value in ([1.0, 2.0], 3.0, "x", None):
        with pytest.raises(NamespaceError, match="expected an array"):
            adapter_for_array(value)


# --------------------------------------------------------------------------- uninstalled backends


class _MissingAdapter(CupyAdapter):
    """A GPU backend whose package is not on this machine."""

    name = "missing"
    package = "portable_nn_no_such_package"
    namespace_module = "portable_nn_no_such_package.array_api"


class _BrokenAdapter(BackendAdapter):
    """A backend whose package imports but whose namespace does not."""

    name = "broken"
    package = "json"
    namespace_module = "json.portable_nn_no_such_module"


def test_an_uninstalled_backend_reports_why():
    adapter = _MissingAdapter()
    assert not adapter.installed()
    assert adapter.unavailable_reason() == "missing is not installed"
    with pytest.raises(BackendUnavailableError, match="backend 'missing' is not installed"):
        adapter.namespace()
    broken = _BrokenAdapter()
    assert broken.installed()
    assert broken.unavailable_reason() == "broken is not installed (No module named 'json.portable_nn_no_such_module')"


def test_cupy_reports_its_state_here():
    adapter, matrix = get_adapter("cupy"), _backend.device_matrix("cupy")
    if importlib.util.find_spec("cupy") is None:
        assert adapter.unavailable_reason() == "cupy is not installed"
        assert matrix == [("cuda", "cupy is not installed")]
        with pytest.raises(BackendUnavailableError, match="installed backends: "):
            _backend.resolve_namespace("cupy")
    else:
        assert adapter.unavailable_reason() is None
        assert all(label.startswith("cuda") for label, _ in matrix)


class _FakeCudaDevice:
    """Stands in for ``cupy.cuda.Device`` so the CuPy adapter's own logic runs on a machine without CuPy."""

    def __init__(self, id: int) -> None:
        self.id, self.synchronized = id, 0

    def synchronize(self) -> None:
        self.synchronized += 1


def test_cupy_adapter_logic_without_a_gpu(monkeypatch):
    adapter = CupyAdapter()
    assert adapter.home_device == "cuda" and adapter.gpu_capable
    assert adapter.device_str(_FakeCudaDevice(1)) == "cuda:1"
    monkeypatch.setattr(adapter, "native_devices", lambda: [_FakeCudaDevice(0), _FakeCudaDevice(1)])
    assert list(adapter.available_devices()) == ["cuda:0", "cuda:1"]
    device = _FakeCudaDevice(1)
    adapter.synchronize(device)
    assert device.synchronized == 1
    monkeypatch.setattr(adapter, "native_devices", list)
    with pytest.raises(DeviceError, match="cupy has no CUDA device on this machine"):
        adapter.default_device()


def test_gpu_capable_backends_list_a_skipped_cuda_entry_without_a_gpu():
    for adapter in ADAPTERS:
        if adapter.unavailable_reason() is not None:
            continue
        labels = {label: reason for label, reason in _backend.device_matrix(adapter.name)}
        has_gpu = any(label.startswith("cuda") and reason is None for label, reason in labels.items())
        assert ("cuda" in labels) == (adapter.gpu_capable or has_gpu), adapter.name
        if adapter.gpu_capable and not has_gpu:
            assert labels["cuda"] == f"{adapter.name}: no CUDA device on this machine"


# --------------------------------------------------------------------------- devices


def test_device_strings_round_trip(xp, device, backend):
    adapter = get_adapter(backend)
    label = adapter.device_str(device)
    assert adapter.device_key(label) == label
    assert adapter.available_devices()[label] == device
    assert _backend.resolve_device(xp, label) == device
    assert _backend.resolve_device(xp, device) == device  # a native device object is accepted as is
    x = _backend.from_host(np.zeros(3), xp, device, _backend.resolve_dtype(xp, "float32"))
    assert _backend.device_of(x) == device
    assert _backend.device_str(xp, _backend.device_of(x)) == label


def test_default_device_is_a_usable_device(xp, backend):
    adapter = get_adapter(backend)
    default = _backend.resolve_device(xp)
    assert adapter.device_str(default) in adapter.available_devices()


def test_portable_device_spellings(xp, backend):
    adapter = get_adapter(backend)
    assert adapter.device_key("cuda") == "cuda:0"
    assert adapter.device_key("cpu:0") == adapter.device_key("cpu") == "cpu"
    assert adapter.device_key("cuda:1") == "cuda:1"
    assert adapter.device_key("gpu") == ("cuda:0" if backend == "jax" else "gpu")
    with pytest.raises(DeviceError, match="cannot parse device string 'cpu:x'"):
        adapter.device_key("cpu:x")
    with pytest.raises(DeviceError, match=rf"device 'no-such-device' is not available for {backend}; available: "):
        _backend.resolve_device(xp, "no-such-device")
    with pytest.raises(DeviceError, match=f"not a usable {backend} device"):
        _backend.resolve_device(xp, object())


def test_torch_cuda_devices_have_portable_strings():
    torch = pytest.importorskip("torch")
    adapter = get_adapter("torch")
    assert adapter.device_str(torch.device("cuda", 1)) == "cuda:1"
    assert adapter.device_str(torch.device("cpu")) == "cpu"
    assert adapter.accepts_device(torch.device("meta")) and not adapter.accepts_device("cpu")


# --------------------------------------------------------------------------- dtypes


def test_dtype_lists(xp, device, backend):
    adapter = get_adapter(backend)
    everything, here = adapter.supported_dtypes(), adapter.supported_dtypes(device)
    assert "float32" in here and set(here) <= set(everything) <= set(FLOAT_DTYPES)
    assert list(adapter.dtype_table()) == everything
    for name in here:
        dtype = _backend.resolve_dtype(xp, name)
        assert _backend.dtype_name(xp, dtype) == name
        x = _backend.from_host(np.arange(3.0), xp, device, dtype)
        assert x.dtype == dtype, name
        assert _backend.device_of(x) == device
    for name in set(everything) - set(here):  # e.g. float64 on array-api-strict's no_float64 device
        with pytest.raises(DTypeError, match=f"has no {name}"):
            _backend.supported_on(xp, device, _backend.resolve_dtype(xp, name))
    with pytest.raises(DTypeError, match="is not supported by"):
        _backend.resolve_dtype(xp, "int32")


def test_float64_is_missing_only_where_the_device_says_so():
    strict = get_adapter("array_api_strict")
    if strict.unavailable_reason() is not None:
        pytest.skip(strict.unavailable_reason())
    devices = strict.available_devices()
    assert "float64" not in strict.supported_dtypes(devices["no_float64"])
    assert "float64" in strict.supported_dtypes(devices["device1"])


# --------------------------------------------------------------------------- host transfer


def test_host_transfer_round_trip(xp, device, dtype, dtype_name):
    values = np.array([[0.1, -2.5, 3.0], [1e-3, 7.25, -0.0]])
    x = _backend.from_host(values, xp, device, dtype)
    host = _backend.to_host(x)
    assert type(host) is np.ndarray and host.shape == (2, 3)
    assert host.dtype == np.dtype("float32" if dtype_name == "bfloat16" else dtype_name)
    np.testing.assert_array_equal(host, values.astype(host.dtype))
    host[...] = 42.0  # a copy: the backend array does not change
    np.testing.assert_array_equal(_backend.to_host(x), values.astype(host.dtype))


def test_zero_d_and_empty_arrays_cross_the_host(xp, device, dtype):
    for values in (np.array(1.5), np.zeros((0, 3))):
        host = _backend.to_host(_backend.from_host(values, xp, device, dtype))
        assert host.shape == values.shape
        np.testing.assert_array_equal(host, values)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_bfloat16_comes_back_as_float32(name):
    adapter = get_adapter(name)
    if adapter.unavailable_reason() is not None:
        pytest.skip(adapter.unavailable_reason())
    xp = adapter.namespace()
    bfloat16 = _backend.resolve_dtype(xp, "bfloat16")
    x = _backend.from_host(np.array([1.0, 0.5, 3.0]), xp, adapter.default_device(), bfloat16)
    assert _backend.dtype_name(xp, x.dtype) == "bfloat16"
    host = adapter.to_host(x)
    assert host.dtype == np.float32
    np.testing.assert_array_equal(host, [1.0, 0.5, 3.0])


# --------------------------------------------------------------------------- execution


def test_synchronize_hands_back_out(xp, device, backend):
    x = _backend.from_host(np.ones(4), xp, device, _backend.resolve_dtype(xp, "float32"))
    y = x + 1
    assert _backend.synchronize(xp, out=y) is y
    assert _backend.synchronize(backend, device=_backend.device_str(xp, device), out=y) is y
    assert _backend.synchronize(xp) is None
    assert pnn.synchronize(xp, out=y) is y
    np.testing.assert_array_equal(_backend.to_host(y), 2.0)


def test_synchronize_waits_on_what_each_backend_queues(monkeypatch):
    calls: list[Any] = []
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("torch", device)))
    TorchAdapter().synchronize(torch.device("cuda", 1))
    TorchAdapter().synchronize(torch.device("cpu"), out=torch.ones(1))  # nothing queued on the CPU
    assert calls == [("torch", torch.device("cuda", 1))]
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(jax, "block_until_ready", lambda out: calls.append(("jax", out)))
    get_adapter("jax").synchronize(out="result")
    get_adapter("jax").synchronize()
    assert calls[1:] == [("jax", "result")]


def test_only_lazy_backends_materialize(xp, device, dtype, backend):
    adapter = get_adapter(backend)
    x = _backend.from_host(np.ones((4, 2)), xp, device, dtype)
    pending = x * 2
    if adapter.lazy:  # array-api-compat agrees (it also calls JAX arrays lazy: they may be futures)
        assert array_api_compat.is_lazy_array(pending)
    out = adapter.materialize((pending,))
    if not adapter.lazy:
        assert out[0] is pending
    else:
        assert len(out[0].__dask_graph__()) == 1  # stored: its graph is its one chunk
    np.testing.assert_array_equal(_backend.to_host(out[0]), 2.0)
