"""Dropout, BatchNorm1d, LayerNorm and Embedding against torch.nn at run time, on every backend × device × dtype.

Torch runs in float64 on the values each backend holds (``random_array``'s host copies), with
autograd for every gradient; buffers are compared after several train-mode steps and in eval mode.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import rng
from portable_nn.nn.buffers import split_saved
from portable_nn.nn.module import Call
from portable_nn.testing import assert_close, random_array, to_numpy

torch = pytest.importorskip("torch")


def _t(host: np.ndarray, grad: bool = False):
    return torch.tensor(host, dtype=torch.float64, requires_grad=grad)


def _close(actual, expected_tensor, xp, device, dtype):
    assert_close(actual, expected_tensor.detach().numpy(), xp=xp, device=device, dtype=dtype)


# ---------------------------------------------------------------- LayerNorm


@pytest.mark.parametrize(
    ("normalized_shape", "x_shape", "affine", "bias"),
    [(4, (3, 4), True, True), ((2, 3), (2, 5, 2, 3), True, False), (4, (4,), False, True)],
    ids=["rows", "trailing-2d-no-bias", "no-affine"],
)
def test_layernorm_matches_torch(xp, device, dtype, normalized_shape, x_shape, affine, bias):
    norm = pnn.LayerNorm(normalized_shape, 1e-5, affine, bias, xp=xp, device=device, dtype=dtype)
    reference = torch.nn.LayerNorm(normalized_shape, 1e-5, affine, bias, dtype=torch.float64)
    if affine:  # random affine parameters, the same values on both sides
        w, w64 = random_array(xp, norm.weight.shape, device=device, dtype=dtype, seed=1)
        norm.set_parameters({"weight": w})
        reference.weight.data = _t(w64)
        if bias:
            b, b64 = random_array(xp, norm.bias.shape, device=device, dtype=dtype, seed=2)
            norm.set_parameters({"bias": b})
            reference.bias.data = _t(b64)
    x, x64 = random_array(xp, x_shape, device=device, dtype=dtype, seed=3)
    g, g64 = random_array(xp, x_shape, device=device, dtype=dtype, seed=4)
    xt = _t(x64, grad=True)
    expected = reference(xt)
    expected.backward(_t(g64))
    _close(norm(x), expected, xp, device, dtype)
    _close(norm.backward(g), xt.grad, xp, device, dtype)
    for name, param in reference.named_parameters():
        _close(getattr(norm, f"grad_{name}"), param.grad, xp, device, dtype)
    assert list(norm.state_dict()) == list(reference.state_dict())
    norm.eval()  # no mode dependence, as in torch: eval mode gives the same output
    _close(norm(x), reference.eval()(xt), xp, device, dtype)


# ---------------------------------------------------------------- BatchNorm1d


@pytest.mark.parametrize("x_shape", [(6, 3), (4, 3, 5)], ids=["NC", "NCL"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_batchnorm_matches_torch_in_train_and_eval_with_buffers_after_several_steps(
    xp, device, dtype, x_shape, momentum
):
    norm = pnn.BatchNorm1d(3, momentum=momentum, xp=xp, device=device, dtype=dtype)
    reference = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    assert list(norm.state_dict()) == list(reference.state_dict())
    w, w64 = random_array(xp, (3,), device=device, dtype=dtype, seed=1)
    norm.set_parameters({"weight": w})
    reference.weight.data = _t(w64)
    for step, training in enumerate([True, True, True, False]):
        norm.train(training)
        reference.train(training)
        norm.zero_grad()
        reference.zero_grad()
        x, x64 = random_array(xp, x_shape, device=device, dtype=dtype, seed=10 + step, scale=2.0)
        g, g64 = random_array(xp, x_shape, device=device, dtype=dtype, seed=20 + step)
        xt = _t(x64, grad=True)
        expected = reference(xt)
        expected.backward(_t(g64))
        _close(norm(x), expected, xp, device, dtype)
        _close(norm.backward(g), xt.grad, xp, device, dtype)
        _close(norm.grad_weight, reference.weight.grad, xp, device, dtype)
        _close(norm.grad_bias, reference.bias.grad, xp, device, dtype)
        _close(norm.running_mean, reference.running_mean, xp, device, dtype)
        _close(norm.running_var, reference.running_var, xp, device, dtype)
        assert int(to_numpy(norm.num_batches_tracked)) == int(reference.num_batches_tracked)
    assert xp.isdtype(norm.num_batches_tracked.dtype, "integral")


@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False)], ids=["no-affine", "no-running-stats"])
def test_batchnorm_without_affine_or_running_statistics_matches_torch(xp, device, dtype, affine, track):
    """Without running statistics eval mode normalizes with the batch's, as torch does; no buffers, no update."""
    norm = pnn.BatchNorm1d(3, affine=affine, track_running_stats=track, xp=xp, device=device, dtype=dtype)
    reference = torch.nn.BatchNorm1d(3, affine=affine, track_running_stats=track, dtype=torch.float64)
    assert list(norm.state_dict()) == list(reference.state_dict())
    for step, training in enumerate([True, True, False]):
        norm.train(training)
        reference.train(training)
        norm.zero_grad()
        reference.zero_grad()
        x, x64 = random_array(xp, (4, 3, 5), device=device, dtype=dtype, seed=30 + step, scale=2.0)
        g, g64 = random_array(xp, (4, 3, 5), device=device, dtype=dtype, seed=40 + step)
        xt = _t(x64, grad=True)
        expected = reference(xt)
        expected.backward(_t(g64))
        _close(norm(x), expected, xp, device, dtype)
        _close(norm.backward(g), xt.grad, xp, device, dtype)
        for name, param in reference.named_parameters():
            _close(getattr(norm, f"grad_{name}"), param.grad, xp, device, dtype)
        for name, buffer in reference.named_buffers():
            np.testing.assert_allclose(to_numpy(getattr(norm, name)), buffer.numpy(), rtol=1e-5, err_msg=name)
    assert list(norm.named_buffers()) == [name for name, _ in reference.named_buffers()]


