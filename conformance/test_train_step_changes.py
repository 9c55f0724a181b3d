"""``train_step`` under change: hyperparameters changed between steps, huge step counts, a moved model,
replaced parameters, a malformed ``loss_fn``, threads, many batch sizes.

Oracle: the eager loop ``loss_fn(model(x), y)``, ``zero_grad()``, ``backward``, ``step()`` on an
identical model and optimizer that see the same changes (on JAX the step is compiled, elsewhere
eager: both must hold the eager loop's values within the dtype's rounding).
"""

from __future__ import annotations

import gc
import math
import threading
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn._backend import backend_name, from_host, resolve_namespace
from portable_nn.testing import assert_close, to_numpy

from .test_train_step import _batch, _eager_loop_step, _from_host_int, _model

# The numbers each optimizer may change between steps (flags that add or drop buffers stay fixed).
_FACTORIES = {
    "sgd": lambda m: pnn.SGD(m, lr=0.05, momentum=0.9),
    "adam": lambda m: pnn.Adam(m, lr=0.01),
    "rmsprop": lambda m: pnn.RMSprop(m, lr=0.01, momentum=0.5),
    "adagrad": lambda m: pnn.Adagrad(m, lr=0.05, lr_decay=0.01),
}


def _sgd_change(draw):
    momentum = draw(st.sampled_from([0.0, 0.3, 0.9]))
    nesterov = momentum > 0 and draw(st.booleans())
    return {
        "lr": draw(st.floats(0.0, 0.1)),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5])),
        "weight_decay": draw(st.sampled_from([0.0, 0.01, 0.1])),
        "nesterov": nesterov,
        "maximize": draw(st.booleans()),
    }


def _adam_change(draw):
    return {
        "lr": draw(st.floats(0.0, 0.05)),
        "betas": (draw(st.floats(0.0, 0.95)), draw(st.sampled_from([0.9, 0.99, 0.999]))),
        "eps": draw(st.sampled_from([1e-8, 1e-3])),
        "weight_decay": draw(st.sampled_from([0.0, 0.01])),
        "maximize": draw(st.booleans()),
    }


def _rmsprop_change(draw):
    return {
        "lr": draw(st.floats(0.0, 0.02)),
        "alpha": draw(st.sampled_from([0.9, 0.99])),
        "momentum": draw(st.sampled_from([0.1, 0.5])),
        "weight_decay": draw(st.sampled_from([0.0, 0.01])),
    }


def _adagrad_change(draw):
    return {"lr": draw(st.floats(0.0, 0.1)), "lr_decay": draw(st.sampled_from([0.0, 0.1]))}


_CHANGES = {"sgd": _sgd_change, "adam": _adam_change, "rmsprop": _rmsprop_change, "adagrad": _adagrad_change}


@settings(max_examples=6)  # each example compiles new programs on JAX (~0.3 s): kept small
@given(data=st.data())
def test_hyperparameter_changes_between_steps_give_the_eager_weights(xp, device, dtype, data):
    """Random sequences of changes (every number, nesterov, maximize, a OneCycleLR cycling momentum/beta1)."""
    name = data.draw(st.sampled_from(sorted(_FACTORIES)), label="optimizer")
    schedule = name in ("sgd", "adam") and data.draw(st.booleans(), label="OneCycleLR")
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt, opt = _FACTORIES[name](reference), _FACTORIES[name](model)
    loss_fn = pnn.CrossEntropyLoss()
    step = pnn.train_step(model, loss_fn, opt)
    optimizers = (reference_opt, opt) if schedule else ()
    schedulers = [pnn.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=6) for o in optimizers]
    x, y = _batch(xp, device, dtype, 0, rows=8)
    for i in range(5):
        if not schedule and data.draw(st.booleans(), label=f"change before step {i}"):
            change = _CHANGES[name](data.draw)
            for o in (reference_opt, opt):
                o.param_groups[0].update(change)
        expected = _eager_loop_step(reference, reference_opt, loss_fn, x, y)
        assert_close(step(x, y), expected, xp=xp, msg=f"{name} loss at step {i}")
        for scheduler in schedulers:
            scheduler.step()
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, xp=xp, msg=f"{name} {n}")


