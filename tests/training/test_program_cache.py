"""Compiled training programs are shared by structure (issue 25 item 5), and ``pnn.compilation_cache``.

The key (:func:`portable_nn.training.program_cache.structure_key`) is checked on every backend; sharing
itself is JAX's (the only backend that compiles a step). Compilations are counted with
``jax.monitoring``'s ``backend_compile_duration`` event, as in tests/cli/test_cli_jax_compiles.py.
"""

from __future__ import annotations

import itertools
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy's import: scikit-learn's array-API dispatch needs it

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import from_host, resolve_device, resolve_dtype, resolve_namespace
from portable_nn.testing import assert_close, to_numpy
from portable_nn.training.program_cache import structure_key

_COMPILE = "/jax/core/compile/backend_compile_duration"
_NO_JAX = "jax is not installed: only JAX compiles a training step"


def _mlp(xp, device, dtype, sizes=(2, 8, 3), seed=0):
    layers = []
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if index:
            layers.append(pnn.Tanh())
        layers.append(pnn.Linear(fan_in, fan_out, xp=xp, device=device, dtype=dtype, seed=seed + index))
    return pnn.Sequential(*layers)


def _key(model, loss_fn):
    return structure_key(model, loss_fn, pnn.SGD(model, lr=0.1))


def test_key_shares_weights_not_configs(xp, device, dtype):
    a, b = _mlp(xp, device, dtype, seed=0), _mlp(xp, device, dtype, seed=5)  # same architecture, other weights
    loss = pnn.CrossEntropyLoss()
    assert _key(a, loss) is not None
    before = _key(a, loss)
    loss(a(from_host(np.ones((2, 2)), xp, device, dtype)), from_host(np.array([0, 2]), xp, device, "int32"))
    assert _key(a, loss) == before  # what an eager call caches on the loss (arange(C)) is no option
    assert _key(a, loss) == _key(b, pnn.CrossEntropyLoss())
    assert _key(a, loss) != _key(_mlp(xp, device, dtype, sizes=(2, 9, 3)), loss)  # another width
    assert _key(a, loss) != _key(_mlp(xp, device, dtype, sizes=(2, 8, 8, 3)), loss)  # another depth
    relu = pnn.Sequential(a[0], pnn.ReLU(), a[2])
    assert _key(a, loss) != _key(relu, loss)  # another activation
    assert _key(a, loss) != _key(a, pnn.CrossEntropyLoss(reduction="sum"))  # loss options
    assert _key(a, loss) != _key(a, pnn.CrossEntropyLoss(ignore_index=1))
    assert _key(a, loss) != _key(a, pnn.MSELoss())  # loss class
    adam = structure_key(a, loss, pnn.Adam(a, lr=0.1))
    assert adam is not None and adam != _key(a, loss)  # optimizer class


def test_key_refuses_what_is_not_a_structure(xp, device, dtype):
    model = _mlp(xp, device, dtype)
    weight = from_host(np.array([1.0, 2.0, 3.0]), xp, device, dtype)
    assert _key(model, pnn.CrossEntropyLoss(weight=weight)) is None  # an array constant: never shared
    assert _key(model, lambda prediction, target: pnn.MSELoss()(prediction, target)) is None  # a user callable

    class Unregistered(pnn.Module):
        def functional_forward(self, params, x, call):  # pragma: no cover - never called
            return x, None

    assert _key(pnn.Sequential(model, Unregistered(xp=xp, device=device, dtype=dtype)), pnn.MSELoss()) is None


def _jax():
    pytest.importorskip("jax", reason=_NO_JAX)
    xp = resolve_namespace("jax")
    return xp, resolve_device(xp), resolve_dtype(xp, "float32")


def _count_compilations():
    monitoring = pytest.importorskip("jax.monitoring", reason=_NO_JAX)
    seen: list[str] = []

    def on_duration(event: str, duration: float, **kwargs: object) -> None:
        if event == _COMPILE:
            seen.append(str(kwargs.get("fun_name")))

    monitoring.register_event_duration_secs_listener(on_duration)
    return seen, lambda: monitoring.unregister_event_duration_listener(on_duration)


