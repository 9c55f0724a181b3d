"""Smoke tests of the Linear rows: tiny shapes, one round, the JSON's structure (no timing checks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench
from benchmarks.bench.backends import backend_name

ROOT = Path(__file__).resolve().parents[2]
# --threads 0: leave the test process's thread settings alone (the CPU default would set 1 thread).
FAST = ["--reps", "1", "--min-time", "0", "--threads", "0"]


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    code = bench.main([*FAST, "--parts", "linear", "--json", str(out), *args])
    assert code == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_bench_json_structure(xp, tmp_path):
    name = backend_name(xp)
    result = _run(tmp_path, "--backends", name, "--shapes", "2x3x5->2")  # 3-D: the reshaping path too
    assert result["schema"] == "portable_nn.bench/2"
    assert {"machine", "versions", "settings", "cases", "targets", "skipped", "train"} <= result.keys()
    assert result["train"] is None  # --parts linear
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
        assert by_name["torch.nn"]["peak_bytes"] > 0 and by_name["torch.nn"]["memory_method"] == "torch-profiler"
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
    args = ["--parts", "linear", "--backends", "numpy,torch", "--shapes", "3x5->2", *FAST]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", *args, "--json", str(out), "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "numpy:portable_nn" in proc.stdout and "targets:" in proc.stdout
    # torch's profiler (peak memory of torch rows) prints nothing: no USDT lines, no allocator warnings.
    assert "USDT" not in proc.stdout + proc.stderr and "[W" not in proc.stdout + proc.stderr
    assert [line.split(":")[0] for line in proc.stderr.splitlines()] == ["[1/1] cpu float32 B3 5->2"]
    assert json.loads(out.read_text())["cases"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--load", str(out), "--markdown"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert again.returncode == 0 and "| B3 5->2 | numpy:portable_nn |" in again.stdout


def test_library_does_not_ship_or_import_the_benchmarks():
    package = ROOT / "portable_nn"
    assert not (package / "bench.py").exists()
    imports = re.compile(r"^\s*(import|from)\s+benchmarks\b", re.MULTILINE)
    assert [p.name for p in package.rglob("*.py") if imports.search(p.read_text())] == []


def test_benchmarks_use_no_private_torch_api():
    private = re.compile(r"torch\._|_C\._|\._profiler\b")
    offenders = [p.name for p in (ROOT / "benchmarks" / "bench").glob("*.py") if private.search(p.read_text())]
    assert offenders == []
