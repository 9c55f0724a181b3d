"""The pure functional form inside a user's own ``jax.jit``, ``jax.vmap`` and ``torch.compile``, for every loss.

``pnn.value_and_grad`` and ``pnn.functional_call`` are meant to be composed with JAX's
transformations by library authors: jitted, vmapped for per-example gradients, vmapped over a
stack of parameter sets (an ensemble). Oracle: the same functions called eagerly, one example or
one member at a time. Value checks cannot run on traced arrays (class-index targets are then
masked, not range-checked); the eager calls keep checking them.
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import from_host
from portable_nn.errors import ArgumentError
from portable_nn.testing import assert_close
from portable_nn.training.functional_model import loss_and_grads_fn

from .test_train_step import _from_host_int, _model

ROWS = 6


def _targets(kind, xp, device, dtype):
    rng = np.random.default_rng(3)
    if kind == "index":
        return _from_host_int(rng.integers(0, 3, ROWS), xp, device)
    if kind == "ignored":  # torch's default ignore_index in two rows
        return _from_host_int(np.array([0, -100, 2, 1, -100, 1]), xp, device)
    if kind == "binary":
        return from_host(rng.integers(0, 2, (ROWS, 3)).astype(np.float64), xp, device, dtype)
    if kind == "probabilities":
        logits = rng.standard_normal((ROWS, 3))
        return from_host(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), xp, device, dtype)
    return from_host(rng.standard_normal((ROWS, 3)), xp, device, dtype)


LOSSES = {
    "cross-entropy": (pnn.CrossEntropyLoss, "index"),
    "cross-entropy-ignored": (pnn.CrossEntropyLoss, "ignored"),
    "cross-entropy-smoothed-sum": (lambda: pnn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1), "index"),
    "cross-entropy-probabilities": (pnn.CrossEntropyLoss, "probabilities"),
    "nll": (pnn.NLLLoss, "index"),
    "bce-with-logits": (pnn.BCEWithLogitsLoss, "binary"),
    "mse": (pnn.MSELoss, "real"),
    "l1": (pnn.L1Loss, "real"),
    "huber": (pnn.HuberLoss, "real"),
    "smooth-l1": (pnn.SmoothL1Loss, "real"),
}


def _setup(xp, device, dtype, name):
    make, kind = LOSSES[name]
    model = _model(xp, device, dtype)
    x = from_host(np.random.default_rng(1).standard_normal((ROWS, 2)), xp, device, dtype)
    return model, make(), x, _targets(kind, xp, device, dtype)


def _assert_like_eager(xp, f, params, x, y, result):
    """``result`` (loss, grads) of a transformed ``f`` equals ``f(params, x, y)`` called eagerly afterwards."""
    loss, grads = result
    eager_loss, eager_grads = f(params, x, y)  # after the trace: nothing traced was kept by the loss
    assert_close(loss, eager_loss, xp=xp)
    for n in params:
        assert_close(grads[n], eager_grads[n], xp=xp)


@pytest.mark.backends(only=["jax"], reason="jax.jit and jax.vmap are JAX's own")
@pytest.mark.parametrize("batch", ["as arguments", "closed over"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_value_and_grad_under_a_users_jax_jit(xp, device, dtype, name, batch):
    """Closed over: concrete ``x``, ``y`` captured by the jitted function; the loss's own ops on them are traced."""
    jax = pytest.importorskip("jax")
    model, loss_fn, x, y = _setup(xp, device, dtype, name)
    params = model.named_parameters()
    f = pnn.value_and_grad(model, loss_fn)
    result = jax.jit(f)(params, x, y) if batch == "as arguments" else jax.jit(lambda p: f(p, x, y))(params)
    _assert_like_eager(xp, f, params, x, y, result)


