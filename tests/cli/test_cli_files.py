"""The command line's files: ``--data`` inputs refused with one clear line, output paths checked before training."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from portable_nn.cli import datasets
from portable_nn.cli.plan import RunSpec
from portable_nn.cli.report import format_table
from portable_nn.cli.train import RunResult

from .cli_support import ROOT, TINY, assert_one_line_error, run_cli, run_module

NUMPY = ["--backend", "numpy", *TINY]


def _trained(out: str) -> bool:
    return out.startswith("MLP ")  # the title line is printed when training starts


# --------------------------------------------------------------------------- --plot, --json, --save paths


def test_plot_without_suffix_reports_the_file_it_writes(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "curvesnoext"
    code, out, err = run_cli(capsys, *NUMPY, "--plot", str(target))
    assert code == 0, err
    written = tmp_path / "curvesnoext.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss curves written to {written}\n" in out
    assert not target.exists()


@pytest.mark.parametrize("option", ["--plot", "--json", "--save"])
@pytest.mark.parametrize("where", ["dir", "dir/", ".", "missing/f.out", "/proc/portable_nn_f.out", "file/f.out"])
def test_bad_output_paths_are_refused_before_training(capsys, tmp_path, monkeypatch, option, where):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    code, out, err = run_cli(capsys, *NUMPY, option, where)
    assert_one_line_error(code, err, option)
    assert not _trained(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]  # nothing written, dir/ still empty
    assert not list((tmp_path / "dir").iterdir())


def test_plot_refuses_an_unknown_image_format(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = run_cli(capsys, *NUMPY, "--plot", str(tmp_path / "curves.nope"))
    assert_one_line_error(code, err, "unknown image format '.nope'")
    assert not _trained(out)


# --------------------------------------------------------------------------- divergence and the table


def test_divergence_is_a_failed_run(capsys):
    code, out, err = run_cli(capsys, *NUMPY, "--lr", "100", "--dtype", "float16")
    assert code == 1, out + err
    assert "FAILED  numpy/cpu/float16: Diverged: training diverged" in out
    assert "RuntimeWarning" not in err


def test_table_columns_stay_aligned_for_huge_and_nan_losses(capsys):
    code, out, err = run_cli(capsys, *NUMPY, "--lr", "1e30")
    assert code in (0, 1), err
    results = [
        RunResult(RunSpec("numpy", "cpu", "float32"), value, 0.5, 1.0, [value], {})
        for value in (1e30, -1e300, float("nan"), float("inf"), 1e-9, 0.25)
    ]
    for text in (out[out.index("backend ") :].split("\n\n")[0], format_table(results)):
        lines = [line for line in text.splitlines() if line.startswith(("backend ", "numpy "))]
        header = lines[0]
        for line in lines[1:]:
            # the accuracy column ends where the header's does, whatever the loss
            assert line.index("%") == header.index("accuracy") + len("accuracy") - 1, text


# --------------------------------------------------------------------------- --data files


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()  # magic string, header length, header


def test_npz_whose_header_claims_a_huge_array_is_refused_before_allocation(capsys, tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", _npy_header((2**40, 2)) + b"\0" * 16)
        archive.writestr("y.npy", _npy_header((2,), "<i8") + struct.pack("<2q", 0, 1))
    assert path.stat().st_size < 600
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, "x.npy claims shape (1099511627776, 2)")
    assert "MemoryError" not in err


@pytest.mark.parametrize("keys", [("features", "labels"), ("data", "target"), ("x", "targets"), ("x", "y", "z")])
def test_npz_needs_exactly_x_and_y(capsys, tmp_path, keys):
    path = tmp_path / "d.npz"
    values = [np.ones((6, 2)), np.array([0, 1] * 3), np.zeros(6)]
    np.savez(path, **dict(zip(keys, values, strict=False)))
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, f"found {sorted(keys)}")


def test_complex_features_are_refused(capsys, tmp_path, recwarn):
    path = tmp_path / "c.npz"
    np.savez(path, x=np.ones((6, 2), dtype=complex), y=np.array([0, 1] * 3))
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, "features must be real numbers")
    assert not [w for w in recwarn if "Complex" in type(w.message).__name__]


def test_csv_field_over_the_csv_module_limit_is_one_line(capsys, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("1,2,0\n" + "3" * 131_073 + ",4,1\n")
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, f"{path}: unreadable CSV at line 2")


def test_headerless_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    x, y = datasets.blobs(20, seed=2)
    path = tmp_path / "bom.csv"
    path.write_text("".join(f"{p},{q},{label}\n" for (p, q), label in zip(x, y, strict=True)), encoding="utf-8-sig")
    loaded_x, loaded_y = datasets.load_dataset(path)
    assert loaded_x.shape == (20, 2)
    np.testing.assert_array_equal(loaded_x, x)
    np.testing.assert_array_equal(loaded_y, y)


def test_non_utf8_csv_names_the_file(capsys, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b,label\n1,2,caf\xe9\n3,4,th\xe9\n".encode("latin-1"))
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, f"{path}: not UTF-8 text")


def test_directory_device_and_fifo_are_named_for_what_they_are(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it would block until a writer comes: must only be stat'ed
    cases = [(tmp_path, "is a directory"), (fifo, "is a FIFO"), ("/dev/zero", "is a character device")]
    for path, what in cases:
        result = run_module(*NUMPY, "--data", str(path), timeout=60)
        assert_one_line_error(result.returncode, result.stderr, what)
        assert "does not exist" not in result.stderr


def test_json_records_a_loaded_csv(capsys, tmp_path):
    path = tmp_path / "points.csv"
    x, y = datasets.blobs(30, seed=1)
    path.write_text("".join(f"{p},{q},{label}\n" for (p, q), label in zip(x, y, strict=True)))
    figures = tmp_path / "f.json"
    code, _, err = run_cli(capsys, *NUMPY, "--data", str(path), "--json", str(figures))
    assert code == 0, err
    assert json.loads(figures.read_text())["config"]["train_samples"] == 24


def test_a_reader_that_goes_away_ends_the_run_quietly():
    """``portable-nn | head``: the closed pipe ends the command with 141 (128 + SIGPIPE), no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "portable_nn", *NUMPY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line: its write fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
