"""The command line: ``python -m portable_nn`` / ``portable-nn`` (train, info; bench moved) and its error handling."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import cli
from portable_nn._backend import installed_backends, resolve_device, to_host
from portable_nn.cli import arguments as cli_arguments
from portable_nn.cli import datasets
from portable_nn.cli import model as cli_model
from portable_nn.cli.train import Progress

ROOT = Path(__file__).resolve().parents[2]
#: A run of a few seconds: small data, two epochs, no live progress bars.
TINY = ["--samples", "60", "--epochs", "2", "--batch-size", "16", "--progress", "never", "--device", "cpu"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(code: int, err: str, match: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("portable-nn: error: ") and match in lines[0], lines[0]
    assert "Traceback" not in err


# --------------------------------------------------------------------------- train


def test_train_writes_table_and_json(capsys, tmp_path):
    figures = tmp_path / "figures.json"
    code, out, err = _run(capsys, "--backend", "numpy,array_api_strict", *TINY, "--json", str(figures))
    assert code == 0, err
    assert "MLP 2→64→64→3 (tanh) on spirals: 48 train / 12 test samples" in out
    assert "0 (reference)" in out and "array_api_strict  cpu" in out
    data = json.loads(figures.read_text())
    assert data["config"]["model"] == [2, 64, 64, 3] and data["config"]["epochs"] == 2
    runs = {run["backend"]: run for run in data["runs"]}
    assert set(runs) == {"numpy", "array_api_strict"}
    for run in runs.values():
        assert len(run["loss_curve"]) == 2 and 0 <= run["accuracy"] <= 1 and run["wall_s"] > 0
    assert runs["array_api_strict"]["within_tolerance"] is True
    # Without a terminal the progress bar is one line per run, on stderr.
    assert [line.split()[0] for line in err.strip().splitlines()] == [
        "numpy/cpu/float32",
        "array_api_strict/cpu/float32",
    ]


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_runs_on_the_chosen_local_scheduler_and_matches_numpy(capsys, tmp_path, scheduler):
    figures = tmp_path / "figures.json"
    code, _, err = _run(capsys, "--backend", "numpy,dask", *TINY, "--scheduler", scheduler, "--json", str(figures))
    assert code == 0, err
    runs = {run["backend"]: run for run in json.loads(figures.read_text())["runs"]}
    assert runs["dask"]["within_tolerance"] is True
    assert runs["dask"]["accuracy"] == runs["numpy"]["accuracy"]


@pytest.mark.slow
def test_dask_trains_on_a_local_cluster_by_default_and_matches_numpy(capsys, tmp_path, caplog):
    """No --scheduler: a LocalCluster on 127.0.0.1 (its dashboard link printed); the saved model outlives it."""
    pytest.importorskip("distributed", reason="distributed is not installed")
    figures, saved = tmp_path / "figures.json", tmp_path / "model.safetensors"
    argv = ["--backend", "numpy,dask", *TINY, "--epochs", "3", "--json", str(figures), "--save", str(saved)]
    code, _, err = _run(capsys, *argv)
    assert code == 0, err
    assert "Dask dashboard: http://127.0.0.1:" in err
    runs = {run["backend"]: run for run in json.loads(figures.read_text())["runs"]}
    assert runs["dask"]["within_tolerance"] is True
    assert runs["dask"]["loss_curve"] == pytest.approx(runs["numpy"]["loss_curve"], rel=1e-5)  # float32 sums
    # the scheduler saw no key submitted twice with different tasks (dask#9888: "failures and deadlocks")
    assert not [r.getMessage() for r in caplog.records if "run_spec" in r.getMessage()]


@pytest.mark.slow
def test_dask_trains_on_an_existing_cluster_by_address(capsys, tmp_path):
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    figures = tmp_path / "figures.json"
    argv = ["--backend", "numpy,dask", *TINY, "--batch-size", "4", "--json", str(figures)]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        code, _, err = _run(capsys, *argv, "--address", cluster.scheduler_address)
        assert code == 0, err
        assert cluster.status.name == "running"  # someone else's cluster is left running
    assert "Dask dashboard: http://" in err  # the link of that cluster's dashboard
    runs = {run["backend"]: run for run in json.loads(figures.read_text())["runs"]}
    # 24 steps (two lineage checkpoints): still the NumPy run's weights
    assert runs["dask"]["within_tolerance"] is True and runs["dask"]["accuracy"] == runs["numpy"]["accuracy"]


def test_same_seed_same_initial_weights_on_every_backend(xp):
    reference = cli.build_mlp([2, 8, 3], "tanh", xp="numpy", device=None, dtype="float32", seed=7)
    model = cli.build_mlp([2, 8, 3], "tanh", xp=xp, device=resolve_device(xp, None), dtype="float32", seed=7)
    for name, expected in reference.named_parameters().items():
        np.testing.assert_array_equal(to_host(model.named_parameters()[name]), expected)


@pytest.mark.slow
def test_default_training_agrees_across_backends(capsys, tmp_path):
    """The acceptance run: every installed eager backend reaches >= 95% with weights within float32 tolerance."""
    backends = [b for b in ("numpy", "torch", "jax", "array_api_strict") if b in installed_backends()]
    figures = tmp_path / "figures.json"
    code, _, err = _run(capsys, "--backend", ",".join(backends), "--device", "cpu", "--json", str(figures))
    assert code == 0, err
    runs = json.loads(figures.read_text())["runs"]
    assert {run["backend"] for run in runs} == set(backends)  # (JAX may run on cpu and cpu:1 under pytest)
    accuracies = {run["accuracy"] for run in runs}
    assert len(accuracies) == 1 and min(accuracies) >= 0.95, accuracies
    assert all(run["within_tolerance"] for run in runs), [(r["backend"], r["max_abs_diff_vs_numpy"]) for r in runs]


def test_train_on_user_csv_and_npz(capsys, tmp_path):
    x, y = datasets.blobs(90, classes=3, seed=1)
    csv_path = tmp_path / "points.csv"
    names = np.array(["cat", "dog", "emu"])[y]
    csv_path.write_text("a,b,label\n" + "".join(f"{p},{q},{n}\n" for (p, q), n in zip(x, names, strict=True)))
    npz_path = tmp_path / "points.npz"
    np.savez(npz_path, x=x, y=y)
    for path in (csv_path, npz_path):
        figures = tmp_path / "f.json"
        code, _, err = _run(capsys, "--backend", "numpy", *TINY, "--data", str(path), "--json", str(figures))
        assert code == 0, err
        config = json.loads(figures.read_text())["config"]
        assert config["dataset"] == str(path) and config["model"] == [2, 64, 64, 3]
        assert config["train_samples"] == 72 and config["test_samples"] == 18


def test_optimizers_and_activations_are_selectable(capsys):
    for extra in (["--optimizer", "adam"], ["--optimizer", "adamw", "--lr", "0.01"], ["--activation", "relu"]):
        code, out, err = _run(capsys, "--backend", "numpy", *TINY, *extra)
        assert code == 0, err
    assert "AdamW(lr=0.01)" in out or "relu" in out


def test_a_failing_run_is_reported_and_the_others_still_run(capsys, monkeypatch):
    real = cli.build_mlp

    def broken_on_strict(sizes, activation, *, xp, device, dtype, seed):
        if "strict" in getattr(xp, "__name__", ""):
            raise pnn.DeviceError("simulated failure")
        return real(sizes, activation, xp=xp, device=device, dtype=dtype, seed=seed)

    monkeypatch.setattr(cli_model, "build_mlp", broken_on_strict)
    code, out, _ = _run(capsys, "--backend", "numpy,array_api_strict", *TINY)
    assert code == 1
    assert "FAILED  array_api_strict/cpu/float32: DeviceError: simulated failure" in out
    assert "numpy             cpu" in out


def test_unavailable_combinations_are_listed_with_reasons(capsys):
    code, out, _ = _run(capsys, "--backend", "numpy,array_api_strict", *TINY[:-2], "--device", "cpu,no_float64",
                        "--dtype", "float32,bfloat16")  # fmt: skip
    assert code == 0
    assert "skipped numpy/no_float64: numpy has no device 'no_float64' here (has: cpu)" in out
    assert "skipped numpy/cpu/bfloat16: numpy on cpu has no bfloat16" in out
    assert "skipped array_api_strict/no_float64/bfloat16" in out


# --------------------------------------------------------------------------- optional outputs


def test_plot_writes_a_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    code, _, err = _run(capsys, "--backend", "numpy", *TINY, "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_arguments, "has_module", lambda name: name != "matplotlib")
    code, _, err = _run(capsys, "--backend", "numpy", *TINY, "--plot", str(tmp_path / "x.png"))
    _assert_one_line_error(code, err, "pip install 'portable-nn[plot]'")


def test_save_without_serialization_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.delattr(pnn, "save", raising=False)
    code, _, err = _run(capsys, "--backend", "numpy", *TINY, "--save", str(tmp_path / "m.safetensors"))
    _assert_one_line_error(code, err, "--save needs portable_nn.save")


def test_save_hands_the_first_trained_model_to_portable_nn_save(capsys, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pnn, "save", lambda model, path, metadata: calls.append((model, path)), raising=False)
    target = tmp_path / "m.safetensors"
    code, out, err = _run(capsys, "--backend", "numpy", *TINY, "--save", str(target))
    assert code == 0, err
    [(model, path)] = calls
    assert isinstance(model, pnn.Sequential) and path == target
    assert f"model of numpy/cpu/float32 saved to {target}" in out


# --------------------------------------------------------------------------- info and bench


def test_info_lists_backends(capsys):
    code, out, _ = _run(capsys, "info")
    assert code == 0
    assert f"portable_nn {pnn.__version__}" in out
    lines = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert set(lines) == set(cli.RUN_ORDER)
    assert "cpu (" in lines["numpy"] and "float32" in lines["numpy"]
    for name in set(cli.RUN_ORDER) - set(installed_backends()):
        assert "unavailable: " in lines[name]


def test_bench_moved_out_is_a_usage_error_pointing_to_benchmarks(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "portable_nn.bench", raising=False)
    code, _, err = _run(capsys, "bench", "--quick")
    _assert_one_line_error(code, err, "python -m benchmarks.bench")
    assert "portable_nn.bench" not in sys.modules  # the command line no longer imports it


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--dtype", "float8"], "unknown dtype 'float8'"),
        (["--epochs", "0"], "--epochs: expected an integer >= 1, got '0'"),
        (["--batch-size", "many"], "--batch-size: expected an integer >= 1"),
        (["--lr", "-0.1"], "--lr: expected a number in (0, inf)"),
        (["--lr", "nan"], "--lr: expected a number"),
        (["--momentum", "1.5"], "--momentum: expected a number in [0, 1)"),
        (["--seed", "1.5"], "--seed: expected an integer >= 0"),
        (["--hidden", "64,0"], "--hidden: expected comma-separated positive layer widths"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["--schedule", "linear"], "invalid choice: 'linear'"),
        (["--clip-grad-norm", "-1"], "--clip-grad-norm"),
        (["--data", "/nonexistent/points.csv"], "does not exist"),
        (["--json", "/nonexistent/dir/f.json"], "does not exist"),
        (["--backend", "numpy", "--device", "cuda:7"], "nothing can run"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["trian"], "unknown command 'trian'"),
        (["--scheduler", "threads", "--address", "127.0.0.1:8786"], "--address needs --scheduler distributed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, match):
    code, _, err = _run(capsys, *argv)
    _assert_one_line_error(code, err, match)


@pytest.mark.parametrize(
    ("content", "match"),
    [("1,2,0\n3,4\n", "same number"), ("a,b,label\n", "no data rows"), ("1,x,0\n2,3,1\n", "must be numbers")],
)
def test_bad_data_file_is_one_line_and_exit_2(capsys, tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = _run(capsys, "--data", str(path))
    _assert_one_line_error(code, err, match)


def test_help_and_version_exit_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert pnn.__version__ in capsys.readouterr().out


def test_python_dash_m_without_a_terminal():
    """``python -m portable_nn`` in a subprocess (no TTY, as in CI): bad input -> one line, exit 2; a run -> exit 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = subprocess.run(
        [sys.executable, "-m", "portable_nn", "--backend", "nope"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    _assert_one_line_error(bad.returncode, bad.stderr, "unknown backend 'nope'")
    good = subprocess.run(
        [sys.executable, "-m", "portable_nn", "--backend", "numpy", *TINY], capture_output=True, text=True, env=env
    )
    assert good.returncode == 0, good.stderr
    assert "\r" not in good.stderr and good.stderr.count("\n") == 1  # one progress line, no redraws


# --------------------------------------------------------------------------- progress bar (tqdm)


def test_progress_without_terminal_writes_one_line_when_it_closes():
    stream = io.StringIO()
    with Progress(5, "run", None, stream=stream) as bar:
        for _ in range(5):
            bar.update(note="loss 0.5")
        assert stream.getvalue() == ""  # nothing until the run ends
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" not in text
    assert text.split()[0] == "run" and "5/5" in text and "loss 0.5" in text


def test_progress_on_a_terminal_redraws_in_place():
    stream = io.StringIO()
    with Progress(2, "run", True, stream=stream) as bar:
        bar.update(note="a much longer note")
        bar.update(note="short")
    text = stream.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1
    last = text.rsplit("\r", 1)[1]
    assert "2/2" in last and "short" in last
