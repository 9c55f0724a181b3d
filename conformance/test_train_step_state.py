"""State beyond parameters under ``train_step``, ``value_and_grad`` and ``functional_call``: buffers, mode, keys.

Oracle: the eager loop (``loss_fn(model(x), y)``, ``zero_grad()``, ``backward``, ``step()``) on an
identical model, on the same backend (bit for bit where the same code runs) and on NumPy (the
masks are the same on every backend: :mod:`portable_nn.nn.rng`).
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import dtype_name, from_host, is_lazy
from portable_nn.testing import assert_close, to_numpy

from .test_train_step import _from_host_int, compile_modes

EXACT = {"rtol": 0, "atol": 0}


def _model(xp, device, dtype) -> pnn.Sequential:
    """Linear, BatchNorm1d (running statistics), Tanh, Dropout (a key per step), Linear."""
    return pnn.Sequential(
        pnn.Linear(4, 8, xp=xp, device=device, dtype=dtype, seed=0),
        pnn.BatchNorm1d(8, xp=xp, device=device, dtype=dtype),
        pnn.Tanh(),
        pnn.Dropout(0.3, seed=5),
        pnn.Linear(8, 3, xp=xp, device=device, dtype=dtype, seed=1),
    )


def _batches(xp, device, dtype, count: int = 3, rows: int = 16):
    rng = np.random.default_rng(7)
    return [
        (
            from_host(rng.standard_normal((rows, 4)), xp, device, dtype),
            _from_host_int(rng.integers(0, 3, rows), xp, device),
        )
        for _ in range(count)
    ]


def _eager_loop(model, optimizer, loss_fn, x, y, max_norm=None):
    loss, grad = loss_fn(model(x), y)
    optimizer.zero_grad()
    model.backward(grad)
    if max_norm is not None:
        pnn.clip_grad_norm_(model, max_norm)
    optimizer.step()
    return loss


def _assert_same_state(got, expected, xp, msg, **tolerance):
    ours, theirs = got.state_dict(), expected.state_dict()
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        assert_close(ours[name], value, xp=xp, msg=f"{msg}: {name}", **tolerance)
    assert got.random_streams() == expected.random_streams(), msg


def test_dropout_and_batchnorm_train_alike_compiled_eager_and_on_numpy(xp, device, dtype):
    """Issue 23's acceptance: compiled ``train_step`` = eager ``train_step`` = the eager loop here and on NumPy."""
    steps = 2 if is_lazy(xp) else 3
    loss_fn = pnn.CrossEntropyLoss()
    reference = _model(xp, device, dtype)
    reference_opt = pnn.SGD(reference, lr=0.1, momentum=0.9)
    on_numpy = _model("numpy", None, dtype_name(xp, dtype))
    numpy_opt = pnn.SGD(on_numpy, lr=0.1, momentum=0.9)
    runs = {}
    for compile_ in compile_modes(xp):
        model = _model(xp, device, dtype)
        runs[compile_] = (model, pnn.train_step(model, loss_fn, pnn.SGD(model, lr=0.1, momentum=0.9), compile=compile_))
    batches = _batches(xp, device, dtype)
    for i in range(steps):
        x, y = batches[i % len(batches)]
        expected = _eager_loop(reference, reference_opt, loss_fn, x, y)
        on_host = _eager_loop(on_numpy, numpy_opt, loss_fn, to_numpy(x), to_numpy(y))
        assert_close(to_numpy(expected), on_host, msg=f"the eager loop vs NumPy's at step {i}")
        for compile_, (_, step) in runs.items():
            exact = EXACT if compile_ is False else {}
            assert_close(step(x, y), expected, xp=xp, msg=f"compile={compile_} loss at step {i}", **exact)
    assert reference.random_streams()[""]["position"] == steps
    for compile_, (model, _) in runs.items():
        _assert_same_state(model, reference, xp, f"compile={compile_}", **(EXACT if compile_ is False else {}))
    for name, value in on_numpy.state_dict().items():
        assert_close(to_numpy(reference.state_dict()[name]), value, msg=f"the eager loop vs NumPy's: {name}")


def test_validation_takes_no_draw_and_a_failed_step_changes_nothing(xp, device, dtype):
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1))  # compiled on JAX
    ((x, y),) = _batches(xp, device, dtype, count=1)
    before = {name: to_numpy(value) for name, value in model.state_dict().items()}
    wrong = from_host(np.ones((16, 5)), xp, device, dtype)
    with pytest.raises(pnn.ShapeError):
        step(wrong, y)
    assert model.random_streams()[""]["position"] == 0
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(to_numpy(value), before[name], err_msg=name)
    step(x, y)
    assert model.random_streams()[""]["position"] == 1  # exactly the eager loop's one draw per forward
    assert int(to_numpy(model[1].num_batches_tracked)) == 1


