"""``benchmarks/cli_jax_profile.py``: the phases cover the run, and the CLI's JAX run compiles where expected."""

from __future__ import annotations

import json

import pytest

from benchmarks import cli_jax_profile

TINY = ["--samples", "60", "--epochs", "2", "--batch-size", "16"]


def test_phases_cover_the_run_and_only_jax_compiles(tmp_path, capsys):
    pytest.importorskip("jax", reason="jax is not installed: nothing to profile")
    out = tmp_path / "profile.json"
    assert cli_jax_profile.main(["--backends", "numpy,jax", "--json", str(out), "--list-compiles", *TINY]) == 0
    printed = capsys.readouterr().out
    profiles = {p["run"]: p for p in json.loads(out.read_text())}
    assert {"numpy/cpu/float32", "jax/cpu/float32"} <= set(profiles)  # the test session may add jax/cpu:1
    for profile in profiles.values():
        phases = {p["phase"]: p for p in profile["phases"]}
        assert list(phases) == list(cli_jax_profile.PHASES)
        assert all(p["seconds"] >= 0 for p in phases.values())
        # the phases run from train_run's call to its return: they hold its wall time (measured inside)
        assert sum(p["seconds"] for p in phases.values()) >= profile["wall_s"]
        assert profile["steps"] == 2 * 3  # 48 training rows in batches of 16, two epochs
        assert sum(p["compiles"] for p in phases.values()) == profile["compiles"]
    assert profiles["numpy/cpu/float32"]["compiles"] == 0
    jax_phases = {p["phase"]: p for p in profiles["jax/cpu/float32"]["phases"]}
    assert jax_phases["evaluation"]["programs"] == ["jit(_pure_evaluation)"]
    assert jax_phases["1st: jit+run"]["programs"] == ["jit(pure_step)"]
    assert jax_phases["steady steps"]["compiles"] == 0
    assert "jit(_pure_evaluation)" in printed


def test_repeat_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        cli_jax_profile.main(["--repeat", "0"])
    assert "--repeat must be >= 1" in capsys.readouterr().err