@pytest.mark.backends(only=["jax"], reason="jax.jit and jax.vmap are JAX's own")
@pytest.mark.parametrize("name", list(LOSSES))
def test_per_example_gradients_with_jax_vmap(xp, device, dtype, name):
    jax = pytest.importorskip("jax")
    model, loss_fn, x, y = _setup(xp, device, dtype, name)
    params = model.named_parameters()
    f = pnn.value_and_grad(model, loss_fn)
    losses, grads = jax.vmap(lambda p, xi, yi: f(p, xi[None], yi[None]), in_axes=(None, 0, 0))(params, x, y)
    assert losses.shape == (ROWS,)
    for row in range(ROWS):
        if name == "cross-entropy-ignored" and int(y[row]) == -100:
            continue  # one ignored example: the eager mean over nothing is NaN, like torch's
        loss, row_grads = f(params, x[row : row + 1], y[row : row + 1])
        assert_close(losses[row], loss, xp=xp)
        for n in params:
            assert_close(grads[n][row], row_grads[n], xp=xp)


@pytest.mark.backends(only=["jax"], reason="jax.jit and jax.vmap are JAX's own")
@pytest.mark.parametrize("name", ["cross-entropy", "mse"])
def test_an_ensemble_of_parameter_sets_with_jax_vmap(xp, device, dtype, name):
    jax = pytest.importorskip("jax")
    model, loss_fn, x, y = _setup(xp, device, dtype, name)
    params = model.named_parameters()
    members = [params, {n: p * 0.5 for n, p in params.items()}, {n: -p for n, p in params.items()}]
    stacked = {n: xp.stack([m[n] for m in members]) for n in params}
    f = pnn.value_and_grad(model, loss_fn)
    ensemble = jax.vmap(f, in_axes=(0, None, None))  # the batch stays concrete: only the parameters are traced
    outputs = jax.vmap(lambda p: pnn.functional_call(model, p, x))(stacked)
    for losses, grads in (ensemble(stacked, x, y), jax.jit(ensemble)(stacked, x, y)):
        for i, member in enumerate(members):
            loss, member_grads = f(member, x, y)
            assert_close(losses[i], loss, xp=xp)
            assert_close(outputs[i], pnn.functional_call(model, member, x), xp=xp)
            for n in params:
                assert_close(grads[n][i], member_grads[n], xp=xp)


