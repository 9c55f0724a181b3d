"""``state_dict`` / ``load_state_dict``: arrays from any backend and device, validated first, all or nothing."""

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


@pytest.fixture
def trained(xp, device, dtype):
    return trained_layer(xp, device, dtype)[0]


def _host_state(layer: pnn.Linear, name: str | None = None) -> dict[str, np.ndarray]:
    """Fresh host NumPy values for every parameter (dtype ``name``, default float64), distinct from the layer's."""
    return {n: np.full(p.shape, 0.25, dtype=name or "float64") for n, p in layer.named_parameters().items()}


def test_state_dict_holds_the_live_parameters(trained):
    state = trained.state_dict()
    assert list(state) == ["weight", "bias"]
    assert state["weight"] is trained.weight and state["bias"] is trained.bias
    no_bias = pnn.Linear(4, 3, bias=False, xp=trained.xp, device=trained.device, dtype=trained.dtype)
    assert list(no_bias.state_dict()) == ["weight"]


def test_load_state_dict_across_backends_and_devices(xp, device, dtype, target):
    """A layer on B loads the state of a layer trained on A: bitwise-identical parameters, same outputs."""
    source, x64 = trained_layer(xp, device, dtype)
    target_xp, target_device = target_namespace_device(target)
    name = _backend.dtype_name(xp, dtype)
    if not has_dtype(target_xp, target_device, name):  # e.g. bfloat16 -> NumPy: explicit cast only
        layer = pnn.Linear(4, 3, xp=target_xp, device=target_device, seed=7)
        before = snapshot(layer)
        with pytest.raises(pnn.DTypeError, match=f"expected dtype float32, got {name}.*cast=True"):
            layer.load_state_dict(source.state_dict())
        assert_unchanged(layer, before)
        layer.load_state_dict(source.state_dict(), cast=True)
        expected = _backend.from_host(to_numpy(source.weight), target_xp, target_device, layer.dtype)
        assert host_bytes(layer.weight) == host_bytes(expected)
        return
    layer = pnn.Linear(4, 3, xp=target_xp, device=target_device, dtype=name, seed=7)
    layer.load_state_dict(source.state_dict())
    for n in ("weight", "bias"):
        assert host_bytes(getattr(layer, n)) == host_bytes(getattr(source, n)), n
        assert _backend.namespace_of(getattr(layer, n)) is target_xp
        assert _backend.device_of(getattr(layer, n)) == target_device
    x = _backend.from_host(x64, target_xp, target_device, layer.dtype)
    x_source = _backend.from_host(x64, xp, device, dtype)
    assert_same_outputs(layer(x), source(x_source), same_backend=target_xp is xp)


def _bfloat16_backend() -> str:
    for name in ("torch", "jax"):
        if name in _backend.installed_backends():
            return name
    pytest.skip("needs torch or jax to make bfloat16 arrays")


def test_bfloat16_state_needs_cast(xp, device):
    """bfloat16 into a float32 layer (any backend, NumPy included): DTypeError, unless cast=True (exact)."""
    layer = pnn.Linear(4, 3, xp=xp, device=device, seed=0)
    source = pnn.Linear(4, 3, xp=_bfloat16_backend(), dtype="bfloat16", seed=3)
    before = snapshot(layer)
    with pytest.raises(pnn.DTypeError, match=r"expected dtype float32, got bfloat16.*cast=True"):
        layer.load_state_dict(source.state_dict())
    assert_unchanged(layer, before)
    layer.load_state_dict(source.state_dict(), cast=True)
    assert host_bytes(layer.weight) == host_bytes(source.weight)  # bfloat16 -> float32 is exact


def test_loaded_arrays_are_copies(trained, xp, device, dtype):
    state = {n: _backend.from_host(v, xp, device, dtype) for n, v in _host_state(trained).items()}
    trained.load_state_dict(state)
    assert all(trained.named_parameters()[n] is not state[n] for n in state)
    assert np.all(to_numpy(trained.weight) == 0.25)


def test_caller_mutating_its_numpy_state_does_not_reach_the_layer(xp, device):
    layer = pnn.Linear(4, 3, xp=xp, device=device, seed=0)
    state = _host_state(layer, "float32")
    layer.load_state_dict(state)
    state["weight"][...] = 99.0  # zero-copy DLPack import would make the layer see this
    assert np.all(to_numpy(layer.weight) == 0.25)


