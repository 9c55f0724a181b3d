"""The CLI's JAX run compiles little: one compiled evaluation, host-cast labels, and ``--compilation-cache DIR``.

Compilations are counted with ``jax.monitoring``'s ``backend_compile_duration`` event (one per
XLA program JAX compiles, eager operations included). The evaluation's numbers are compared with
the eager evaluation on every backend (on JAX: the compiled program against the eager ops).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import backend_name, from_host, resolve_device, resolve_dtype, resolve_namespace
from portable_nn.cli.data import device_labels, index_dtype
from portable_nn.cli.evaluation import Evaluator
from portable_nn.cli.model import build_mlp
from portable_nn.testing import assert_close, to_numpy

from .cli_support import TINY, assert_one_line_error, run_cli

_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_NO_JAX = "jax is not installed: the compiled evaluation and the compilation cache are JAX's"


@contextmanager
def _jax_events() -> Iterator[dict[str, list[str]]]:
    """``{"compiles": [program names], "cache_hits": [...]}`` recorded inside the block."""
    monitoring = pytest.importorskip("jax.monitoring", reason=_NO_JAX)
    seen: dict[str, list[str]] = {"compiles": [], "cache_hits": []}

    def on_duration(event: str, duration: float, **kwargs: object) -> None:
        if event == _COMPILE:
            seen["compiles"].append(str(kwargs.get("fun_name")))

    def on_event(event: str, **kwargs: object) -> None:
        if event == _CACHE_HIT:
            seen["cache_hits"].append(event)

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)
    try:
        yield seen
    finally:
        monitoring.unregister_event_duration_listener(on_duration)
        monitoring.unregister_event_listener(on_event)


def _jax_cpu():
    """(namespace, device, dtype) of JAX on its default device, float32; skips without jax."""
    pytest.importorskip("jax", reason=_NO_JAX)
    xp = resolve_namespace("jax")
    return xp, resolve_device(xp), resolve_dtype(xp, "float32")


def _problem(xp, device, dtype, rows=(24, 10), seed=0):
    """A small MLP and host data: (model, x_train, y_train, x_test) on ``xp``/``device``/``dtype``."""
    rng = np.random.default_rng(seed)
    model = build_mlp([2, 8, 8, 3], "tanh", xp=xp, device=device, dtype=dtype, seed=seed)
    x_train, x_test = rng.standard_normal((rows[0], 2)), rng.standard_normal((rows[1], 2))
    y_train = rng.integers(0, 3, rows[0])
    return (
        model,
        from_host(x_train, xp, device, dtype),
        device_labels(y_train, xp, device),
        from_host(x_test, xp, device, dtype),
    )


def test_compiled_evaluation_equals_the_eager_one(xp, device, dtype):
    model, x_train, y_train, x_test = _problem(xp, device, dtype)
    loss_fn = pnn.CrossEntropyLoss()
    compiled = Evaluator(model, loss_fn)
    eager = Evaluator(model, loss_fn, compile=False)
    assert compiled.compiled == (backend_name(xp) == "jax") and not eager.compiled
    loss, logits = compiled(x_train, y_train, x_test)
    eager_loss, eager_logits = eager(x_train, y_train, x_test)
    assert_close(logits, eager_logits, dtype=dtype)
    assert_close(loss, eager_loss, dtype=dtype)
    assert tuple(logits.shape) == (10, 3)
    with pnn.no_grad():  # what the CLI evaluated before: the model's own forward and the loss
        expected, _ = loss_fn(model(x_train), y_train)
    assert_close(loss, expected, dtype=dtype)


def test_evaluation_leaves_the_model_and_inputs_alone(xp, device, dtype):
    model, x_train, y_train, x_test = _problem(xp, device, dtype)
    before = {name: to_numpy(p) for name, p in model.named_parameters().items()}
    inputs = [to_numpy(a) for a in (x_train, y_train, x_test)]
    Evaluator(model, pnn.CrossEntropyLoss())(x_train, y_train, x_test)
    for name, p in model.named_parameters().items():
        np.testing.assert_array_equal(to_numpy(p), before[name])
    for held, now in zip(inputs, (x_train, y_train, x_test), strict=True):
        np.testing.assert_array_equal(to_numpy(now), held)


def test_labels_are_cast_on_the_host_to_the_index_dtype(xp, device):
    y = np.array([2, 0, 1, 1], dtype=np.int64)
    labels = device_labels(y, xp, device)
    assert labels.dtype == index_dtype(xp, device)
    np.testing.assert_array_equal(to_numpy(labels), y)


def test_jax_evaluation_compiles_once_and_not_again():
    model, x_train, y_train, x_test = _problem(*_jax_cpu())
    Evaluator(model, pnn.CrossEntropyLoss())(x_train, y_train, x_test)  # warms whatever a first JAX call compiles
    evaluator = Evaluator(model, pnn.CrossEntropyLoss())
    with _jax_events() as first:
        loss, _ = evaluator(x_train, y_train, x_test)
    assert first["compiles"] == ["jit(_pure_evaluation)"]
    # new parameter values, same shapes: no recompilation, and the new values are used (not baked in)
    model.set_parameters({name: p * 0.5 for name, p in model.named_parameters().items()})
    with _jax_events() as second:
        new_loss, _ = evaluator(x_train, y_train, x_test)
    assert second["compiles"] == []
    assert float(new_loss) != float(loss)
    eager_loss, _ = Evaluator(model, pnn.CrossEntropyLoss(), compile=False)(x_train, y_train, x_test)
    assert_close(new_loss, eager_loss, dtype="float32")


def test_jax_labels_and_batches_need_no_compilation():
    xp, device, dtype = _jax_cpu()
    rows = np.arange(7)
    with _jax_events() as seen:
        device_labels(np.arange(7) % 3, xp, device)
        from_host(np.ones((12, 2))[rows], xp, device, dtype)
    assert seen["compiles"] == []


def test_jax_evaluation_keeps_the_typed_errors():
    model, x_train, y_train, x_test = _problem(*_jax_cpu())
    evaluator = Evaluator(model, pnn.CrossEntropyLoss())
    with pytest.raises(pnn.errors.ShapeError):
        evaluator(x_train[:, :1], y_train, x_test)  # one feature, the model takes two
    with pytest.raises(pnn.errors.DTypeError):
        evaluator(x_train, y_train, x_test.astype("float16"))
    with pytest.raises(pnn.errors.ShapeError, match="class probabilities"):
        evaluator(x_train, x_train[:, 0], x_test)  # floating targets are probabilities: (rows, classes)


def test_compilation_cache_is_written_then_read(capsys, tmp_path):
    jax = pytest.importorskip("jax", reason=_NO_JAX)
    cache = tmp_path / "cache"
    before = jax.config.jax_compilation_cache_dir
    with _jax_events() as cold:
        code, out, err = run_cli(capsys, "--backend", "jax", *TINY, "--compilation-cache", str(cache))
    assert code == 0, out + err
    assert f"compilation cache: {cache}" in out
    assert os.listdir(cache), "no cache entries written"
    assert jax.config.jax_compilation_cache_dir == before  # the setting is the CLI's only while it runs
    with _jax_events() as warm:  # this process keeps eager ops compiled; the run's programs come from the cache
        code, out, err = run_cli(capsys, "--backend", "jax", *TINY, "--compilation-cache", str(cache))
    assert code == 0, out + err
    assert cold["cache_hits"] == []
    assert len(warm["cache_hits"]) >= 2  # the step and the evaluation at least
    assert "jit(_pure_evaluation)" in warm["compiles"]  # counted as compiled, served from the cache


def test_compilation_cache_is_a_note_without_a_compiling_run(capsys, tmp_path):
    cache = tmp_path / "cache"
    code, out, err = run_cli(capsys, "--backend", "numpy", *TINY, "--compilation-cache", str(cache))
    assert code == 0, out + err
    assert f"note: --compilation-cache {cache}: not used" in out
    assert not cache.exists()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda tmp: tmp / "file", "exists and is not a directory"),
        (lambda tmp: tmp / "missing" / "cache", "does not exist"),
        (lambda tmp: "", "expected a file path"),
    ],
)
def test_compilation_cache_argument_is_checked_before_training(capsys, tmp_path, make, match):
    (tmp_path / "file").write_text("not a folder")
    code, out, err = run_cli(capsys, "--backend", "numpy", *TINY, "--compilation-cache", str(make(tmp_path)))
    assert_one_line_error(code, err, match)
    assert "numpy/cpu" not in out + err  # nothing trained