OPTIMIZERS = {
    "sgd-momentum": lambda m: pnn.SGD(m, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda m: pnn.Adam(m, lr=0.01, amsgrad=True),
    "rmsprop-centered": lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda m: pnn.Adagrad(m, lr=0.1, lr_decay=0.01),
}


@pytest.mark.backends(only=["jax"], reason="jax.jit and jax.vmap are JAX's own")
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_an_ensemble_trains_under_jax_jit_of_jax_vmap(xp, device, dtype, optimizer):
    """Two training steps of two parameter sets at once (loss, gradients and optimizer ``update``), the batch
    closed over, against each member's eager steps."""
    jax = pytest.importorskip("jax")
    model, loss_fn, x, y = _setup(xp, device, dtype, "cross-entropy")
    params = model.named_parameters()
    opt = OPTIMIZERS[optimizer](model)
    f = pnn.value_and_grad(model, loss_fn)
    members = [params, {n: p * 0.5 for n, p in params.items()}]

    def step(p, state):
        _, grads = f(p, x, y)
        return opt.update(p, grads, state)

    stacked = jax.tree_util.tree_map(lambda *leaves: xp.stack(leaves), *members)
    states = jax.tree_util.tree_map(lambda *leaves: xp.stack(leaves), *(opt.init(m) for m in members))
    train = jax.jit(jax.vmap(step))
    for _ in range(2):
        stacked, states = train(stacked, states)
    for i, member in enumerate(members):
        state = opt.init(member)
        for _ in range(2):
            member, state = step(member, state)
        for n in params:
            assert_close(stacked[n][i], member[n], xp=xp)


@pytest.mark.backends(only=["torch"], reason="torch.compile is torch's own")
@pytest.mark.parametrize("name", ["cross-entropy", "cross-entropy-ignored", "mse"])
def test_value_and_grad_under_torch_compile(xp, device, dtype, name):
    """``aot_eager``: TorchDynamo's capture and AOTAutograd's tracing, without inductor's C++ build (~15 s here).

    Values are not read under ``torch.compile``: the class-index range is not checked (ignored entries are masked)."""
    torch = pytest.importorskip("torch")
    model, loss_fn, x, y = _setup(xp, device, dtype, name)
    params = model.named_parameters()
    f = pnn.value_and_grad(model, loss_fn)
    _assert_like_eager(xp, f, params, x, y, torch.compile(f, backend="aot_eager")(params, x, y))


def _deeper_model(xp, device, dtype) -> pnn.Sequential:
    return pnn.Sequential(
        pnn.Linear(2, 8, xp=xp, device=device, dtype=dtype, seed=0),
        pnn.Tanh(),
        pnn.Linear(8, 8, xp=xp, device=device, dtype=dtype, seed=1),
        pnn.ReLU(),
        pnn.Linear(8, 3, xp=xp, device=device, dtype=dtype, seed=2),
    )


def _unchecked(model, loss_fn):
    """``f(params, x, y) -> (loss, grads)`` by the unchecked core ``train_step`` runs (train mode, no key)."""
    core = loss_and_grads_fn(model, loss_fn, validate=False)

    def f(params, x, y):
        loss, grads, _ = core(params, x, y, True, None)
        return loss, grads

    return f


@pytest.mark.backends(only=["torch"], reason="torch.compile is torch's own")
@pytest.mark.parametrize("name", ["mse", "cross-entropy", "cross-entropy-probabilities", "bce-with-logits"])
def test_value_and_grad_compiles_to_one_graph(xp, device, dtype, name):
    """``fullgraph=True``: any graph break portable_nn causes (a ``ContextVar`` read, ``importlib``, a host read of a
    value) is an error. Both the checked ``value_and_grad`` and the unchecked form ``train_step`` runs."""
    torch = pytest.importorskip("torch")
    _, loss_fn, x, y = _setup(xp, device, dtype, name)
    model = _deeper_model(xp, device, dtype)
    params = model.named_parameters()
    for f in (pnn.value_and_grad(model, loss_fn), _unchecked(model, loss_fn)):
        torch._dynamo.reset()
        _assert_like_eager(xp, f, params, x, y, torch.compile(f, fullgraph=True, backend="aot_eager")(params, x, y))


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_builtin_loss_unchecked_gives_the_checked_numbers(xp, device, dtype, name):
    """``loss_and_grads_fn(..., validate=False)`` hands the call to a built-in loss (its ``_compute``): same numbers."""
    model, loss_fn, x, y = _setup(xp, device, dtype, name)
    params = model.named_parameters()
    _assert_like_eager(xp, pnn.value_and_grad(model, loss_fn), params, x, y, _unchecked(model, loss_fn)(params, x, y))


def test_unchecked_still_checks_the_class_range_where_values_are_readable(xp, device, dtype):
    """UNCHECKED skips the checks of a validated signature, not the values of a new batch (eager ``train_step``)."""
    model, loss_fn, x, _ = _setup(xp, device, dtype, "cross-entropy")
    bad = _from_host_int(np.array([0, 1, 2, 3, 0, 1]), xp, device)
    with pytest.raises(ArgumentError, match=r"class indices must be in \[0, 3\)"):
        _unchecked(model, loss_fn)(model.named_parameters(), x, bad)


def test_a_loss_subclass_with_its_own_call_is_called(xp, device, dtype):
    """A :class:`~portable_nn.losses.Loss` subclass that defines ``__call__`` is a user's loss: called as written."""
    calls = []

    class Halved(pnn.MSELoss):
        def __call__(self, pred, target, *, grad_output=None):
            calls.append(1)
            loss, grad = super().__call__(pred, target)
            return loss / 2, grad / 2

    model, _, x, y = _setup(xp, device, dtype, "mse")
    params = model.named_parameters()
    loss, _ = _unchecked(model, Halved())(params, x, y)
    expected, _ = pnn.value_and_grad(model, pnn.MSELoss())(params, x, y)
    assert calls == [1]
    assert_close(loss, expected / 2, xp=xp)
