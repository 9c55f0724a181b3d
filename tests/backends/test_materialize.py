"""The persist policy of lazy backends (``_backend.materialize``) and what it buys the layer on Dask.

On eager backends ``materialize`` hands the same objects back. On Dask, parameters stay one
stored chunk whatever the number of steps, the layer never evaluates anything itself except
the one deliberate persist of the new parameters in ``step``, and the batch reductions of
backward are trees over the batch chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import assert_close, random_array

dask = pytest.importorskip("dask", reason="dask is not installed")
da = pytest.importorskip("dask.array", reason="dask is not installed")
dask_core = pytest.importorskip("dask.core", reason="dask is not installed")
dask_threaded = pytest.importorskip("dask.threaded", reason="dask is not installed")


def test_materialize(xp, device, dtype):
    a, a64 = random_array(xp, (6, 3), device=device, dtype=dtype, seed=1)
    b, b64 = random_array(xp, (3,), device=device, dtype=dtype, seed=2)
    out = _backend.materialize(a, b)
    assert len(out) == 2
    if not _backend.is_lazy(xp):
        assert out[0] is a and out[1] is b
        return
    chunked = da.from_array(_backend.to_host(a), chunks=(2, 3))
    out = _backend.materialize(chunked * 2, b + 1)
    assert [o.npartitions for o in out] == [1, 1]
    assert [len(o.__dask_graph__()) for o in out] == [1, 1]
    assert_close(out[0], 2 * a64)
    assert_close(out[1], b64 + 1)


class CountingScheduler:
    """A dask scheduler (threads underneath) that records the output keys of every graph it runs."""

    def __init__(self) -> None:
        self.runs: list[set[Any]] = []

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.runs.append(set(_flatten(keys)))
        return dask_threaded.get(dsk, keys, **kwargs)


def _flatten(keys: Any) -> list[Any]:
    if isinstance(keys, list):
        return [k for sub in keys for k in _flatten(sub)]
    return [keys]


def _chunked(shape: tuple[int, ...], rows_per_chunk: int, seed: int) -> tuple[Any, np.ndarray]:
    host = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return da.from_array(host, chunks=(rows_per_chunk, shape[1])), host


def test_layer_evaluates_nothing_but_the_step_persist():
    """forward/backward (layer and functional) run no graph; step runs exactly one: the new parameters."""
    layer = pnn.Linear(5, 3, xp="dask", seed=0)
    x, _ = _chunked((32, 5), 8, seed=1)
    g, _ = _chunked((32, 3), 8, seed=2)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        y = layer(x)
        layer.backward(g)
        pnn.functional.linear(x, layer.weight, layer.bias)
        pnn.functional.linear_backward(g, x, layer.weight)
        with pnn.no_grad():
            layer(x)
        layer(x)
        layer.backward(g)  # accumulation: still lazy
        assert counter.runs == []
        layer.step(lr=0.1)
    assert len(counter.runs) == 1
    assert counter.runs[0] == set(_flatten(layer.weight.__dask_keys__())) | set(_flatten(layer.bias.__dask_keys__()))
    assert y.numblocks == (4, 1)  # the output stays chunked along the batch axis


def _max_fan_in(array: Any) -> int:
    graph = dict(array.__dask_graph__())
    return max(len(dask_core.get_dependencies(graph, key)) for key in graph)


def test_batch_gradients_are_tree_reductions():
    chunks = 64
    layer = pnn.Linear(5, 3, xp="dask", seed=0)
    x, _ = _chunked((8 * chunks, 5), 8, seed=1)
    g, _ = _chunked((8 * chunks, 3), 8, seed=2)
    layer(x)
    layer.backward(g)
    split_every = 4  # dask's default fan-in of reductions
    assert _max_fan_in(layer.grad_weight) <= split_every < chunks
    assert _max_fan_in(layer.grad_bias) <= split_every < chunks
    assert layer.grad_weight.npartitions == 1 and layer.grad_bias.npartitions == 1


@pytest.mark.slow
def test_parameter_graphs_do_not_grow_with_steps():
    layer = pnn.Linear(5, 3, xp="dask", seed=0)
    reference = pnn.Linear(5, 3, xp="numpy", seed=0)
    x, x_host = _chunked((32, 5), 8, seed=1)
    g, g_host = _chunked((32, 3), 8, seed=2)
    sizes = []
    for _ in range(100):
        for model, inputs, grads in ((layer, x, g), (reference, x_host, g_host)):
            model.zero_grad()
            model(inputs)
            model.backward(grads)
            model.step(lr=0.01)
        sizes.append([len(p.__dask_graph__()) for p in layer.parameters()])
    assert sizes[99] == sizes[0] == [1, 1]
    assert_close(layer.weight, reference.weight)
    assert_close(layer.bias, reference.bias)


def test_stored_arrays_come_back_without_a_scheduler_run():
    """What a persist stored (e.g. an optimizer's new parameters handed to set_parameters) is not persisted again."""
    layer = pnn.Linear(5, 3, xp="dask", seed=0)
    x, _ = _chunked((32, 5), 8, seed=1)
    counter = CountingScheduler()
    with dask.config.set(scheduler=counter):
        stored = _backend.materialize(layer(x).sum(axis=0), layer.weight * 2)
        assert len(counter.runs) == 1
        again = _backend.materialize(*stored)
        host_rooted = _backend.materialize(*layer.parameters())  # NumPy chunks: nothing to run locally
        assert len(counter.runs) == 1
        assert all(a is b for a, b in zip(again, stored, strict=True))
        assert all(a is b for a, b in zip(host_rooted, layer.parameters(), strict=True))
        pending = _backend.materialize(stored[0], stored[1] + 1)  # one pending: all persisted in one run
    assert len(counter.runs) == 2
    assert_close(pending[1], 2 * _backend.to_host(layer.weight) + 1)


@pytest.mark.slow
def test_on_a_cluster_host_values_are_shipped_and_futures_kept():
    """Under a distributed Client a NumPy-backed array is persisted (to a Future); a Future-backed one is kept."""
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        layer = pnn.Linear(5, 3, xp="dask", seed=0)  # host-rooted: its graph holds the NumPy value
        shipped = _backend.materialize(*layer.parameters())
        assert all(isinstance(v, distributed.Future) for a in shipped for v in dict(a.__dask_graph__()).values())
        assert all(a is b for a, b in zip(_backend.materialize(*shipped), shipped, strict=True))
        assert_close(client.compute(shipped[0]).result(), _backend.to_host(layer.weight))
