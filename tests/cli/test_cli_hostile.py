"""Hostile command-line input: one ``portable-nn: error:`` line and exit 2, before any training, memory in
proportion to the input (issue 26)."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn.cli import datasets, outputs
from portable_nn.cli.arguments import MAX_SAMPLES
from portable_nn.cli.data import MAX_CLASSES

from .cli_support import TINY, assert_one_line_error, run_cli

NUMPY = ["--backend", "numpy", *TINY, "--hidden", "4"]


def _trained(out: str) -> bool:
    return out.startswith("MLP ")  # the title line is printed when training starts


def test_csv_reader_memory_is_proportional_to_the_file(tmp_path):
    """One 20,000-character label among 500 rows: a fixed-width string table would take 80 MB for a 26 KB file."""
    path = tmp_path / "long_label.csv"
    rows = [f"{i * 0.01},{'a' if i % 2 else 'b'}" for i in range(500)]
    rows.append("0.5," + "c" * 20_000)
    path.write_text("x,label\n" + "\n".join(rows) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        x, y, labels = datasets.load_labeled_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.shape == (501, 1) and len(labels) == 3 and int(y.max()) == 2
    assert peak < 40 * size, f"peak {peak} bytes for a {size}-byte file"


def test_more_classes_than_the_limit_is_refused_before_training(capsys, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("".join(f"{i},{i % 7},label{i}\n" for i in range(MAX_CLASSES + 1)))
    code, out, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(
        code, err, f"{MAX_CLASSES + 1} distinct labels; the command line trains at most {MAX_CLASSES}"
    )
    assert not _trained(out)


def test_the_class_limit_itself_is_accepted(tmp_path):
    path = tmp_path / "limit.csv"
    path.write_text("".join(f"{i},label{i % MAX_CLASSES}\n" for i in range(MAX_CLASSES)))
    _, _, labels = datasets.load_labeled_dataset(path)
    assert len(labels) == MAX_CLASSES


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.one_of(st.integers(MAX_SAMPLES + 1, 10**30), st.just(1_000_000_000)))
def test_samples_over_the_limit_is_a_usage_error(capsys, samples):
    code, out, err = run_cli(capsys, *NUMPY, "--samples", str(samples))
    assert_one_line_error(code, err, f"--samples: expected an integer in [10, {MAX_SAMPLES:_}]")
    assert not _trained(out)


@pytest.mark.parametrize("name", ["a" * 300, "b" * 256, "x/" + "c" * 1000])
def test_compilation_cache_name_too_long_is_a_usage_error(capsys, tmp_path, name):
    code, out, err = run_cli(capsys, *NUMPY, "--compilation-cache", str(tmp_path / name))
    assert_one_line_error(code, err, "--compilation-cache: ")
    assert not _trained(out) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "adagrad"])
def test_momentum_with_an_optimizer_that_takes_none_is_a_usage_error(capsys, optimizer):
    code, out, err = run_cli(capsys, *NUMPY, "--optimizer", optimizer, "--momentum", "0.5")
    assert_one_line_error(code, err, f"--momentum applies to --optimizer sgd only, not {optimizer}")
    assert not _trained(out)


def test_sgd_momentum_default_and_explicit(capsys):
    code, out, _ = run_cli(capsys, *NUMPY, "--momentum", "0.5")
    assert code == 0 and "momentum=0.5" in out.splitlines()[0]
    code, out, _ = run_cli(capsys, *NUMPY, "--optimizer", "adam")
    assert code == 0 and "momentum" not in out.splitlines()[0]


@pytest.mark.parametrize(("one", "other"), [("1", "1.0"), ("2", "02"), ("10", "1e1"), ("-0", "0")])
def test_labels_that_are_one_number_written_two_ways_are_refused(capsys, tmp_path, one, other):
    path = tmp_path / "clash.csv"
    path.write_text("".join(f"{i},{one if i % 3 == 0 else other if i % 3 == 1 else 'z'}\n" for i in range(30)))
    code, out, err = run_cli(capsys, *NUMPY, "--data", str(path))
    assert_one_line_error(code, err, "are the same number written two ways")
    assert repr(one) in err and repr(other) in err and not _trained(out)


def test_numeric_labels_written_one_way_stay_distinct_classes(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("".join(f"{i},{['1.0', '2.0', '10'][i % 3]}\n" for i in range(30)))
    _, y, labels = datasets.load_labeled_dataset(path)
    assert labels == ["1.0", "10", "2.0"] and sorted(set(y.tolist())) == [0, 1, 2]


def _long_label_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("".join(f"{i * 0.1},{i * 0.2},{'class-' + 'q' * 60 if i % 2 else 'short'}\n" for i in range(40)))
    return path


def test_save_with_metadata_too_large_for_the_header_is_refused_before_training(capsys, tmp_path, monkeypatch):
    from portable_nn.io._safetensors_format import MAX_HEADER

    monkeypatch.setattr(outputs, "MODEL_HEADER_RESERVE", MAX_HEADER - 100, raising=False)  # a 100-byte budget
    target = tmp_path / "model.safetensors"
    code, out, err = run_cli(capsys, *NUMPY, "--data", str(_long_label_csv(tmp_path)), "--save", str(target))
    assert_one_line_error(code, err, "--save: the labels and feature statistics take")
    assert not _trained(out) and not target.exists()


def test_save_refused_by_pnn_save_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise pnn.SerializationError("header of 123 bytes is over the limit")

    monkeypatch.setattr(pnn, "save", refuse)
    target = tmp_path / "model.safetensors"
    code, out, err = run_cli(capsys, *NUMPY, "--save", str(target))
    lines = err.strip().splitlines()  # after the run's progress line: one error line
    assert (
        code == 2
        and lines[-1] == "portable-nn: error: --save refused: SerializationError: header of 123 bytes is over the limit"
    )
    assert "Traceback" not in err and "saved to" not in out and not target.exists()
