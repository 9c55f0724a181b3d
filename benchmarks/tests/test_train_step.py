"""Train-step rows: every variant computes the same training run (so the timings compare equal work)."""

from __future__ import annotations

from typing import Any

import pytest

import portable_nn as pnn
from benchmarks.bench.backends import backend_name
from benchmarks.bench.train_models import CE, MSE, HostData, MLPSpec
from benchmarks.bench.train_run import agreement, build_train_variants, reference_parameters, run_train
from benchmarks.bench.train_variants import EAGER, HAND, JAX_JIT_HAND, RAW, TORCH_NN_OPTIM, raw_variant
from portable_nn.testing import tolerance

TINY = {CE: MLPSpec("tiny", (3, 8, 8, 4), 6, CE, 0.04, 0.9), MSE: MLPSpec("tiny", (5, 8, 8, 3), 6, MSE, 0.04, 0.9)}
EXPECTED = {
    "numpy": {EAGER, HAND, RAW},
    "torch": {EAGER, HAND, RAW, TORCH_NN_OPTIM},
    "jax": {EAGER, RAW, JAX_JIT_HAND},
    "array_api_strict": {EAGER, RAW},
}


@pytest.mark.parametrize("loss", [CE, MSE])
def test_every_variant_computes_the_same_parameters(xp, loss):
    name, spec = backend_name(xp), TINY[loss]
    data = HostData.make(spec, seed=1)
    skipped: list[dict[str, str]] = []
    variants = build_train_variants(spec, data, [name], "cpu", "float32", skipped)
    if name == "dask":  # lazy: not timed, and the run says why
        assert variants == [] and "lazy" in skipped[0]["reason"]
        return
    assert {v.kind for v in variants} >= EXPECTED[name]
    reference = reference_parameters(spec, data)
    rtol, _ = tolerance("float32")
    for v in variants:
        assert agreement(v, data.flat(), reference) <= rtol, v.name


def test_the_check_catches_a_different_step():
    spec = TINY[CE]
    data = HostData.make(spec)
    other = MLPSpec(spec.name, spec.sizes, spec.batch, spec.loss, spec.lr, momentum=0.0)  # no momentum
    assert (
        agreement(raw_variant("numpy", "cpu", "float32", other, data), data.flat(), reference_parameters(spec, data))
        > 0.1
    )


def test_train_rows_structure():
    spec = TINY[MSE]
    result = run_train([spec], ["numpy", "torch", "dask"], reps=2, min_time=0.0, memory=True)
    assert result["dtype"] == "float32" and [m["model"] for m in result["models"]] == [spec.label]
    assert any(s["what"] == "train step: dask" and "lazy" in s["reason"] for s in result["skipped"])
    by_name = {v["name"]: v for v in result["models"][0]["variants"]}
    assert {"numpy:portable eager", "numpy:hand", "numpy:raw", "torch:torch.nn+optim"} <= by_name.keys()
    for v in by_name.values():
        assert v["ops"]["train"]["reps"] == 2 and v["ops"]["train"]["median_s"] > 0
        assert v["peak_bytes"] is not None and v["peak_bytes"] > 0, v
        assert v["agreement"] <= tolerance("float32")[0]
        if v["kind"] != RAW:
            assert v["ratios"]["raw"] > 0
        if v["kind"] != TORCH_NN_OPTIM:
            assert v["ratios"]["torch.nn"] > 0 and v["memory_ratio_torch_nn"] > 0


def test_train_step_rows_when_the_library_has_it(monkeypatch):
    """``portable_nn.train_step`` (another change) is timed with compile=False and 'auto' when it exists."""
    seen: list[Any] = []

    def train_step(model: Any, loss_fn: Any, optimizer: Any, *, compile: Any = "auto") -> Any:
        seen.append(compile)

        def step(x: Any, y: Any) -> Any:
            loss, grad = loss_fn(model(x), y)
            optimizer.zero_grad()
            model.backward(grad)
            optimizer.step()
            return loss

        return step

    monkeypatch.setattr(pnn, "train_step", train_step, raising=False)
    spec = TINY[CE]
    data = HostData.make(spec)
    variants = build_train_variants(spec, data, ["numpy"], "cpu", "float32", [])
    kinds = [v.kind for v in variants]
    assert "train_step(compile=False)" in kinds and "train_step(compile='auto')" in kinds and seen == [False, "auto"]
    reference = reference_parameters(spec, data)
    assert all(agreement(v, data.flat(), reference) <= tolerance("float32")[0] for v in variants)


def test_skipped_train_backends_are_reported_when_nothing_ran():
    from benchmarks.bench.train_report import train_lines

    train = {
        "device": "cuda",
        "dtype": "float32",
        "models": [],
        "skipped": [{"what": "train step: jax", "reason": "r"}],
    }
    assert train_lines(train) == ["skipped train step: jax: r"]


def test_jax_rows_wait_for_the_updated_parameters_not_only_the_loss(monkeypatch):
    """JAX dispatches asynchronously: a timed loop must end when the last step's update is done, not its loss."""
    jax = pytest.importorskip("jax")
    spec = TINY[MSE]
    data = HostData.make(spec)
    variants = build_train_variants(spec, data, ["jax"], "cpu", "float32", [])
    waited: list[list[Any]] = []
    monkeypatch.setattr(jax, "block_until_ready", lambda tree: waited.append(jax.tree_util.tree_leaves(tree)))
    assert variants
    for v in variants:
        waited.clear()
        v.sync(v.ops["train"]())
        assert len(waited) == 1 and len(waited[0]) == 1 + len(data.flat()), v.name  # the loss and every parameter