def test_batchnorm_rebinds_buffers_and_never_mutates_held_arrays(xp, device, dtype):
    norm = pnn.BatchNorm1d(2, xp=xp, device=device, dtype=dtype)
    held = norm.state_dict()
    before = {name: to_numpy(value).copy() for name, value in held.items()}
    x, _ = random_array(xp, (5, 2), device=device, dtype=dtype, seed=0)
    norm(x)
    for name, value in held.items():
        np.testing.assert_array_equal(to_numpy(value), before[name])
    assert int(to_numpy(norm.num_batches_tracked)) == 1
    with pytest.raises(pnn.ArgumentError, match="more than 1 value per channel"):
        norm(x[:1, ...])
    with pytest.raises(pnn.ShapeError):
        norm(xp.reshape(x, (10,)))


def test_the_pure_form_takes_buffers_in_params_and_returns_them(xp, device, dtype):
    norm = pnn.BatchNorm1d(2, xp=xp, device=device, dtype=dtype)
    state = {**norm.named_parameters(), **norm.named_buffers()}
    x, _ = random_array(xp, (4, 2), device=device, dtype=dtype, seed=0)
    _, saved = norm.functional_forward(state, x, Call(training=True))
    _, updates = split_saved(saved)
    assert sorted(updates) == ["num_batches_tracked", "running_mean", "running_var"]
    assert int(to_numpy(norm.num_batches_tracked)) == 0  # the module is not changed by the pure form
    _, saved = norm.functional_forward(state, x, Call(training=False))
    assert split_saved(saved)[1] == {}


# ---------------------------------------------------------------- Embedding


def test_embedding_matches_torch_with_repeats_and_padding(xp, device, dtype):
    table = pnn.Embedding(6, 3, padding_idx=-2, xp=xp, device=device, dtype=dtype, seed=0)
    assert table.padding_idx == 4
    assert float(np.abs(to_numpy(table.weight)[4]).max()) == 0.0
    reference = torch.nn.Embedding(6, 3, padding_idx=4, dtype=torch.float64)
    reference.weight.data = _t(np.asarray(to_numpy(table.weight), dtype=np.float64))
    host = np.array([[0, 4, 2], [2, 2, 5]])
    index = xp.asarray(host, device=device)
    g, g64 = random_array(xp, (2, 3, 3), device=device, dtype=dtype, seed=1)
    expected = reference(torch.tensor(host))
    expected.backward(_t(g64))
    _close(table(index), expected, xp, device, dtype)
    assert table.backward(g) is None  # integer indices have no gradient
    _close(table.grad_weight, reference.weight.grad, xp, device, dtype)
    assert list(table.state_dict()) == list(reference.state_dict())
    _close(table.eval()(index), reference.eval()(torch.tensor(host)), xp, device, dtype)  # no mode dependence


def test_embedding_refuses_out_of_range_and_floating_indices(xp, device, dtype):
    table = pnn.Embedding(4, 2, xp=xp, device=device, dtype=dtype, seed=0)
    with pytest.raises(pnn.IndexOutOfRangeError):
        table(xp.asarray([0, 4], device=device))
    with pytest.raises(pnn.IndexOutOfRangeError):
        table(xp.asarray([-1], device=device))
    with pytest.raises(pnn.DTypeError, match="integral"):
        table(xp.asarray([0.0], device=device, dtype=dtype))


# ---------------------------------------------------------------- Dropout


