"""Host-side datasets: seeded synthetic sets, file loading, splits and batches."""

from __future__ import annotations

import numpy as np
import pytest

from portable_nn import ArgumentError, SerializationError
from portable_nn.cli import datasets


@pytest.mark.parametrize("make", [datasets.spirals, datasets.blobs])
def test_synthetic_sets_are_seeded_balanced_and_shuffled(make):
    x, y = make(301, classes=3, seed=5)
    assert x.shape == (301, 2) and x.dtype == np.float64 and y.shape == (301,) and y.dtype == np.int64
    assert sorted(np.bincount(y)) == [100, 100, 101]
    again_x, again_y = make(301, classes=3, seed=5)
    np.testing.assert_array_equal(x, again_x)
    np.testing.assert_array_equal(y, again_y)
    assert not np.array_equal(make(301, classes=3, seed=6)[0], x)
    assert len(set(y[:10].tolist())) > 1, "classes should be interleaved, not in blocks"


def test_spiral_arms_lie_on_their_spiral():
    x, y = datasets.spirals(600, classes=3, noise=0.0, seed=0)
    radius = np.hypot(x[:, 0], x[:, 1])
    angle = np.arctan2(x[:, 1], x[:, 0])
    expected = 2 * np.pi * (y / 3 + 1.0 * radius)  # default turns = 1: angle grows one turn per unit radius
    np.testing.assert_allclose(np.cos(angle), np.cos(expected), atol=1e-9)
    assert radius.min() >= 0.15 - 1e-12 and radius.max() <= 1.0


@pytest.mark.parametrize(("n", "classes"), [(2, 3), (10, 1), (10.0, 3)])
def test_synthetic_size_checks(n, classes):
    with pytest.raises(ArgumentError):
        datasets.spirals(n, classes=classes)


def test_load_csv_with_header_and_string_labels(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("f1,f2,f3,kind\n1,2,3,b\n4,5,6,a\n\n7,8,9,b\n")
    x, y = datasets.load_dataset(path)
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(y, [1, 0, 1])  # sorted distinct labels: a -> 0, b -> 1


def test_load_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=np.ones((4, 2)), y=np.array([3, 7, 3, 7]))
    x, y = datasets.load_dataset(path)
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("keys", [("X", "labels"), ("features", "y"), ("data", "target"), ("x", "targets")])
def test_load_npz_takes_no_aliases(tmp_path, keys):
    """Only 'x' and 'y': other names are refused with the names found, not guessed."""
    path = tmp_path / "d.npz"
    np.savez(path, **{keys[0]: np.ones((4, 2)), keys[1]: np.array([0, 1, 0, 1])})
    with pytest.raises(
        SerializationError, match=rf"arrays named 'x' .*'y'.*found \['{sorted(keys)[0]}', '{sorted(keys)[1]}'\]"
    ):
        datasets.load_dataset(path)


@pytest.mark.parametrize(
    ("name", "write", "error", "match"),
    [
        ("missing.csv", None, FileNotFoundError, "does not exist"),
        ("d.txt", lambda p: p.write_text("1,2\n"), SerializationError, "unsupported data file type"),
        ("d.csv", lambda p: p.write_text("1,2,0\n1,2\n"), SerializationError, "same number"),
        ("d.csv", lambda p: p.write_text("1,2,0\n1,2,0\n"), SerializationError, "at least 2 classes"),
        ("d.csv", lambda p: p.write_text("1,inf,0\n1,2,1\n"), SerializationError, "NaN or infinity"),
        ("d.npz", lambda p: np.savez(p, a=np.ones(3)), SerializationError, "exactly the arrays named 'x'"),
        (
            "d.npz",
            lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object), y=np.array([0])),
            SerializationError,
            "not a readable .npz",
        ),
        ("d.npz", lambda p: p.write_bytes(b"not a zip"), SerializationError, "not a readable .npz"),
        ("d.npz", lambda p: np.savez(p, x=np.ones((3, 2)), y=np.array([0, 1])), SerializationError, "3 feature rows"),
    ],
)
def test_load_errors(tmp_path, name, write, error, match):
    path = tmp_path / name
    if write is not None:
        write(path)
    with pytest.raises(error, match=match):
        datasets.load_dataset(path)


def test_split_standardize_and_batches():
    x, y = datasets.blobs(100, seed=0)
    (x_train, y_train), (x_test, y_test) = datasets.train_test_split(x, y, 0.2, seed=3)
    assert len(x_train) == 80 and len(x_test) == 20
    label_of = {tuple(row): label for row, label in zip(x, y, strict=True)}
    split = list(zip(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), strict=True))
    assert {tuple(row): label for row, label in split} == label_of  # same rows, labels kept with them
    train, test = datasets.standardize(x_train, x_test)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train.std(axis=0), 1)
    np.testing.assert_allclose(test, (x_test - x_train.mean(0)) / x_train.std(0))
    batches = list(datasets.batch_indices(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(datasets.batch_indices(10, 4, np.random.default_rng(0)))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    with pytest.raises(ArgumentError):
        datasets.train_test_split(x, y, 1.0)
