"""Smoke test of the benchmark harness: tiny shapes, one repetition, the JSON's structure (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from portable_nn import bench
from portable_nn._backend import backend_name


def _run(tmp_path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    # --threads 0: leave the test process's thread settings alone (the CPU default would set 1 thread).
    code = bench.main(["--reps", "1", "--min-time", "0", "--threads", "0", "--json", str(out), *args])
    assert code == 0
    return json.loads(out.read_text())


def test_bench_json_structure(xp, tmp_path):
    name = backend_name(xp)
    result = _run(tmp_path, "--backends", name, "--shapes", "2x3x5->2")  # 3-D: the reshaping path too
    assert result["schema"] == "portable_nn.bench/1"
    assert {"machine", "versions", "settings", "cases", "targets", "skipped"} <= result.keys()
    assert [c["shape"]["label"] for c in result["cases"]] == ["B2x3 5->2"]
    for case in result["cases"]:
        assert case["device"] == "cpu" and case["dtype"] == "float32"
        by_name = {v["name"]: v for v in case["variants"]}
        assert {"torch.nn", "numpy(hand)"} <= by_name.keys()
        if name == "dask":  # lazy: not benchmarked, and the run says why
            assert not any(v["backend"] == "dask" for v in case["variants"])
            continue
        pnn, raw = by_name[f"{name}:portable_nn"], by_name[f"{name}:raw"]
        assert set(pnn["ops"]) == set(bench.OPS) == set(raw["ops"])
        for op in bench.OPS:
            stats = pnn["ops"][op]
            assert stats["reps"] == 1 and stats["median_s"] > 0 and stats["min_s"] <= stats["max_s"]
            assert pnn["ratios"]["torch.nn"][op] > 0 and pnn["ratios"]["reference"][op] > 0
        assert pnn["reference"] == f"{name}:raw" and set(pnn["overhead_us"]) == set(bench.OPS)
        if name == "jax":
            assert by_name["jax:jit(functional)"]["reference"] == "jax:jit(grad)"
        if name in ("numpy", "torch"):
            assert pnn["peak_bytes"] > 0 and pnn["memory_method"] in ("tracemalloc", "torch-profiler")
    if name == "dask":
        assert any(s["what"] == "dask" and s["reason"] for s in result["skipped"])
    if name in ("numpy", "torch", "jax"):  # memory targets (numpy, torch) and jit(functional) vs jit(grad)
        assert result["targets"]
    for target in result["targets"]:
        assert {"target", "where", "value", "limit", "holds"} <= target.keys()


def test_shape_parsing():
    shape = bench.Shape.parse("8x128x512->256")
    assert (shape.input_shape, shape.output_shape, shape.rows) == ((8, 128, 512), (8, 128, 256), 1024)
    assert bench.Shape.parse("32x64:64") == bench.Shape.parse("32x64->64")
    assert shape.flops("fwd+bwd") == 3 * 2 * 1024 * 512 * 256 + 2 * 1024 * 256
    for bad in ("64->64", "32x64", "0x4->2", "ax4->2"):
        with pytest.raises(ValueError, match="bad shape"):
            bench.Shape.parse(bad)


def test_module_entry_point_and_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    args = ["--backends", "numpy", "--shapes", "3x5->2", "--reps", "1", "--min-time", "0", "--no-memory"]
    proc = subprocess.run(
        [sys.executable, "-m", "portable_nn.bench", *args, "--json", str(out), "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "numpy:portable_nn" in proc.stdout and "targets:" in proc.stdout
    assert json.loads(out.read_text())["cases"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_exit_with_2(capsys):
    assert bench.main(["--shapes", "nonsense"]) == 2
    assert bench.main(["--backends", "nope"]) == 2
    assert "error" in capsys.readouterr().err