def test_eval_mode_steps_use_running_statistics_and_draw_nothing(xp, device, dtype):
    """A step in eval mode (frozen BatchNorm statistics, no dropout), then train mode again: each its own program."""
    loss_fn = pnn.CrossEntropyLoss()
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt = pnn.SGD(reference, lr=0.1)
    step = pnn.train_step(model, loss_fn, pnn.SGD(model, lr=0.1))
    batches = _batches(xp, device, dtype)
    for mode in (True, False, True):
        reference.train(mode)
        model.train(mode)
        for x, y in batches[:1] if mode else batches[:2]:
            expected = _eager_loop(reference, reference_opt, loss_fn, x, y)
            assert_close(step(x, y), expected, xp=xp, msg=f"training={mode}")
    _assert_same_state(model, reference, xp, "after train/eval/eval/train")
    assert model.random_streams()[""]["position"] == 2  # train-mode steps only
    assert int(to_numpy(model[1].num_batches_tracked)) == 2


def test_max_grad_norm_clips_as_clip_grad_norm_in_the_eager_loop(xp, device, dtype):
    loss_fn = pnn.CrossEntropyLoss()
    reference = _model(xp, device, dtype)
    reference_opt = pnn.SGD(reference, lr=0.5, momentum=0.9)
    runs = {}
    for compile_ in compile_modes(xp):
        model = _model(xp, device, dtype)
        step = pnn.train_step(
            model, loss_fn, pnn.SGD(model, lr=0.5, momentum=0.9), compile=compile_, max_grad_norm=0.05
        )
        runs[compile_] = (model, step)
    for x, y in _batches(xp, device, dtype, count=2):
        expected = _eager_loop(reference, reference_opt, loss_fn, x, y, max_norm=0.05)
        for compile_, (_, step) in runs.items():
            assert_close(step(x, y), expected, xp=xp, msg=f"compile={compile_}")
    for compile_, (model, _) in runs.items():
        _assert_same_state(model, reference, xp, f"compile={compile_}", **(EXACT if compile_ is False else {}))


