"""portable_nn.nn.rng on every backend: Random123's known answers, bit-identical draws across backends, jax.random's
numbers for the same key, and the checks of its arguments.

Oracles: the published Threefry-2x32-20 known-answer vectors (Random123's kat_vectors), a pure-Python Threefry
(the host twin, on Python ints), NumPy's draws (every backend must give the same bits), and ``jax.random`` at run
time (the stream is JAX's default partitionable Threefry stream).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from portable_nn._backend import device_of, namespace_of
from portable_nn.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from portable_nn.nn import rng
from portable_nn.nn.rng import _threefry_host
from portable_nn.testing import to_numpy

# Random123 kat_vectors, "threefry2x32 20": (counter words, key words) -> output words.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]
SEEDS = [0, 2**32 + 5, 2**64 - 1]
SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4)]


def _unsigned(x) -> np.ndarray:
    return to_numpy(x).astype(np.int64) & 0xFFFFFFFF


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_block_function_gives_random123s_known_answers(xp, device, counter, key, expected):
    assert _threefry_host(*key, *counter) == expected
    k = rng.key((key[0] << 32) | key[1], xp=xp, device=device)
    assert rng.key_data(k) == key
    folded = rng.fold_in(k, (counter[0] << 32) | counter[1])  # the block (counter[0], counter[1]) under k
    assert namespace_of(folded) is xp and device_of(folded) == device and folded.dtype == xp.int32
    assert tuple(_unsigned(folded)) == expected


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_backend_draws_numpys_bits(xp, device, seed, shape):
    k = rng.key(seed, xp=xp, device=device)
    reference = rng.key(seed, xp="numpy")
    got = {
        "bits": rng.random_bits(k, shape),
        "uniform32": rng.uniform(k, shape),
        "bernoulli": rng.bernoulli(k, 0.3, shape),
        "scaled": rng.uniform(k, shape, low=-2.0, high=3.0),
    }
    want = {
        "bits": rng.random_bits(reference, shape),
        "uniform32": rng.uniform(reference, shape),
        "bernoulli": rng.bernoulli(reference, 0.3, shape),
        "scaled": rng.uniform(reference, shape, low=-2.0, high=3.0),
    }
    for name, value in got.items():
        assert namespace_of(value) is xp and device_of(value) == device, name
        assert tuple(value.shape) == shape, name
        np.testing.assert_array_equal(to_numpy(value), to_numpy(want[name]), err_msg=name)
    # the bits against the pure-Python Threefry: element i is y0 ^ y1 of the block (0, i)
    words = rng.key_data(k)
    host = [np.int64(a ^ b) for a, b in (_threefry_host(*words, 0, i) for i in range(math.prod(shape)))]
    np.testing.assert_array_equal(_unsigned(got["bits"]).reshape(-1), np.asarray(host, dtype=np.int64))


@pytest.mark.requires_float64
def test_float64_draws_are_the_same_everywhere_and_refine_the_float32_draws(xp, device):
    k = rng.key(7, xp=xp, device=device)
    u64 = to_numpy(rng.uniform(k, (4, 25), dtype="float64"))
    np.testing.assert_array_equal(u64, to_numpy(rng.uniform(rng.key(7, xp="numpy"), (4, 25), dtype="float64")))
    assert u64.dtype == np.float64 and (u64 >= 0).all() and (u64 < 1).all()
    assert len(np.unique(u64)) == u64.size  # 52 bits each: no ties at this size


def test_keys_split_and_fold_like_the_host_stream(xp, device):
    k = rng.key(11, xp=xp, device=device)
    keys = rng.split(k, 5)
    assert tuple(keys.shape) == (5, 2) and keys.dtype == xp.int32 and device_of(keys) == device
    for i in range(5):
        assert tuple(_unsigned(keys[i, ...])) == rng.RandomStream(11, i).key_data()
        assert tuple(_unsigned(rng.fold_in(k, i))) == rng.RandomStream(11, i).key_data()
        assert tuple(_unsigned(rng.RandomStream(11, i).key(xp=xp, device=device))) == rng.RandomStream(11, i).key_data()
    index = xp.reshape(xp.arange(6, dtype=xp.int32, device=device), (2, 3))
    grid = rng.fold_in(k, index)
    assert tuple(grid.shape) == (2, 3, 2)
    np.testing.assert_array_equal(_unsigned(grid).reshape(6, 2), _unsigned(rng.split(k, 6)))


def test_the_stream_matches_jax_random(xp, device):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    seed, shape = 2024, (3, 7)
    k, jk = rng.key(seed, xp=xp, device=device), jax.random.PRNGKey(seed)
    np.testing.assert_array_equal(_unsigned(k), np.asarray(jax.random.key_data(jk), dtype=np.int64))
    np.testing.assert_array_equal(
        _unsigned(rng.random_bits(k, shape)), np.asarray(jax.random.bits(jk, shape, jnp.uint32))
    )
    np.testing.assert_array_equal(
        to_numpy(rng.uniform(k, shape)), np.asarray(jax.random.uniform(jk, shape, jnp.float32))
    )
    np.testing.assert_array_equal(
        to_numpy(rng.bernoulli(k, 0.3, shape)), np.asarray(jax.random.bernoulli(jk, jnp.float32(0.3), shape))
    )
    np.testing.assert_array_equal(_unsigned(rng.split(k, 4)), np.asarray(jax.random.key_data(jax.random.split(jk, 4))))
    np.testing.assert_array_equal(
        _unsigned(rng.fold_in(k, 99)), np.asarray(jax.random.key_data(jax.random.fold_in(jk, 99)))
    )
    if jax.config.jax_enable_x64:
        np.testing.assert_array_equal(
            to_numpy(rng.uniform(k, shape, dtype="float64")), np.asarray(jax.random.uniform(jk, shape, jnp.float64))
        )


@pytest.mark.parametrize("p", [0.0, 1.0, 0.5, 2**-23, 1 - 2**-24])
def test_bernoulli_at_the_edges(xp, device, p):
    draws = to_numpy(rng.bernoulli(rng.key(5, xp=xp, device=device), p, (2000,)))
    u = to_numpy(rng.uniform(rng.key(5, xp="numpy"), (2000,)))
    np.testing.assert_array_equal(draws, u < np.float32(p))  # the float32 uniform draw of the same key
    if p in (0.0, 1.0):
        assert draws.all() == bool(p) and draws.any() == bool(p)


def test_bad_arguments_are_typed_errors(xp, device):
    k = rng.key(0, xp=xp, device=device)
    with pytest.raises(ArgumentError):
        rng.key(-1, xp=xp)
    with pytest.raises(ArgumentError):
        rng.key(2**64, xp=xp)
    with pytest.raises(ArgumentTypeError):
        rng.key(1.5, xp=xp)  # type: ignore[arg-type]
    with pytest.raises(ShapeError):
        rng.uniform(rng.split(k, 2), (3,))
    with pytest.raises(DTypeError):
        rng.uniform(xp.asarray([0.0, 1.0], device=device), (3,))
    with pytest.raises(DTypeError):
        rng.uniform(k, (3,), dtype="float16")
    with pytest.raises(ArgumentError):
        rng.bernoulli(k, 1.5, (3,))
    with pytest.raises(ArgumentError):
        rng.uniform(k, (-1, 2))
    with pytest.raises(ArgumentTypeError):
        rng.uniform(k, [2, 3])  # type: ignore[arg-type]
    with pytest.raises(ArgumentError):
        rng.split(k, -1)
    with pytest.raises(ArgumentTypeError):
        rng.fold_in(k, xp.asarray([0.5], device=device))


def test_random_stream_is_a_value_of_plain_ints():
    stream = rng.RandomStream(5)
    assert stream.advanced(3) == rng.RandomStream(5, 3) and stream.position == 0
    assert rng.RandomStream.from_state_dict(stream.advanced(2).state_dict()) == rng.RandomStream(5, 2)
    for bad in ({"seed": 1}, {"seed": 1, "position": -1}, {"seed": -1, "position": 0}):
        with pytest.raises(ArgumentError):
            rng.RandomStream.from_state_dict(bad)
    with pytest.raises(ArgumentError):
        stream.advanced(-1)
    with pytest.raises(ArgumentError):
        rng.RandomStream(0, 2**64)
    with pytest.raises(ArgumentTypeError):
        rng.RandomStream(0, 1.0)  # type: ignore[arg-type]
    numpy_ints = rng.RandomStream(np.uint64(2**63), np.int64(4))  # NumPy integers are ints
    assert numpy_ints == rng.RandomStream(2**63, 4) and type(numpy_ints.seed) is int
    assert type(numpy_ints.state_dict()["position"]) is int