def test_one_cycle_momentum_is_followed_by_a_compiled_step(xp, device, dtype):
    """The issue's case: OneCycleLR's default cycles SGD's momentum every step; one program, the eager weights."""
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt, opt = pnn.SGD(reference, 0.05, momentum=0.9), pnn.SGD(model, 0.05, momentum=0.9)
    schedulers = [pnn.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=12) for o in (reference_opt, opt)]
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), opt)
    x, y = _batch(xp, device, dtype, 1)
    for _ in range(12):
        _eager_loop_step(reference, reference_opt, pnn.CrossEntropyLoss(), x, y)
        step(x, y)
        for scheduler in schedulers:
            scheduler.step()
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, xp=xp, msg=n)
    if step.compiled:
        assert len({structure for structure, *_ in step._programs}) == 1  # momentum is a number, not a constant


@pytest.mark.parametrize("count", [2**31 - 2, 2**31, 2**40])
def test_a_step_count_past_int32_gives_the_eager_weights(xp, device, dtype, count):
    """Adam's bias corrections come from the host's integer step count: no int32 counter, no OverflowError."""
    loss_fn = pnn.CrossEntropyLoss()
    x, y = _batch(xp, device, dtype, 2)
    seed = _model(xp, device, dtype)
    seed_opt = pnn.Adam(seed, lr=0.01)
    _eager_loop_step(seed, seed_opt, loss_fn, x, y)
    state = {**seed_opt.state_dict(), "step": count}
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt, opt = pnn.Adam(reference, lr=0.01), pnn.Adam(model, lr=0.01)
    for o in (reference_opt, opt):
        o.load_state_dict(state)
    step = pnn.train_step(model, loss_fn, opt)
    for _ in range(3):
        _eager_loop_step(reference, reference_opt, loss_fn, x, y)
        step(x, y)
    assert opt.step_count == count + 3
    for n, p in reference.named_parameters().items():
        got = model.named_parameters()[n]
        assert np.isfinite(to_numpy(got)).all(), n
        assert_close(got, p, xp=xp, msg=n)


def test_a_replaced_parameter_of_the_wrong_shape_is_a_shape_error(xp, device, dtype):
    """Every parameter is checked (not only the first): the eager loop's ShapeError, nothing changed."""
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1, momentum=0.9))
    x, y = _batch(xp, device, dtype, 0)
    step(x, y)
    model[2].bias = from_host(np.zeros(1), xp, device, dtype)  # the layer has 3 outputs
    before = {n: id(p) for n, p in model.named_parameters().items()}
    with pytest.raises(pnn.ShapeError, match=r"2\.bias"):
        step(x, y)
    assert {n: id(p) for n, p in model.named_parameters().items()} == before
    assert tuple(model[2].bias.shape) == (1,) and step.optimizer.step_count == 1
    model[2].bias = from_host(np.zeros(3), xp, device, dtype)  # repaired: trains again
    step(x, y)
    assert step.optimizer.step_count == 2


def test_a_loss_fn_returning_one_value_is_a_typed_error(xp, device, dtype):
    model = _model(xp, device, dtype)
    cross_entropy = pnn.CrossEntropyLoss()
    for loss_fn in (lambda p, t: cross_entropy(p, t)[0], lambda p, t: (*cross_entropy(p, t), None)):
        step = pnn.train_step(model, loss_fn, pnn.SGD(model, lr=0.1))
        with pytest.raises(pnn.ArgumentTypeError, match=r"loss_fn must return a pair \(loss, dloss/dprediction\)"):
            step(*_batch(xp, device, dtype, 0))
        assert step.optimizer.step_count == 0


