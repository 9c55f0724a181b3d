"""Seeded initialization: one seed gives the same parameter bytes on every backend and device."""

from __future__ import annotations

import math

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.init import initial_parameters
from portable_nn.testing import to_numpy


@pytest.mark.parametrize("init", ["torch", "glorot_uniform", "zeros"])
def test_seeded_init_is_bit_identical_to_the_host_draw(xp, device, dtype, init):
    layer = pnn.Linear(7, 5, xp=xp, device=device, dtype=dtype, seed=123, init=init)
    host_w, host_b = initial_parameters(init, 7, 5, 123)
    name = _backend.dtype_name(xp, dtype)
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        expected_w = host_w.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
        expected_b = host_b.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    else:
        expected_w, expected_b = host_w.astype(name), host_b.astype(name)
    got_w, got_b = to_numpy(layer.weight), to_numpy(layer.bias)
    assert got_w.dtype == expected_w.dtype
    assert got_w.tobytes() == expected_w.tobytes()
    assert got_b.tobytes() == expected_b.tobytes()


def test_torch_default_bounds(xp, device, dtype):
    layer = pnn.Linear(16, 32, xp=xp, device=device, dtype=dtype, seed=0)
    bound = 1 / math.sqrt(16)
    for p in layer.parameters():
        values = to_numpy(p)
        assert np.all(np.abs(values) <= bound)
        assert values.std() > bound / 4, "values should spread over the interval"


def test_seed_reproducible_and_distinct(xp, device, dtype):
    a = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=5)
    b = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=5)
    c = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=6)
    assert to_numpy(a.weight).tobytes() == to_numpy(b.weight).tobytes()
    assert to_numpy(a.weight).tobytes() != to_numpy(c.weight).tobytes()
    generator_layer = pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=np.random.default_rng(5))
    assert to_numpy(generator_layer.weight).tobytes() == to_numpy(a.weight).tobytes()


def test_callable_init(xp, device, dtype):
    def ones(rng, fan_in, fan_out):
        return np.ones((fan_out, fan_in)), np.full((fan_out,), 0.5)

    layer = pnn.Linear(3, 2, xp=xp, device=device, dtype=dtype, init=ones)
    assert np.all(to_numpy(layer.weight) == 1) and np.all(to_numpy(layer.bias) == 0.5)


def test_bad_init_arguments(xp):
    with pytest.raises(pnn.ArgumentError, match="unknown init"):
        pnn.Linear(3, 2, xp=xp, init="he")
    with pytest.raises(pnn.ShapeError, match="init returned"):
        pnn.Linear(3, 2, xp=xp, init=lambda rng, i, o: (np.ones((i, o)), np.ones(o)))
    with pytest.raises(pnn.ArgumentTypeError, match="seed"):
        pnn.Linear(3, 2, xp=xp, seed=1.5)
    with pytest.raises(pnn.ArgumentTypeError, match="in_features"):
        pnn.Linear(3.0, 2, xp=xp)
    with pytest.raises(pnn.ArgumentError, match="out_features must be >= 0"):
        pnn.Linear(3, -1, xp=xp)