def test_strict_false_loads_common_keys(trained, xp, device, dtype):
    weight, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=9)
    bias_before = host_bytes(trained.bias)
    trained.load_state_dict({"weight": weight, "extra": weight}, strict=False)
    assert host_bytes(trained.weight) == host_bytes(weight)
    assert host_bytes(trained.bias) == bias_before


def test_cast_true_casts_exactly_like_the_host(trained, xp, device, dtype):
    names = _backend.supported_dtypes(xp, device)
    current = _backend.dtype_name(xp, dtype)
    other = next((n for n in ("float64", "float32") if n != current and n in names), None)
    if other is None:
        pytest.skip(f"{_backend.backend_name(xp)} has no second float dtype here")
    values = np.random.default_rng(4).standard_normal((3, 4))
    state = {
        "weight": _backend.from_host(values, xp, device, _backend.resolve_dtype(xp, other)),
        "bias": _backend.from_host(values[:, 0], xp, device, _backend.resolve_dtype(xp, other)),
    }
    trained.load_state_dict(state, cast=True)
    expected = _backend.from_host(to_numpy(state["weight"]), xp, device, dtype)
    assert host_bytes(trained.weight) == host_bytes(expected)
    assert trained.weight.dtype == dtype


# --------------------------------------------------------------------------- bad states: typed error, layer unchanged


def _bad_states(layer: pnn.Linear, xp, device, dtype) -> dict[str, tuple[object, type[Exception], str]]:
    weight, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=5)
    bias, _ = random_array(xp, (3,), device=device, dtype=dtype, seed=6)
    wrong_bias, _ = random_array(xp, (2,), device=device, dtype=dtype, seed=6)
    return {
        "missing": ({"weight": weight}, pnn.SerializationError, r"missing keys \['bias'\]"),
        "unexpected": ({"weight": weight, "bias": bias, "scale": bias}, pnn.SerializationError, "unexpected.*scale"),
        "wrong_shape": ({"weight": weight, "bias": wrong_bias}, pnn.ShapeError, r"bias: expected shape \(3,\)"),
        "transposed": ({"weight": weight.T, "bias": bias}, pnn.ShapeError, r"weight: expected shape \(3, 4\)"),
        "integer": (
            {"weight": weight, "bias": np.zeros(3, dtype=np.int32)},
            pnn.DTypeError,
            "bias: expected a floating array.*int32",
        ),
        "bool": ({"weight": np.ones((3, 4), dtype=bool), "bias": bias}, pnn.DTypeError, "got dtype bool"),
        "list": ({"weight": weight, "bias": [0.0, 0.0, 0.0]}, pnn.NamespaceError, "bias: expected an array"),
        "not_a_mapping": ([("weight", weight), ("bias", bias)], pnn.ArgumentTypeError, "must be a mapping"),
    }


CASES = ["missing", "unexpected", "wrong_shape", "transposed", "integer", "bool", "list", "not_a_mapping"]


@pytest.mark.parametrize("case", CASES)
def test_bad_state_is_refused_and_changes_nothing(trained, xp, device, dtype, case):
    state, error, message = _bad_states(trained, xp, device, dtype)[case]
    before = snapshot(trained)
    with pytest.raises(error, match=message):
        trained.load_state_dict(state)  # type: ignore[arg-type]
    assert_unchanged(trained, before)


def test_other_float_dtype_needs_cast(trained, xp, device, dtype):
    """float64 into float32 (precision loss) and float32 into float64 are never silent."""
    current = _backend.dtype_name(xp, dtype)
    other = "float32" if current == "float64" else "float64"
    state = _host_state(trained, other)  # host NumPy arrays: another backend than most layers, too
    before = snapshot(trained)
    loss = "lose precision" if other == "float64" and current != "float64" else "never casts silently"
    with pytest.raises(pnn.DTypeError, match=f"expected dtype {current}, got {other}.*{loss}.*cast=True"):
        trained.load_state_dict(state)
    assert_unchanged(trained, before)


def test_failure_on_the_last_key_leaves_the_first_unloaded(trained, xp, device, dtype):
    """weight is valid and would be loaded first; the bad bias must stop everything."""
    weight, _ = random_array(xp, (3, 4), device=device, dtype=dtype, seed=11)
    before = snapshot(trained)
    with pytest.raises(pnn.ShapeError):
        trained.load_state_dict({"weight": weight, "bias": np.zeros((4,))})
    assert_unchanged(trained, before)
