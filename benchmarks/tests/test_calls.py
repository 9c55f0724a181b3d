"""The call counts of the benchmark output: deterministic, counted per operation, shown in the report."""

from __future__ import annotations

from benchmarks.bench.calls import call_targets, calls_lines, count_calls


def _two_calls() -> None:
    len([])  # one c_call, plus the call of this function itself


def test_count_calls_counts_python_and_c_calls_per_call():
    assert count_calls(_two_calls, repeat=4, warmup=1) == 2


def test_call_targets_are_deterministic_and_reported():
    first, second = call_targets(), call_targets()
    assert [e["calls"] for e in first] == [e["calls"] for e in second]
    assert [e["what"] for e in first] == ["demo train_step", "Linear f+b+zero_grad"]
    for entry in first:
        assert entry["calls"] == int(entry["calls"]) > 0  # a steady state: every counted call the same
        assert entry["held"] == (entry["calls"] <= entry["target"])
    text = "\n".join(calls_lines(first))
    assert "demo train_step: " in text and "target <= 150" in text
    assert calls_lines(None) == []
