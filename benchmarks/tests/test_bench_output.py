"""Output defects of the harness, each pinned: profiler chatter, the one-thread method, verdicts, usage errors."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from benchmarks import bench
from benchmarks.bench import env, memory
from benchmarks.bench.report import format_text
from benchmarks.bench.targets import holds, shown

FAST = ["--reps", "1", "--min-time", "0", "--threads", "0", "--no-memory"]
TINY = ["--parts", "linear", "--backends", "numpy", "--shapes", "2x3->2"]


def test_torch_profiler_prints_nothing(capfd):
    torch = pytest.importorskip("torch")
    x = torch.ones(8, 8)
    capfd.readouterr()
    peak = memory._peak_torch_profiler(lambda: (x @ x) + 1)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # was ~24 lines: USDT profiler_start/stop, CPUAllocator warnings
    assert peak >= 2 * 8 * 8 * 4  # the matmul result and the sum, float32


def test_peak_of_events_ignores_blocks_from_before():
    events = [(0.0, -64, 1), (1.0, 100, 2), (2.0, 50, 3), (3.0, -100, 2), (4.0, 10, 4), (5.0, -50, 3)]
    assert memory.peak_of_events(events) == 150


def test_one_thread_method_uses_threadpoolctl(monkeypatch):
    calls: list[tuple[str, int]] = []
    fake = type(sys)("threadpoolctl")
    fake.threadpool_limits = lambda n: calls.append(("blas", n))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("torch", n)))
    env.limit_threads(1)
    assert sorted(calls) == [("blas", 1), ("torch", 1)]


def test_missing_threadpoolctl_is_a_usage_error_unless_threads_0(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl -> ImportError
    assert bench.main([*TINY, "--reps", "1", "--min-time", "0"]) == 2  # default: one thread on CPU
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: ") and "threadpoolctl" in err[0]
    assert "--threads 0" in err[0]
    with pytest.raises(env.ThreadLimitError, match="threadpoolctl"):
        env.limit_threads(1)
    assert bench.main([*TINY, *FAST]) == 0  # --threads 0: runs, libraries keep their own threads


@pytest.mark.parametrize("unit, limit, digits", [("x", 1.05, 2), ("µs", 5.0, 1)])
def test_verdicts_agree_with_the_printed_figure(unit, limit, digits):
    result: dict[str, Any] = {
        "machine": {"cpu": "c", "cores": 2, "platform": "p", "load_start": "0", "env": {}},
        "versions": {},
        "settings": {"reps": 1, "min_time": 0.0, "quick": True},
        "cases": [],
        "skipped": [],
        "targets": [],
    }
    step = 10.0 ** -(digits + 2)
    for i in range(-300, 301):
        value = limit + i * step
        result["targets"] = [{"target": "t", "where": "w", "value": value, "limit": limit, "unit": unit}]
        result["targets"][0]["holds"] = holds(value, limit, unit)
        line = next(line for line in format_text(result).splitlines() if "[w]" in line)
        printed = float(shown(value, unit))
        assert ("holds" in line) == (printed <= limit), line  # e.g. never 'MISSED ... 1.05x (<= 1.05x)'
        assert f"{shown(value, unit)}" in line


BAD = [
    ["--reps", "0"],
    ["--reps", "-3"],
    ["--reps", "two"],
    ["--min-time", "-1"],
    ["--min-time", "nan"],
    ["--threads", "-1"],
    ["--dtypes", "float8"],
    ["--dtypes", "float32,int8"],
    ["--shapes", "nonsense"],
    ["--backends", "nope"],
    ["--train-backends", "nope"],
    ["--train-models", "huge"],
    ["--parts", "everything"],
    ["--load", "/nonexistent/run.json"],
    ["--no-such-option"],
]


@pytest.mark.parametrize("argv", BAD, ids=" ".join)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys):
    start = time.perf_counter()
    assert bench.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), captured.err
    assert captured.out == ""
    assert time.perf_counter() - start < 5  # rejected up front, before anything is timed


def test_usage_error_names_the_bad_value(capsys):
    assert bench.main(["--reps", "0"]) == 2
    assert "--reps" in capsys.readouterr().err
    assert bench.main(["--dtypes", "float8"]) == 2
    assert "'float8'" in capsys.readouterr().err