def test_a_step_follows_the_model_moved_to_another_backend(xp, device, dtype):
    """After ``model.to(numpy)`` the step trains on NumPy (eagerly), equal to the eager loop that moved too."""
    numpy_xp = resolve_namespace("numpy")
    if pnn._backend.dtype_name(xp, dtype) not in pnn._backend.supported_dtypes(numpy_xp):
        pytest.skip("numpy lacks this dtype")  # pragma: no cover - bfloat16 is not in the default matrix
    loss_fn = pnn.CrossEntropyLoss()
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt, opt = pnn.Adam(reference, lr=0.01), pnn.Adam(model, lr=0.01)
    step = pnn.train_step(model, loss_fn, opt)
    x, y = _batch(xp, device, dtype, 0)
    _eager_loop_step(reference, reference_opt, loss_fn, x, y)
    step(x, y)
    for m in (reference, model):
        m.to(xp=numpy_xp)
    x_host, y_host = to_numpy(x), to_numpy(y)
    if backend_name(xp) != "numpy":
        with pytest.raises(pnn.NamespaceError):  # a batch of the old backend: the eager loop's typed error
            step(x, y)
    for _ in range(2):
        _eager_loop_step(reference, reference_opt, loss_fn, x_host, y_host)
        step(x_host, y_host)
    assert not step.compiled and opt.step_count == 3
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, msg=n)


def test_two_threads_on_one_step_lose_no_update(xp, device, dtype):
    """Calls are serialized: 2 threads x 10 steps on one batch are the eager loop's 20 steps."""
    loss_fn = pnn.CrossEntropyLoss()
    reference, model = _model(xp, device, dtype), _model(xp, device, dtype)
    reference_opt, opt = pnn.SGD(reference, 0.05, momentum=0.9), pnn.SGD(model, 0.05, momentum=0.9)
    step = pnn.train_step(model, loss_fn, opt)
    x, y = _batch(xp, device, dtype, 3)
    step(x, y)  # validated and compiled before the threads start
    errors: list[BaseException] = []

    def train() -> None:
        try:
            for _ in range(10):
                step(x, y)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for _ in range(21):
        _eager_loop_step(reference, reference_opt, loss_fn, x, y)
    assert opt.step_count == 21
    for n, p in reference.named_parameters().items():
        assert_close(model.named_parameters()[n], p, xp=xp, msg=n)


@pytest.mark.backends(only=["jax"], reason="compiled programs are JAX's")
def test_many_batch_sizes_keep_a_bounded_number_of_programs(xp, device, dtype, monkeypatch):
    """Each batch size compiles a program; beyond MAX_PROGRAMS the least recently used is dropped (and freed once
    the process-wide table of shared programs, bounded too, dropped it: made small here)."""
    from portable_nn.training import program_cache
    from portable_nn.training.step import MAX_PROGRAMS as bound

    monkeypatch.setattr(program_cache, "MAX_SHARED_PROGRAMS", 2)
    model = _model(xp, device, dtype)
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), pnn.SGD(model, lr=0.1))
    x, _ = _batch(xp, device, dtype, 0, rows=bound + 4)
    first_program = None
    for rows in range(1, bound + 4):
        step(x[:rows, :], _from_host_int(np.arange(rows) % 3, xp, device))
        if first_program is None:
            first_program = weakref.ref(next(iter(step._programs.values())))
    assert len(step._programs) == bound
    assert len(program_cache._programs) <= 2
    gc.collect()
    assert first_program() is None
    assert math.isfinite(float(step(x[:1, :], _from_host_int(np.zeros(1, np.int64), xp, device))))


def test_a_step_validates_once_per_signature(xp, device, dtype):
    """Validation (which checks every gradient against its parameter) runs for a new signature or replaced
    parameters only, not on every step (on JAX the stored parameters come back in another key order)."""
    model = _model(xp, device, dtype)
    opt = pnn.Adam(model, lr=0.01, param_groups=[{"params": lambda n: n.endswith("bias"), "lr": 0.02}])
    step = pnn.train_step(model, pnn.CrossEntropyLoss(), opt)
    validations = []
    check = opt.check_gradients
    opt.check_gradients = lambda params, grads: validations.append(1) or check(params, grads)
    x, y = _batch(xp, device, dtype, 0)
    for _ in range(3):
        step(x, y)
    assert len(validations) == 1
    model.load_state_dict(model.state_dict())  # replaced (same values): validated again, once
    for _ in range(2):
        step(x, y)
    assert len(validations) == 2