def test_two_models_of_one_architecture_share_one_program():
    xp, device, dtype = _jax()
    rng = np.random.default_rng(0)
    x = from_host(rng.standard_normal((6, 2)), xp, device, dtype)
    y = from_host(rng.integers(0, 3, 6), xp, device, "int32")
    models = [_mlp(xp, device, dtype, seed=seed) for seed in (11, 12)]
    eager_models = [_mlp(xp, device, dtype, seed=seed) for seed in (11, 12)]
    steps = [pnn.train_step(m, pnn.CrossEntropyLoss(), pnn.SGD(m, lr=0.1, momentum=0.9)) for m in models]
    eager = [
        pnn.train_step(m, pnn.CrossEntropyLoss(), pnn.SGD(m, lr=0.1, momentum=0.9), compile=False) for m in eager_models
    ]
    steps[0](x, y)  # compiles the program
    seen, stop = _count_compilations()
    try:
        losses = [steps[1](x, y), steps[1](x, y)]
    finally:
        stop()
    assert seen == []
    (first,), (second,) = (list(s._programs.values()) for s in steps)
    assert first is second
    eager_losses = [eager[1](x, y), eager[1](x, y)]
    eager[0](x, y)
    for got, expected in zip(losses, eager_losses, strict=True):
        assert_close(got, expected, dtype="float32")
    for model, reference in zip(models, eager_models, strict=True):  # each model trained with its own weights
        for name, p in model.named_parameters().items():
            assert_close(p, reference.named_parameters()[name], dtype="float32")
    assert not np.allclose(to_numpy(models[0][0].weight), to_numpy(models[1][0].weight))


def test_a_loss_with_class_weights_keeps_its_own_program():
    xp, device, dtype = _jax()
    x = from_host(np.ones((4, 2)), xp, device, dtype)
    y = from_host(np.array([0, 1, 2, 1]), xp, device, "int32")
    losses = []
    for weight in ([1.0, 1.0, 1.0], [1.0, 5.0, 0.5]):
        model = _mlp(xp, device, dtype)
        loss_fn = pnn.CrossEntropyLoss(weight=from_host(np.array(weight), xp, device, dtype))
        losses.append(float(pnn.train_step(model, loss_fn, pnn.SGD(model, lr=0.1))(x, y)))
        eager_model = _mlp(xp, device, dtype)
        expected, _ = loss_fn(eager_model(x), y)
        assert losses[-1] == pytest.approx(float(expected), rel=1e-5)
    assert losses[0] != losses[1]


def test_a_second_sklearn_fit_compiles_nothing():
    sklearn = pytest.importorskip("sklearn")
    from portable_nn.sklearn import MLPClassifier

    xp, device, dtype = _jax()
    rng = np.random.default_rng(0)
    X = from_host(rng.standard_normal((40, 3)), xp, device, dtype)
    y = from_host(rng.integers(0, 3, 40), xp, device, "int32")
    fitted = []
    with sklearn.config_context(array_api_dispatch=True):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
        seen, stop = _count_compilations()
        try:
            fitted.append(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=1).fit(X, y))
        finally:
            stop()
    assert seen == []
    assert fitted[0].n_iter_ == 3


def test_compilation_cache_is_public(tmp_path):
    folder = tmp_path / "cache"
    with pnn.compilation_cache(str(folder)):
        pass
    try:
        import jax
    except ImportError:
        assert not folder.exists()  # nothing compiles: nothing to cache
    else:
        before = jax.config.jax_compilation_cache_dir
        with pnn.compilation_cache(str(folder)):
            assert jax.config.jax_compilation_cache_dir == os.path.abspath(folder)
        assert jax.config.jax_compilation_cache_dir == before


def test_a_shared_program_traced_again_never_takes_a_changed_structure():
    jax = pytest.importorskip("jax", reason=_NO_JAX)
    from portable_nn.training.program_cache import clear_programs

    xp, device, dtype = _jax()
    x = from_host(np.ones((5, 2)), xp, device, dtype)
    y = from_host(np.array([0, 1, 2, 1, 0]), xp, device, "int32")
    first, second = _mlp(xp, device, dtype, seed=3), _mlp(xp, device, dtype, seed=4)
    first_opt = pnn.SGD(first, lr=0.1, momentum=0.9)
    pnn.train_step(first, pnn.CrossEntropyLoss(), first_opt)(x, y)  # traces the shared program from `first`
    step = pnn.train_step(second, pnn.CrossEntropyLoss(), pnn.SGD(second, lr=0.1, momentum=0.9))
    step(x, y)
    first_opt.param_groups[0]["nesterov"] = True  # another structure for the first model's optimizer
    jax.clear_caches()  # JAX traces again
    with pytest.raises(pnn.errors.ArgumentError, match="clear_programs"):
        step(x, y)
    clear_programs()
    fresh = pnn.train_step(second, pnn.CrossEntropyLoss(), pnn.SGD(second, lr=0.1, momentum=0.9))
    assert np.isfinite(float(fresh(x, y)))
