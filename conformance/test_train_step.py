"""``train_step`` (eager and compiled), ``functional_call`` and ``value_and_grad`` on every backend × device × dtype.

Oracle: the eager loop ``loss_fn(model(x), y)``, ``zero_grad()``, ``backward``, ``step()`` on an
identical model; after the steps both models and optimizers must hold the same values.
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import backend_name, from_host, is_lazy
from portable_nn.testing import assert_close, to_numpy

from .helpers import mlp

OPTIMIZERS = {
    "sgd-momentum": lambda m: pnn.SGD(m, lr=0.04, momentum=0.9),
    "adam-groups": lambda m: pnn.Adam(m, lr=0.01, param_groups=[{"params": lambda n: n.endswith("bias"), "lr": 0.02}]),
}


def _model(xp, device, dtype) -> pnn.Sequential:
    return mlp((2, 8, 3), xp, device, dtype, seed=0)


def _batch(xp, device, dtype, seed: int, rows: int = 12):
    rng = np.random.default_rng(seed)
    x = from_host(rng.standard_normal((rows, 2)), xp, device, dtype)
    return x, _from_host_int(rng.integers(0, 3, rows), xp, device)


def _from_host_int(labels, xp, device):
    return xp.asarray(labels, device=device) if backend_name(xp) not in ("numpy", "dask") else xp.asarray(labels)


def compile_modes(xp) -> tuple[str | bool, ...]:
    """``compile=`` values that differ on this backend: ("auto", False) on JAX; elsewhere "auto" is the eager step,
    which ``False`` runs already."""
    return ("auto", False) if backend_name(xp) == "jax" else (False,)


def _eager_loop_step(model, optimizer, loss_fn, x, y):
    loss, grad = loss_fn(model(x), y)
    optimizer.zero_grad()
    model.backward(grad)
    optimizer.step()
    return loss


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_step_matches_the_eager_loop(xp, device, dtype, name):
    steps = 8 if is_lazy(xp) else 100  # Dask: every step computes a graph (~50 ms here)
    loss_fn = pnn.CrossEntropyLoss()
    reference = _model(xp, device, dtype)
    reference_opt = OPTIMIZERS[name](reference)
    runs = {}
    for compile_ in compile_modes(xp):
        model = _model(xp, device, dtype)
        step = pnn.train_step(model, loss_fn, OPTIMIZERS[name](model), compile=compile_)
        runs[compile_] = (model, step)
    model = _model(xp, device, dtype)
    assert pnn.train_step(model, loss_fn, OPTIMIZERS[name](model)).compiled == (backend_name(xp) == "jax")
    batches = [_batch(xp, device, dtype, seed) for seed in range(4)]
    for i in range(steps):
        x, y = batches[i % len(batches)]
        expected = _eager_loop_step(reference, reference_opt, loss_fn, x, y)
        for compile_, (_, step) in runs.items():
            loss = step(x, y)
            if i % 25 == 0 or i == steps - 1:
                assert_close(loss, expected, xp=xp, msg=f"compile={compile_} loss at step {i}")
    for compile_, (model, step) in runs.items():
        exact = compile_ is False  # the same code as the eager loop: the same bits
        for n, p in reference.named_parameters().items():
            got = model.named_parameters()[n]
            assert_close(got, p, xp=xp, msg=f"compile={compile_} {n}", **({"rtol": 0, "atol": 0} if exact else {}))
        assert all(g is None for g in model.named_grads().values())
        assert step.optimizer.step_count == steps
        theirs = reference_opt.state_dict()
        ours = step.optimizer.state_dict()
        assert ours["param_groups"] == theirs["param_groups"]
        for n, buffers in theirs["state"].items():
            for key, value in buffers.items():
                assert_close(ours["state"][n][key], value, xp=xp, msg=f"compile={compile_} {n} {key}")


def test_train_step_validates_each_new_signature_with_typed_errors(xp, device, dtype):
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1, momentum=0.9))
    x, y = _batch(xp, device, dtype, 0)
    step(x, y)
    before = (model.named_parameters(), step.optimizer.state_dict())
    wrong_features = from_host(np.ones((12, 3)), xp, device, dtype)
    other_dtype = "float64" if dtype == model.xp.float32 else "float32"
    bad = [
        ((wrong_features, y), pnn.ShapeError),
        ((np.ones((12, 2), np.float32) if backend_name(xp) != "numpy" else [[0.0, 0.0]], y), pnn.NamespaceError),
        ((x[:7, :], _from_host_int(np.full(7, 7), xp, device)), pnn.ArgumentError),  # class 7 of 3, new signature
        ((x, _from_host_int(np.zeros(5, dtype=np.int64), xp, device)), pnn.ShapeError),
    ]
    if not step.compiled:  # eager steps check the values of targets every call; see train_step's docs
        bad.append(((x, _from_host_int(np.full(12, 7), xp, device)), pnn.ArgumentError))
    if other_dtype in pnn._backend.supported_dtypes(xp, device):
        bad.append(((from_host(np.ones((12, 2)), xp, device, other_dtype), y), pnn.DTypeError))
    for args, error in bad:
        with pytest.raises(error):
            step(*args)
        after = (model.named_parameters(), step.optimizer.state_dict())
        assert {n: id(p) for n, p in after[0].items()} == {n: id(p) for n, p in before[0].items()}
        assert after[1]["step"] == before[1]["step"] == 1
    step(*_batch(xp, device, dtype, 1, rows=5))  # a new, valid signature
    assert step.optimizer.step_count == 2


def test_compile_argument(xp, device, dtype):
    model = _model(xp, device, dtype)
    opt = pnn.SGD(model, lr=0.1)
    if backend_name(xp) == "jax":
        assert pnn.train_step(model, pnn.CrossEntropyLoss(), opt, compile=True).compiled
    else:
        with pytest.raises(pnn.ArgumentError, match=f"compile=True: portable_nn has no compiler for the {xp_name(xp)}"):
            pnn.train_step(model, pnn.CrossEntropyLoss(), opt, compile=True)
    assert not pnn.train_step(model, pnn.CrossEntropyLoss(), opt, compile=False).compiled
    with pytest.raises(pnn.ArgumentError, match="compile must be"):
        pnn.train_step(model, pnn.CrossEntropyLoss(), opt, compile="yes")
    with pytest.raises(pnn.ArgumentError, match="another module"):
        pnn.train_step(_model(xp, device, dtype), pnn.CrossEntropyLoss(), opt)


def xp_name(xp) -> str:
    return backend_name(xp)


def test_functional_call_and_value_and_grad_leave_the_model_alone(xp, device, dtype):
    model = _model(xp, device, dtype)
    x, y = _batch(xp, device, dtype, 0)
    params = {n: p * 0.5 for n, p in model.named_parameters().items()}
    held = model.named_parameters()
    out = pnn.functional_call(model, params, x)
    loss, grads = pnn.value_and_grad(model, pnn.CrossEntropyLoss())(params, x, y)
    assert model.named_parameters() == held and all(g is None for g in model.named_grads().values())
    with pytest.raises(pnn.CallOrderError):  # the functional forward kept nothing on the model
        model.backward(out)
    other = _model(xp, device, dtype)
    other.set_parameters(params)
    expected_loss, grad = pnn.CrossEntropyLoss()(other(x), y)
    other.backward(grad)
    assert_close(out, other(x), rtol=0, atol=0)
    assert_close(loss, expected_loss, rtol=0, atol=0)
    for n, g in other.named_grads().items():
        assert_close(grads[n], g, rtol=0, atol=0)
    with pytest.raises(pnn.UnknownParameterError):
        pnn.functional_call(model, {**params, "5.weight": params["0.weight"]}, x)
    with pytest.raises(pnn.ArgumentError, match="missing parameters"):
        pnn.functional_call(model, {"0.weight": params["0.weight"]}, x)
    with pytest.raises(pnn.ShapeError):
        pnn.functional_call(model, {**params, "0.bias": params["2.bias"]}, x)


@pytest.mark.backends(only=["jax"], reason="jax.jit is JAX's own")
def test_functional_call_and_value_and_grad_under_jax_jit(xp, device, dtype):
    jax = pytest.importorskip("jax")
    model = _model(xp, device, dtype)
    x, _ = _batch(xp, device, dtype, 0)
    params = model.named_parameters()
    jitted = jax.jit(lambda p, x: pnn.functional_call(model, p, x))
    assert_close(jitted(params, x), model(x), xp=xp)
    f = pnn.value_and_grad(model, pnn.MSELoss())
    target = model(x) * 0.5
    loss, grads = jax.jit(f)(params, x, target)
    eager_loss, eager_grads = f(params, x, target)
    assert_close(loss, eager_loss, xp=xp)
    for n in params:
        assert_close(grads[n], eager_grads[n], xp=xp)


@pytest.mark.backends(only=["jax"], reason="buffer donation is jax.jit's")
def test_compiled_step_donates_only_private_buffers_and_follows_lr_changes(xp, device, dtype):
    model, reference = _model(xp, device, dtype), _model(xp, device, dtype)
    opt, reference_opt = pnn.SGD(model, lr=0.1, momentum=0.9), pnn.SGD(reference, lr=0.1, momentum=0.9)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), opt)
    x, y = _batch(xp, device, dtype, 0)
    for i in range(4):
        held = (model.state_dict(), opt.state_dict())  # a user keeps parameters and buffers
        if i == 2:
            opt.param_groups[0]["lr"] = reference_opt.param_groups[0]["lr"] = 0.05  # a scheduler
        step(x, y)
        _eager_loop_step(reference, reference_opt, pnn.CrossEntropyLoss(), x, y)
        for array in [*held[0].values(), *(b for bs in held[1]["state"].values() for b in bs.values())]:
            assert not array.is_deleted()
            to_numpy(array)
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, xp=xp, msg=n)
    assert len({structure for structure, *_ in step._programs}) == 1  # lr is an argument, not a constant
    # fresh buffers (init, or made by the last compiled step) are donated; those state_dict() handed out never
    assert {donated for _, _, donated, *_ in step._programs} == {False, True}


def _case(name, xp, device, dtype):
    """(loss_fn, optimizer factory, targets(x_rows) -> target array) for one loss/optimizer combination."""
    rng = np.random.default_rng(5)
    weight = from_host(rng.uniform(0.5, 2.0, 3), xp, device, dtype)

    def labels(rows):
        return _from_host_int(rng.integers(0, 3, rows), xp, device)

    def floats(rows):
        return from_host(rng.standard_normal((rows, 3)), xp, device, dtype)

    def probabilities(rows):
        p = rng.uniform(0.1, 1.0, (rows, 3))
        return from_host(p / p.sum(axis=1, keepdims=True), xp, device, dtype)

    def bits(rows):
        return from_host(rng.integers(0, 2, (rows, 3)).astype(float), xp, device, dtype)

    cases = {
        "ce-options/rmsprop": (
            pnn.CrossEntropyLoss(weight, ignore_index=1, label_smoothing=0.1),
            lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5, centered=True),
            labels,
        ),
        "ce-probabilities/adagrad": (
            pnn.CrossEntropyLoss(label_smoothing=0.2),
            lambda m: pnn.Adagrad(m, 0.05),
            probabilities,
        ),
        "nll-sum/sgd-nesterov": (
            pnn.NLLLoss(weight, reduction="sum"),
            lambda m: pnn.SGD(m, 0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
            labels,
        ),
        "bce/adam-amsgrad-maximize": (
            pnn.BCEWithLogitsLoss(pos_weight=weight),
            lambda m: pnn.Adam(m, lr=0.01, amsgrad=True, maximize=True),
            bits,
        ),
        "huber/adamw": (pnn.HuberLoss(delta=0.5), lambda m: pnn.AdamW(m, lr=0.01), floats),
        "smooth-l1-sum/sgd-dampening": (
            pnn.SmoothL1Loss(beta=0.5, reduction="sum"),
            lambda m: pnn.SGD(m, 0.01, momentum=0.8, dampening=0.3),
            floats,
        ),
        "l1/sgd": (pnn.L1Loss(), lambda m: pnn.SGD(m, 0.05), floats),
        "mse/adam": (pnn.MSELoss(), lambda m: pnn.Adam(m, lr=0.02), floats),
    }
    return cases[name]


CASES = [
    "ce-options/rmsprop",
    "ce-probabilities/adagrad",
    "nll-sum/sgd-nesterov",
    "bce/adam-amsgrad-maximize",
    "huber/adamw",
    "smooth-l1-sum/sgd-dampening",
    "l1/sgd",
    "mse/adam",
]


@pytest.mark.parametrize("case", CASES)
def test_every_loss_and_optimizer_runs_inside_train_step(xp, device, dtype, case):
    """Eager and compiled train_step hold what the eager loop holds, for each loss and optimizer with options,
    with a learning rate changed between steps as a schedule would."""
    loss_fn, make_optimizer, targets = _case(case, xp, device, dtype)
    rows, steps = 6, 4
    batches = [(_batch(xp, device, dtype, seed, rows)[0], targets(rows)) for seed in range(2)]
    reference = _model(xp, device, dtype)
    reference_opt = make_optimizer(reference)
    runs = []
    for compile_ in compile_modes(xp):
        model = _model(xp, device, dtype)
        runs.append((compile_, model, pnn.train_step(model, loss_fn, make_optimizer(model), compile=compile_)))
    for i in range(steps):
        x, y = batches[i % 2]
        if i == 2:  # a schedule's write between steps
            for opt in [reference_opt, *(step.optimizer for _, _, step in runs)]:
                opt.param_groups[0]["lr"] *= 0.5
        expected = _eager_loop_step(reference, reference_opt, loss_fn, x, y)
        for compile_, _, step in runs:
            assert_close(step(x, y), expected, xp=xp, msg=f"compile={compile_} loss at step {i}")
    for compile_, model, _ in runs:
        for n, p in reference.named_parameters().items():
            assert_close(model.named_parameters()[n], p, xp=xp, msg=f"{case} compile={compile_} {n}")


IN_PLACE_OPTIMIZERS = {
    "sgd-momentum": lambda m: pnn.SGD(m, lr=0.04, momentum=0.9),
    "sgd-nesterov-dampening-decay": lambda m: pnn.SGD(m, 0.01, momentum=0.8, nesterov=True, weight_decay=0.01),
    "adam-amsgrad": lambda m: pnn.Adam(m, lr=0.01, amsgrad=True),
    "adamw-foreach-off": lambda m: pnn.AdamW(m, lr=0.01, foreach=False),
    "rmsprop-centered-momentum": lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda m: pnn.Adagrad(m, 0.05),
}


@pytest.mark.parametrize("name", list(IN_PLACE_OPTIMIZERS))
def test_eager_train_step_updates_only_private_buffers_in_place(xp, device, dtype, name):
    """Buffers the optimizer alone holds are updated in place; what state_dict() handed out never changes.

    Oracle: the eager loop (out of place everywhere) on an identical model.
    """
    loss_fn = pnn.CrossEntropyLoss()
    model, reference = _model(xp, device, dtype), _model(xp, device, dtype)
    opt, reference_opt = IN_PLACE_OPTIMIZERS[name](model), IN_PLACE_OPTIMIZERS[name](reference)
    step = pnn.train_step(model, loss_fn, opt, compile=False)
    held = []
    for i in range(6):
        x, y = _batch(xp, device, dtype, i)
        if i in (1, 3):  # a user keeps parameters and buffers mid-run: later steps must not write to them
            arrays = [
                *model.state_dict().values(),
                *(b for bs in opt.state_dict()["state"].values() for b in bs.values()),
            ]
            held.append([(array, to_numpy(array).copy()) for array in arrays])
        before = {n: dict(bs) for n, bs in opt._state.items()}
        step(x, y)
        _eager_loop_step(reference, reference_opt, loss_fn, x, y)
        generic = opt._fast_path(xp) is None  # torch's foreach SGD makes fresh buffers (one fused call is faster)
        if i in (4, 5) and generic and backend_name(xp) not in ("jax", "dask"):  # mutable arrays: updated in place
            assert all(any(opt._state[n][k] is b for k, b in bs.items()) for n, bs in before.items())
    for arrays in held:
        for array, values in arrays:
            np.testing.assert_array_equal(to_numpy(array), values)
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, xp=xp, msg=n)
    for n, buffers in reference_opt.state_dict()["state"].items():
        for key, value in buffers.items():
            assert_close(opt.state_dict()["state"][n][key], value, xp=xp, msg=f"{n}.{key}")