def test_dropout_statistics_scaling_and_the_same_mask_in_backward(xp, device, dtype):
    p = 0.3
    drop = pnn.Dropout(p, seed=5)
    x = xp.ones((200, 100), device=device, dtype=dtype)
    y = to_numpy(drop(x)).astype(np.float64)
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 0.02  # 20000 draws: 4.5 standard deviations
    np.testing.assert_allclose(y[kept], np.float64(to_numpy(xp.asarray(1 / (1 - p), dtype=dtype))), rtol=1e-2)
    g = to_numpy(drop.backward(xp.ones_like(x))).astype(np.float64)
    np.testing.assert_array_equal(g != 0, kept)
    np.testing.assert_allclose(g, y, rtol=1e-6)
    second = to_numpy(drop(x)) != 0
    assert (second != kept).any()  # the stream advanced: a new mask
    assert drop.eval()(x) is x and drop.backward(x) is x


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_is_torchs_rule_on_its_mask_forward_and_backward(xp, device, dtype, p):
    """``y = x * mask * scale`` and ``dL/dx = dL/dy * mask * scale`` with torch's scale, read at run time from
    ``torch.nn.functional.dropout`` (``1/(1-p)``; p = 1 zeroes everything, p = 0 is the identity)."""
    drop = pnn.Dropout(p)
    x, x64 = random_array(xp, (30, 20), device=device, dtype=dtype, seed=1)
    g, g64 = random_array(xp, (30, 20), device=device, dtype=dtype, seed=2)
    y, mask = drop.functional_forward({}, x, Call(training=True, key=rng.key(4, xp=xp, device=device)))
    keep = np.ones(x64.shape, dtype=bool) if mask is None else to_numpy(mask)
    assert (mask is None) == (p == 0.0)
    torch_scale = float(torch.nn.functional.dropout(torch.ones(4000, dtype=torch.float64), p).max())
    _close(y, _t(x64 * keep * torch_scale), xp, device, dtype)
    grad_x, _ = drop.functional_backward({}, mask, g, True, Call(training=True))
    _close(grad_x, _t(g64 * keep * torch_scale), xp, device, dtype)


def test_dropout_same_seed_same_masks_on_every_backend(xp, device, dtype):
    here, there = pnn.Dropout(0.5, seed=11), pnn.Dropout(0.5, seed=11)
    x = xp.ones((4, 8), device=device, dtype=dtype)
    for _ in range(2):
        mask = to_numpy(here(x)) != 0
        reference = to_numpy(there(np.ones((4, 8), np.float32))) != 0
        np.testing.assert_array_equal(mask, reference)
    key = rng.key(3, xp=xp, device=device)
    _, mask = here.functional_forward({}, x, Call(training=True, key=key))
    np.testing.assert_array_equal(to_numpy(mask), to_numpy(rng.bernoulli(rng.key(3, xp="numpy"), 0.5, (4, 8))))
    with pytest.raises(pnn.ArgumentError, match="key"):
        here.functional_forward({}, x, Call(training=True))


# ---------------------------------------------------------------- a model holding every layer


def _model(xp, device, dtype):
    return pnn.Sequential(
        pnn.Embedding(10, 4, xp=xp, device=device, dtype=dtype, seed=0),
        pnn.BatchNorm1d(4, xp=xp, device=device, dtype=dtype),
        pnn.LayerNorm(4, xp=xp, device=device, dtype=dtype),
        pnn.Dropout(0.25, seed=1),
        pnn.Linear(4, 2, xp=xp, device=device, dtype=dtype, seed=2),
    )


def test_modes_buffers_and_optimizers_in_a_model(xp, device, dtype):
    model = _model(xp, device, dtype)
    assert list(model.named_buffers()) == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert list(model.state_dict())[1:4] == ["1.weight", "1.bias", "1.running_mean"]
    optimizer = pnn.SGD(model, lr=0.1)
    assert not any(name in model.named_buffers() for name in optimizer.module.named_parameters())
    index = xp.asarray([1, 2, 3, 3, 9], device=device)
    y = model(index)
    model.backward(xp.ones_like(y))
    optimizer.step()
    assert int(to_numpy(model[1].num_batches_tracked)) == 1
    model.eval()
    assert [layer.training for layer in model] == [False] * 5
    first, second = model(index), model(index)  # eval: no draw, no buffer update
    np.testing.assert_array_equal(to_numpy(first), to_numpy(second))
    assert int(to_numpy(model[1].num_batches_tracked)) == 1
    assert model.train() is model and model[3].training


