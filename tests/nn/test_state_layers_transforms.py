"""Dropout, BatchNorm1d, LayerNorm and Embedding inside a user's ``jax.jit``, ``jax.vmap`` and ``torch.compile``.

The pure pair of every layer (forward and backward, buffers in ``params``, the mode and the key in
``call``) is transformed by the user. Oracle: the same pair run eagerly on NumPy with the same values
(one key draws the same mask on every backend, conformance/test_rng.py), one example at a time for
``jax.vmap``. One dtype per backend keeps this cheap (the layers' numbers on every backend x dtype are
in conformance/test_state_layers.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import rng
from portable_nn.nn.buffers import split_saved
from portable_nn.nn.module import Call
from portable_nn.testing import assert_close, to_numpy

TRAIN = Call(validate=False, training=True)


def _run(xp):
    """The four layers' pure pairs as one function of explicit state on backend ``xp`` (float32):
    ``(params, index, x, g, key) -> (outputs, gradients, BatchNorm1d's new buffers)``, and its ``params``."""
    table = pnn.Embedding(6, 4, padding_idx=0, xp=xp, seed=0)
    norm = pnn.LayerNorm(4, xp=xp)
    drop = pnn.Dropout(0.5)
    batch_norm = pnn.BatchNorm1d(3, xp=xp)
    norm.set_parameters({"weight": norm.xp.linspace(0.5, 2.0, 4, dtype=norm.dtype)})
    params = {
        "table": table.named_parameters(),
        "norm": norm.named_parameters(),
        "bn": {**batch_norm.named_parameters(), **batch_norm.named_buffers()},
    }

    def after_lookup(params, h, x, g, key):
        """LayerNorm, Dropout and BatchNorm1d: ``(outputs, grads, updates)``, ``dL/dh`` in ``outputs``."""
        y, norm_saved = norm.functional_forward(params["norm"], h, TRAIN)
        y, mask = drop.functional_forward({}, y, Call(validate=False, training=True, key=key))
        z, bn_saved = batch_norm.functional_forward(params["bn"], x, TRAIN)
        bn_saved, updates = split_saved(bn_saved)
        grad_y, _ = drop.functional_backward({}, mask, g, True, TRAIN)
        grad_h, norm_grads = norm.functional_backward(params["norm"], norm_saved, grad_y, True, TRAIN)
        grad_x, bn_grads = batch_norm.functional_backward(params["bn"], bn_saved, z * z, True, TRAIN)
        return {"y": y, "z": z, "grad_x": grad_x, "grad_h": grad_h}, {"norm": norm_grads, "bn": bn_grads}, updates

    def run(params, index, x, g, key):
        """The Embedding first: ``after_lookup`` on its rows, and its weight gradient in ``grads``."""
        h, table_saved = table.functional_forward(params["table"], index, TRAIN)
        outputs, grads, updates = after_lookup(params, h, x, g, key)
        _, table_grads = table.functional_backward(params["table"], table_saved, outputs["grad_h"], False, TRAIN)
        return outputs, {**grads, "table": table_grads["weight"]}, updates

    run.after_lookup = after_lookup  # type: ignore[attr-defined]
    return run, params


def _data(xp, device=None):
    host = np.random.default_rng(1)
    index = np.array([[0, 3, 3], [5, 1, 2]])
    x = host.standard_normal((2, 4, 3)).astype(np.float32)  # two groups of a (4, 3) BatchNorm batch
    g = host.standard_normal((2, 3, 4)).astype(np.float32)
    return [xp.asarray(a, device=device) for a in (index, x, g)]


def _assert_trees_close(actual, expected):
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected)
        for name in expected:
            _assert_trees_close(actual[name], expected[name])
    elif isinstance(expected, tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            _assert_trees_close(a, e)
    else:
        assert_close(to_numpy(actual), to_numpy(expected), xp="numpy")


def _numpy_oracle(example, keys):
    """The eager NumPy pair on example ``example`` (or the whole batch, None) with the key data of ``keys``."""
    import array_api_compat.numpy as np_xp

    run, params = _run("numpy")
    index, x, g = _data(np_xp)
    key = np_xp.asarray(to_numpy(keys))
    if example is None:
        return run(params, index, x[0], g, key)
    return run(params, index[example], x[example], g[example], key)


def test_every_layer_under_a_users_jax_jit_of_jax_vmap():
    """One compiled program of the vmapped pair: each example (a key, an index row, a BatchNorm group) as if run
    alone on NumPy; a second batch of keys gives new masks from the same program (none baked in)."""
    jax = pytest.importorskip("jax")
    run, params = _run("jax")
    index, x, g = _data(jax.numpy)
    compiled = jax.jit(jax.vmap(run, in_axes=(None, 0, 0, 0, 0)))
    seen = []
    for seed in (3, 4):
        keys = rng.split(rng.key(seed, xp="numpy"), 2)  # drawn on NumPy: the same keys, no eager JAX ops
        mapped = jax.tree_util.tree_map(np.asarray, compiled(params, index, x, g, jax.numpy.asarray(keys)))
        for i in range(2):
            one = jax.tree_util.tree_map(lambda leaf, i=i: leaf[i, ...], mapped)
            _assert_trees_close(one, _numpy_oracle(i, keys[i, ...]))
        masks = mapped[0]["y"] != 0
        assert (masks[0] != masks[1]).any()  # independent masks per example
        seen.append(masks)
    assert (seen[0] != seen[1]).any() and compiled._cache_size() == 1


def test_the_layers_after_the_lookup_compile_to_one_torch_graph():
    """``fullgraph=True`` (no graph break: nothing is read back, the key is an argument), ``aot_eager`` (no C++
    build). The Embedding's lookup and scatter-add under ``torch.compile`` (a graph break by its range check) are in
    tests/nn/test_scatter_transforms.py."""
    torch = pytest.importorskip("torch")
    import array_api_compat.numpy as np_xp
    import array_api_compat.torch as torch_xp

    run, params = _run("torch")
    oracle, numpy_params = _run("numpy")
    index, x, g = _data(torch_xp)
    h = params["table"]["weight"][index]  # the lookup's rows, (2, 3, 4)
    on_numpy = [np_xp.asarray(to_numpy(a)) for a in (h, x[0], g)]
    torch._dynamo.reset()
    compiled = torch.compile(run.after_lookup, fullgraph=True, backend="aot_eager")
    masks = []
    for seed in (3, 4):  # a new key: a new mask from the same compiled program
        key = rng.key(seed, xp="torch")
        got = compiled(params, h, x[0], g, key)
        _assert_trees_close(got, oracle.after_lookup(numpy_params, *on_numpy, np_xp.asarray(to_numpy(key))))
        masks.append(to_numpy(got[0]["y"]) != 0)
    assert (masks[0] != masks[1]).any()