def test_max_grad_norm_is_checked():
    model = pnn.Linear(2, 1, seed=0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(pnn.ArgumentError, match="max_grad_norm"):
            pnn.train_step(model, pnn.MSELoss(), pnn.SGD(model, lr=0.1), max_grad_norm=bad)
    with pytest.raises(pnn.ArgumentTypeError, match="max_grad_norm"):
        pnn.train_step(model, pnn.MSELoss(), pnn.SGD(model, lr=0.1), max_grad_norm="1")


def test_value_and_grad_and_functional_call_take_buffers_mode_and_key(xp, device, dtype):
    """The pure forms give the eager loop's numbers with the stream's key, and change nothing on the model."""
    model, reference = _model(xp, device, dtype), _model(xp, device, dtype)
    loss_fn = pnn.CrossEntropyLoss()
    ((x, y),) = _batches(xp, device, dtype, count=1)
    key = pnn.rng.RandomStream(5).key(xp=xp, device=device)  # the key model(x) draws first
    params, buffers = model.named_parameters(), model.named_buffers()
    loss, grads, new_buffers = pnn.value_and_grad(model, loss_fn, return_buffers=True)(params, x, y, key=key)
    expected, grad = loss_fn(reference(x), y)
    reference.backward(grad)
    assert_close(loss, expected, xp=xp, **EXACT)
    for name, value in reference.named_grads().items():
        assert_close(grads[name], value, xp=xp, msg=name, **EXACT)
    assert list(new_buffers) == list(buffers)
    for name, value in reference.named_buffers().items():
        assert_close(new_buffers[name], value, xp=xp, msg=name, **EXACT)
    _, after = pnn.functional_call(model, params, x, key=key, return_buffers=True)
    for name, value in new_buffers.items():
        assert_close(after[name], value, xp=xp, msg=name, **EXACT)
    # nothing changed on the model: same buffer objects, stream not advanced, no gradient
    assert all(model.named_buffers()[name] is value for name, value in buffers.items())
    assert model.random_streams().get("", {"position": 0})["position"] == 0
    assert all(g is None for g in model.named_grads().values())
    # eval mode: no key needed, buffers read, not updated (the running statistics given are used)
    eval_out = pnn.functional_call(model, {**params, **new_buffers}, x, training=False)
    reference.eval()
    assert_close(eval_out, reference(x), xp=xp, **EXACT)
    with pytest.raises(pnn.ArgumentError, match="key="):
        pnn.functional_call(model, params, x, return_buffers=True)
    with pytest.raises(pnn.ArgumentError, match="return_buffers=True"):
        pnn.value_and_grad(model, loss_fn)(params, x, y, key=key)
    with pytest.raises(pnn.ArgumentTypeError, match="training"):
        pnn.functional_call(model, params, x, training=1)


def test_a_checkpoint_resumes_train_step_bit_for_bit(xp, device, dtype, tmp_path):
    """Buffers and the stream's position travel with the model: 2 + 2 steps through a file = 4 steps."""
    if is_lazy(xp):
        pytest.skip("dask: save materializes every array; the same code path is tested on the eager backends")
    loss_fn = pnn.CrossEntropyLoss()
    straight = _model(xp, device, dtype)
    straight_step = pnn.train_step(straight, loss_fn, pnn.SGD(straight, lr=0.1, momentum=0.9), compile=False)
    batches = _batches(xp, device, dtype, count=4)
    for x, y in batches:
        straight_step(x, y)
    first = _model(xp, device, dtype)
    first_opt = pnn.SGD(first, lr=0.1, momentum=0.9)
    first_step = pnn.train_step(first, loss_fn, first_opt, compile=False)
    for x, y in batches[:2]:
        first_step(x, y)
    pnn.save(first, tmp_path / "m.safetensors", optimizer=first_opt)
    resumed = pnn.load(tmp_path / "m.safetensors", xp=xp, device=device)
    resumed_step = pnn.train_step(
        resumed, loss_fn, pnn.load_optimizer(tmp_path / "m.safetensors", resumed), compile=False
    )
    for x, y in batches[2:]:
        resumed_step(x, y)
    _assert_same_state(resumed, straight, xp, "resumed", **EXACT)


@pytest.mark.backends(only=["jax"], reason="jax.jit and jax.vmap are JAX's own")
def test_under_a_users_jit_the_mode_is_explicit_and_vmap_over_keys_gives_independent_masks(xp, device, dtype):
    jax = pytest.importorskip("jax")
    model = _model(xp, device, dtype)
    loss_fn = pnn.CrossEntropyLoss()
    ((x, y),) = _batches(xp, device, dtype, count=1)
    params = model.named_parameters()
    key = pnn.rng.key(3, xp=xp, device=device)
    f = pnn.value_and_grad(model, loss_fn, return_buffers=True)
    with pytest.raises(pnn.ArgumentError, match="training=True or training=False"):
        jax.jit(lambda p, k: f(p, x, y, key=k))(params, key)
    jitted = jax.jit(lambda p, k, training: f(p, x, y, key=k, training=training), static_argnums=2)
    for training in (True, False):
        got, expected = jitted(params, key, training), f(params, x, y, key=key, training=training)
        assert_close(got[0], expected[0], xp=xp, msg=f"training={training}")
        for name, value in expected[2].items():
            assert_close(got[2][name], value, xp=xp, msg=name)
    drop = pnn.Dropout(0.5, seed=0)
    keys = pnn.rng.split(key, 4)
    ones = xp.ones((4, 32), dtype=dtype, device=device)
    masks = jax.vmap(lambda k, row: pnn.functional_call(drop, {}, row, key=k, training=True))(keys, ones)
    for i in range(4):
        assert_close(masks[i], pnn.functional_call(drop, {}, ones[i], key=keys[i]), xp=xp, **EXACT)
    assert len({tuple(to_numpy(masks[i]).tolist()) for i in range(4)}) == 4  # independent masks


def test_embedding_and_layernorm_train_under_train_step(xp, device, dtype):
    """Integer inputs (repeated indices summed, ``padding_idx`` frozen) through ``train_step``, as the eager loop."""

    def build():
        return pnn.Sequential(
            pnn.Embedding(10, 4, padding_idx=0, xp=xp, device=device, dtype=dtype, seed=0),
            pnn.LayerNorm(4, xp=xp, device=device, dtype=dtype),
            pnn.Linear(4, 3, xp=xp, device=device, dtype=dtype, seed=1),
        )

    loss_fn = pnn.CrossEntropyLoss()
    reference = build()
    reference_opt = pnn.Adam(reference, lr=0.01)
    runs = {}
    for compile_ in compile_modes(xp):
        model = build()
        runs[compile_] = (model, pnn.train_step(model, loss_fn, pnn.Adam(model, lr=0.01), compile=compile_))
    index = _from_host_int(np.array([1, 2, 3, 3, 0, 9, 5, 5]), xp, device)
    y = _from_host_int(np.array([0, 1, 2, 0, 1, 2, 0, 1]), xp, device)
    for _ in range(2):
        expected = _eager_loop(reference, reference_opt, loss_fn, index, y)
        for compile_, (_, step) in runs.items():
            assert_close(step(index, y), expected, xp=xp, msg=f"compile={compile_}")
    for compile_, (model, _) in runs.items():
        _assert_same_state(model, reference, xp, f"compile={compile_}", **(EXACT if compile_ is False else {}))
    padding_row = to_numpy(reference.named_parameters()["0.weight"])[0]
    np.testing.assert_array_equal(padding_row, to_numpy(build().named_parameters()["0.weight"])[0])
