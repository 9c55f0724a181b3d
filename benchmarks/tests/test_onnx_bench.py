"""ONNX rows: both sides compute the same forward (so the timings compare equal work)."""

from __future__ import annotations

import pytest

from benchmarks import onnx_bench
from portable_nn.testing import tolerance

pytest.importorskip("onnxruntime")
pytest.importorskip("ndonnx")


def test_rows_compare_the_same_forward():
    rows = onnx_bench.run(rounds=1, calls=1, models=("demo",))
    assert [(r["model"], r["batch"]) for r in rows] == [("demo", b) for b in onnx_bench.BATCHES]
    _, atol = tolerance("float32")
    assert all(r["max_abs_delta"] <= atol for r in rows)
