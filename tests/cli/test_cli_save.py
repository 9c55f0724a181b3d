"""``--save``: the file reloads whole with ``pnn.load`` on another backend, same classes from raw data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import installed_backends, to_host

from .cli_support import run_cli


def _raw_points(path):
    """Three blobs with string labels and raw (unstandardized, offset and scaled) features, as a CSV."""
    rng = np.random.default_rng(3)
    names = np.array(["iris", "rose", "tulip"])
    y = np.arange(240) % 3
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    x = (centres[y] + rng.normal(0.0, 0.6, (240, 2))) * [30.0, 0.5] + [1000.0, -7.0]
    with open(path, "w") as fh:
        fh.write("width,height,flower\n")
        for (a, b), label in zip(x, names[y], strict=True):
            fh.write(f"{float(a)!r},{float(b)!r},{label}\n")
    return x, names[y]


def _predict(model, metadata, x_raw):
    """What a user does with the saved file: standardize raw features with its statistics, argmax, map to labels."""
    mean = np.asarray(json.loads(metadata["cli.feature_mean"]))
    std = np.asarray(json.loads(metadata["cli.feature_std"]))
    labels = json.loads(metadata["cli.labels"])
    xp = model.xp
    x = xp.asarray(((x_raw - mean) / std).astype(np.float32), device=model.device)
    with pnn.no_grad():
        logits = to_host(model(x))
    return np.asarray(labels)[np.argmax(logits, axis=1)]


@pytest.mark.parametrize("other", [b for b in ("torch", "jax", "array_api_strict") if b in installed_backends()])
def test_saved_model_reloads_on_another_backend_and_predicts_the_same_classes(capsys, tmp_path, other):
    data, saved, figures = tmp_path / "points.csv", tmp_path / "model.safetensors", tmp_path / "figures.json"
    x_raw, truth = _raw_points(data)
    argv = ["--data", str(data), "--backend", "numpy", "--epochs", "8", "--progress", "never"]
    code, out, err = run_cli(capsys, *argv, "--save", str(saved), "--json", str(figures))
    assert code == 0, out + err
    metadata = pnn.load_metadata(saved)
    assert json.loads(metadata["cli.labels"]) == ["iris", "rose", "tulip"]

    on_numpy = pnn.load(saved)  # the architecture comes from the file: no model code needed
    on_other = pnn.load(saved, xp=other)
    assert type(on_other).__name__ == "Sequential" and pnn.registered_name(type(on_other[0])) == "Linear"
    predicted = _predict(on_numpy, metadata, x_raw)
    np.testing.assert_array_equal(_predict(on_other, metadata, x_raw), predicted)
    # and it is the trained model of the run: it classifies the raw points as well as the run reported
    reported = json.loads(figures.read_text())["runs"][0]["accuracy"]
    assert np.mean(predicted == truth) >= min(0.9, reported - 0.05)
