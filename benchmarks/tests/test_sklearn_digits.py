"""Smoke test of the digits comparison: both libraries run, the JSON has their figures (no timing checks)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("threadpoolctl")

from benchmarks import sklearn_digits


def test_digits_comparison_runs_both_libraries(tmp_path, capsys):
    out = tmp_path / "digits.json"
    assert sklearn_digits.main(["--repeats", "1", "--seeds", "1", "--max-iter", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert set(figures) == {"scikit-learn", "portable_nn"}
    for row in figures.values():
        assert row["n_iter"] == 2 and 0.0 <= row["accuracy"] <= 1.0 and row["fit_seconds"] > 0
    assert "portable_nn / scikit-learn" in capsys.readouterr().out