def test_pickle_deepcopy_and_state_dict_round_trips_keep_buffers_and_the_stream(xp, device, dtype):
    model = _model(xp, device, dtype)
    index = xp.asarray([1, 2, 3, 3], device=device)
    model(index)
    for make_copy in (lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy):
        copied = make_copy(model)
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(to_numpy(copied.state_dict()[name]), to_numpy(value))
        np.testing.assert_array_equal(to_numpy(copied(index)), to_numpy(model(index)))  # same stream position
    on_numpy = _model("numpy", None, "float32" if str(dtype).endswith("float32") else "float64")
    on_numpy.load_state_dict(model.state_dict(), cast=True)
    assert int(to_numpy(on_numpy[1].num_batches_tracked)) == int(to_numpy(model[1].num_batches_tracked))
    np.testing.assert_allclose(to_numpy(on_numpy[1].running_var), to_numpy(model[1].running_var))
    with pytest.raises(pnn.DTypeError, match="integer"):
        on_numpy.load_state_dict({**on_numpy.state_dict(), "1.num_batches_tracked": np.ones((), np.float32)})


def test_to_casts_floating_buffers_and_keeps_integer_ones(xp, device, dtype):
    norm = pnn.BatchNorm1d(2).to(xp=xp, device=device, dtype=dtype)
    assert norm.running_mean.dtype == dtype and norm.running_var.dtype == dtype
    assert xp.isdtype(norm.num_batches_tracked.dtype, "integral")
    assert pnn.backend_of(norm.num_batches_tracked) == pnn.backend_of(norm.weight)


def test_whole_model_checkpoints_round_trip_buffers_to_other_backends(xp, device, dtype, tmp_path):
    """Saved here, loaded on NumPy; saved there, loaded back here: buffers, integer kinds and stream positions
    survive both ways (NumPy is the hub: every backend pair goes through it), and training resumes bit for bit."""
    model = _model(xp, device, dtype)
    index = xp.asarray([1, 2, 3, 3], device=device)
    model(index)
    model(index)
    here, there = tmp_path / "here.safetensors", tmp_path / "there.safetensors"
    pnn.save(model, here)
    on_numpy = pnn.load(here, xp="numpy")
    pnn.save(on_numpy, there)
    back = pnn.load(there, xp=xp, device=device)
    for loaded in (on_numpy, back):
        assert [type(layer) for layer in loaded] == [type(layer) for layer in model]
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(to_numpy(loaded.state_dict()[name]), to_numpy(value), err_msg=name)
        assert loaded.xp.isdtype(loaded[1].num_batches_tracked.dtype, "integral")
        assert (
            loaded.random_streams()
            == model.random_streams()
            == {"": {"seed": 1, "position": 2}, "3": model[3].random_streams()[""]}
        )
    assert back.xp is model.xp and back.device == model.device and back[1].running_var.dtype == dtype
    np.testing.assert_array_equal(to_numpy(back(index)), to_numpy(model(index)))  # the same mask and statistics
    np.testing.assert_array_equal(to_numpy(back[1].running_mean), to_numpy(model[1].running_mean))
    state = pnn.load_state(there, xp=xp, device=device)
    assert int(to_numpy(state["1.num_batches_tracked"])) == 2
    with pytest.raises(pnn.DTypeError):  # a bare state dict stays floating-only
        pnn.save(model.state_dict(), tmp_path / "state.safetensors")


def test_the_pure_form_under_a_users_jax_jit_and_vmap(xp, device, dtype):
    if "jax" not in str(xp.__name__):
        pytest.skip("jax.jit and jax.vmap apply to the JAX backend only")
    import jax

    drop, norm = pnn.Dropout(0.5), pnn.BatchNorm1d(3, xp=xp, device=device, dtype=dtype)
    x, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=0)

    @jax.jit
    def step(state, x, key):
        y, saved = norm.functional_forward(state, x, Call(validate=False, training=True))
        y, _ = drop.functional_forward({}, y, Call(validate=False, training=True, key=key))
        return y, split_saved(saved)[1]

    state = {**norm.named_parameters(), **norm.named_buffers()}
    for position in range(2):  # a new key per step: a new mask per step, never one baked into the program
        key = rng.fold_in(rng.key(0, xp=xp, device=device), position)
        y, updates = step(state, x, key)
        eager_y, _ = norm.functional_forward(state, x, Call(training=True))
        eager_y, _ = drop.functional_forward({}, eager_y, Call(training=True, key=key))
        np.testing.assert_allclose(to_numpy(y), to_numpy(eager_y), rtol=1e-6)
        state = {**state, **updates}
    assert int(to_numpy(state["num_batches_tracked"])) == 2
    keys = rng.split(rng.key(1, xp=xp, device=device), 8)
    masks = jax.vmap(lambda k: drop.functional_forward({}, x, Call(validate=False, key=k))[1])(keys)
    assert masks.shape == (8, 4, 3) and bool((masks[0] != masks[1]).any())  # independent masks per example
