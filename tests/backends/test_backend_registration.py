"""Bring your own namespace: the generic adapter, register() and the portable_nn.backends entry-point group."""

from __future__ import annotations

import importlib.metadata
import warnings

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.backends import (
    ADAPTERS,
    ENTRY_POINT_GROUP,
    BackendAdapter,
    GenericAdapter,
    all_adapters,
    get_adapter,
    register,
    registry,
)
from portable_nn.backends.base import host_copy
from portable_nn.backends.marray_backend import MarrayAdapter


@pytest.fixture
def clean_registry(monkeypatch):
    """The registry's tables as they are now, restored after the test (registrations are process-wide)."""
    for name in ("_by_name", "_generic", "_by_module_name", "_by_array_type"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))
    monkeypatch.setattr(registry, "_added", list(registry._added))
    yield registry
    _backend.forget_types()


def _without(clean_registry, name):
    adapter = clean_registry._by_name.pop(name)
    clean_registry._added.remove(adapter)
    registry._forget_lookups()


class _StrictAgain(BackendAdapter):
    name, package, namespace_module = "strict-again", "array_api_strict", "array_api_strict"

    def is_namespace(self, module):
        return False  # only by name


def test_unknown_namespace_works_without_registration(clean_registry):
    """marray with its bundled adapter removed: arrays found by array_api_compat get a GenericAdapter."""
    marray = pytest.importorskip("marray")
    _without(clean_registry, "marray")
    xp = marray.masked_namespace(np)
    x = xp.asarray(np.arange(6.0).reshape(2, 3))
    adapter = registry.adapter_for_array(x)
    assert isinstance(adapter, GenericAdapter) and type(adapter) is GenericAdapter
    assert (adapter.name, adapter.tier, adapter.lazy) == ("marray.numpy", "generic", False)
    layer = pnn.Linear(3, 2, xp=xp, dtype="float64", seed=0)  # the namespace module itself names the backend
    reference = pnn.Linear(3, 2, dtype="float64", seed=0)
    np.testing.assert_array_equal(_backend.to_host(layer(x)), reference(np.arange(6.0).reshape(2, 3)))
    assert get_adapter("marray.numpy") is adapter  # by name once seen


def test_importable_namespace_module_is_a_backend_name(clean_registry):
    adapter = get_adapter("array_api_strict")  # the built-in one
    assert adapter is ADAPTERS[4]
    with pytest.raises(pnn.UnknownBackendError, match="unknown backend 'json'"):
        get_adapter("json")  # importable, not an array namespace


def test_host_transfer_tries_each_route_then_names_them():
    ndonnx = pytest.importorskip("ndonnx")
    generic = GenericAdapter(ndonnx)
    assert generic.lazy  # array_api_compat.is_lazy_array
    with pytest.raises(pnn.NamespaceError) as info:
        host_copy(ndonnx.asarray([1.0, 2.0]), generic)
    message = str(info.value)
    for route in ("DLPack: BufferError", "DLPack to the CPU", "__array__: not defined", "register"):
        assert route in message
    # sparse refuses __array__ (no automatic densifying): named too, and its bundled adapter densifies explicitly
    sparse = pytest.importorskip("sparse")
    with pytest.raises(pnn.NamespaceError, match="__array__: RuntimeError: Cannot convert a sparse array"):
        host_copy(sparse.asarray(np.eye(2)), GenericAdapter(sparse))
    np.testing.assert_array_equal(_backend.to_host(sparse.asarray(np.eye(2))), np.eye(2))


def test_generic_device_names_replace_object_reprs():
    ndonnx = pytest.importorskip("ndonnx")
    assert list(GenericAdapter(ndonnx).available_devices()) == ["ndonnx:0"]


def test_register_refuses_built_ins_and_needs_replace_for_others(clean_registry):
    class FakeNumpy(_StrictAgain):
        name = "numpy"

    class AliasOfTorch(_StrictAgain):
        aliases = ("np",)

    for adapter in (FakeNumpy(), AliasOfTorch()):
        with pytest.raises(pnn.ArgumentError, match="is built in"):
            register(adapter, replace=True)
    with pytest.raises(pnn.ArgumentTypeError, match="BackendAdapter instance"):
        register(_StrictAgain)
    first = register(_StrictAgain())
    assert get_adapter("strict-again") is first and first in all_adapters()
    with pytest.raises(pnn.ArgumentError, match=r"already registered.*replace=True"):
        register(_StrictAgain())
    second = register(_StrictAgain(), replace=True)
    assert get_adapter("strict-again") is second and first not in all_adapters()
    assert get_adapter("numpy") is ADAPTERS[0]  # nothing built in moved


def test_registered_adapter_replaces_a_bundled_one_and_serves_its_arrays(clean_registry):
    marray = pytest.importorskip("marray")

    class Counting(MarrayAdapter):
        copies = 0

        def to_host(self, x):
            type(self).copies += 1
            return np.array(x.data)

    with pytest.raises(pnn.ArgumentError, match="already registered"):
        register(Counting())
    adapter = register(Counting(), replace=True)
    x = marray.masked_namespace(np).asarray([1.0, 2.0])
    assert registry.adapter_for_array(x) is adapter
    np.testing.assert_array_equal(_backend.to_host(x), [1.0, 2.0])
    assert Counting.copies == 1


class _EntryPoint:
    def __init__(self, name, loaded):
        self.name, self.value, self._loaded = name, f"pkg:{name}", loaded

    def load(self):
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


def test_entry_points_register_classes_and_instances_and_warn_on_broken_ones(clean_registry, monkeypatch):
    class FromClass(_StrictAgain):
        name = "ep-class"

    class FromInstance(_StrictAgain):
        name = "ep-instance"

    class Clash(_StrictAgain):
        name = "torch"

    points = [
        _EntryPoint("a", FromClass),
        _EntryPoint("b", FromInstance()),
        _EntryPoint("c", ImportError("no module named pkg")),
        _EntryPoint("d", Clash),
    ]
    asked = []

    def entry_points(*, group):
        asked.append(group)
        return points

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert get_adapter("ep-class").name == "ep-class"
    assert asked == [ENTRY_POINT_GROUP]
    assert get_adapter("ep-instance").name == "ep-instance"
    assert get_adapter("torch") is ADAPTERS[1]  # the clash did not replace the built-in adapter
    messages = [str(w.message) for w in caught]
    assert any("'c'" in m and "ImportError" in m for m in messages)
    assert any("'d'" in m and "is built in" in m for m in messages)
    get_adapter("ep-class")
    assert asked == [ENTRY_POINT_GROUP]  # loaded once


@pytest.mark.parametrize("name", ["marray", "ndonnx", "sparse", "cubed"])
def test_bundled_adapter_examples_run(name):
    import doctest
    import importlib

    pytest.importorskip(name)
    module = importlib.import_module(f"portable_nn.backends.{name}_backend")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
