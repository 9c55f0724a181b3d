"""portable_nn.nn.rng inside compiled programs and batched transforms: the key is an argument, never captured.

- ``jax.jit``: a compiled draw equals the eager draw for every key passed in, and a new key gives new numbers
  (no mask baked into the program);
- ``jax.vmap`` over split keys gives each example its own draw, equal to drawing with each key alone;
- ``torch.compile`` gives the eager numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from portable_nn.nn import rng
from portable_nn.testing import to_numpy


def _dropout_mask_and_uniform(k):
    return rng.bernoulli(k, 0.75, (4, 6)), rng.uniform(rng.fold_in(k, 1), (5,))


def test_jax_jit_takes_the_key_as_an_argument():
    jax = pytest.importorskip("jax")
    compiled = jax.jit(_dropout_mask_and_uniform)
    stream = rng.RandomStream(3)
    seen = set()
    for _ in range(3):
        k = stream.key(xp="jax")
        eager, traced = _dropout_mask_and_uniform(k), compiled(k)
        for a, b in zip(eager, traced, strict=True):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
        seen.add(to_numpy(traced[0]).tobytes())
        stream = stream.advanced()
    assert len(seen) == 3  # each step's key gives its own mask
    assert compiled._cache_size() == 1  # one program for every key


def test_jax_vmap_over_split_keys_gives_each_example_its_own_draw():
    jax = pytest.importorskip("jax")
    keys = rng.split(rng.key(9, xp="jax"), 8)
    masks = jax.jit(jax.vmap(lambda k: rng.bernoulli(k, 0.5, (16,))))(keys)
    one_by_one = np.stack([to_numpy(rng.bernoulli(keys[i], 0.5, (16,))) for i in range(8)])
    np.testing.assert_array_equal(to_numpy(masks), one_by_one)
    assert len({row.tobytes() for row in one_by_one}) == 8
    # per-example keys folded in inside the mapped function (the example index traced) agree too
    base = rng.key(9, xp="jax")
    folded = jax.vmap(lambda i: rng.uniform(rng.fold_in(base, i), (3,)))(jax.numpy.arange(8, dtype=jax.numpy.int32))
    np.testing.assert_array_equal(to_numpy(folded), np.stack([to_numpy(rng.uniform(keys[i], (3,))) for i in range(8)]))


def test_torch_compile_gives_the_eager_numbers():
    torch = pytest.importorskip("torch")
    compiled = torch.compile(_dropout_mask_and_uniform, dynamic=False)
    for seed in (1, 2):
        k = rng.key(seed, xp="torch")
        for a, b in zip(_dropout_mask_and_uniform(k), compiled(k), strict=True):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
