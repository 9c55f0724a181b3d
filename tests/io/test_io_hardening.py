"""Checkpoint files under hostile conditions: odd paths, corrupt or oversized headers, crashes, other writers.

Host-only (NumPy): what is tested here is file handling, the same for every backend.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.io import _atomic_write as atomic_write
from portable_nn.io._model_config import MAX_DEPTH

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and modes")


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a blocking open of a FIFO, an endless read of /dev/zero)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def write_raw(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def f32(shape: list[int], begin: int = 0, **extra: object) -> dict[str, object]:
    size = int(np.prod(shape)) * 4
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + size], **extra}


READERS = [
    pytest.param(lambda p: pnn.load(p), id="load"),
    pytest.param(lambda p: pnn.load_state(p), id="load_state"),
    pytest.param(pnn.load_metadata, id="load_metadata"),
]


# --------------------------------------------------------------------------- what is read


@pytest.mark.parametrize("read", READERS)
def test_fifo_is_refused_without_blocking(tmp_path, read):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(pnn.SerializationError, match=f"{fifo} is a FIFO"):
        read(fifo)


@pytest.mark.parametrize("read", READERS)
def test_device_and_directory_are_refused(tmp_path, read):
    with deadline(10), pytest.raises(pnn.SerializationError, match="/dev/zero is not a regular file"):
        read("/dev/zero")
    with pytest.raises(pnn.SerializationError, match=f"{tmp_path} is a directory"):
        read(tmp_path)


def test_header_length_that_starts_like_a_pickle_is_still_a_header(tmp_path):
    """A valid header of 640..1535 bytes starts with 0x80 0x02..0x05, a pickle's opening bytes."""
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    header = {"__metadata__": {"pad": "x" * 1000}, "weight": f32([2, 3])}
    text = json.dumps(header).encode()
    text += b" " * (1152 - len(text))
    path = write_raw(tmp_path / "m.safetensors", text, weight.tobytes())
    assert path.read_bytes()[:2] == b"\x80\x04"
    np.testing.assert_array_equal(pnn.load(path).weight, weight)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, "has dtype"),
        ({"w": {"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}}, "has dtype"),
        ({"w": {"dtype": "F32", "shape": [2**63, 0], "data_offsets": [0, 0]}}, "invalid shape"),
        ({"w": {"dtype": "F32", "shape": [2**62, 2**62, 0], "data_offsets": [0, 0]}}, "too large"),
        ({"w": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}}, "invalid shape"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 2**64]}}, "invalid data_offsets"),
        (b"{" + b'"a":' * 0 + b'"w":' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
    ],
    ids=["dtype-list", "dtype-object", "dim-2**63", "elements-overflow", "65-dims", "offset-2**64", "deep-json"],
)
def test_hostile_header_is_a_serialization_error(tmp_path, header, message):
    path = write_raw(tmp_path / "bad.safetensors", header, b"\0" * 4 if not isinstance(header, bytes) else b"")
    if isinstance(header, dict) and header["w"]["data_offsets"][1] == 0:
        path = write_raw(tmp_path / "bad.safetensors", header)
    for read in (pnn.load_state, pnn.load_metadata, pnn.load):
        with pytest.raises(pnn.SerializationError, match=message):
            read(path)


def test_header_length_is_checked_against_the_real_file_size(tmp_path):
    path = write_raw(tmp_path / "short.safetensors", {"w": f32([1000])}, b"\0" * 8)
    with pytest.raises(pnn.SerializationError, match="out of range of the 8 data bytes"):
        pnn.load_metadata(path)
    path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(pnn.SerializationError, match="does not fit in 10 bytes"):
        pnn.load_metadata(path)


def test_empty_giant_shape_allocates_nothing(tmp_path):
    """[10**12, 0] holds no byte: it loads as an empty array (nothing allocated) or is refused, never allocated.

    As a model it would be ``Linear(0, 10**12)``, which fails at its first forward pass: ``load`` refuses it
    (a dimension over the file's size and 2**20), inferred or declared by a config.
    """
    header = {"weight": f32([10**12, 0])}
    path = write_raw(tmp_path / "giant.safetensors", header)
    assert pnn.load_state(path)["weight"].shape == (10**12, 0)
    with pytest.raises(pnn.SerializationError, match=r"weight has shape \(1000000000000, 0\) in a \d+-byte file"):
        pnn.load(path)
    for features in ((0, 5), (0, 10**12)):
        config = json.dumps({"in_features": features[0], "out_features": features[1], "bias": False})
        header["__metadata__"] = {"portable_nn.class": "Linear", "portable_nn.config": config}
        with pytest.raises(pnn.SerializationError, match=r"weight has shape \(1000000000000, 0\) in a"):
            pnn.load(write_raw(path, header))


def test_config_asking_for_more_than_the_file_holds_allocates_nothing(tmp_path):
    """A Sequential config with a 10**6 x 10**6 Linear next to a 4-element file: refused before any allocation."""
    layers = [{"class": "Linear", "config": {"in_features": 10**6, "out_features": 10**6, "bias": True}}]
    meta = {"portable_nn.class": "Sequential", "portable_nn.config": json.dumps({"layers": layers})}
    path = write_raw(tmp_path / "big.safetensors", {"__metadata__": meta, "0.weight": f32([1])}, b"\0" * 4)
    with pytest.raises(pnn.SerializationError, match=r"exceeds the 1 of 1 elements"):
        pnn.load(path)


def test_deep_config_and_unknown_class_are_refused(tmp_path):
    deep = {"layers": [{"class": "Sequential", "config": {"layers": []}}]}
    for _ in range(100):
        deep = {"layers": [{"class": "Sequential", "config": deep}]}
    meta = {"portable_nn.class": "Sequential", "portable_nn.config": json.dumps(deep)}
    path = write_raw(tmp_path / "deep.safetensors", {"__metadata__": meta})
    with pytest.raises(pnn.SerializationError, match=f"nested deeper than {MAX_DEPTH}"):
        pnn.load(path)
    meta = {"portable_nn.class": "evil.Module", "portable_nn.config": "{}"}
    with pytest.raises(pnn.SerializationError, match=r"unknown module class 'evil\.Module'"):
        pnn.load(write_raw(tmp_path / "unknown.safetensors", {"__metadata__": meta}))


# --------------------------------------------------------------------------- interop with the safetensors package


def test_null_metadata_and_extra_entry_fields_are_accepted_as_safetensors_does(tmp_path):
    weight = np.ones((2, 3), dtype=np.float32)
    path = write_raw(
        tmp_path / "m.safetensors", {"__metadata__": None, "weight": f32([2, 3], note="extra")}, weight.tobytes()
    )
    st = pytest.importorskip("safetensors.numpy")
    np.testing.assert_array_equal(st.load_file(str(path))["weight"], weight)  # the reference accepts it too
    assert pnn.load_metadata(path) == {}
    np.testing.assert_array_equal(pnn.load(path).weight, weight)


@pytest.mark.parametrize(
    ("state", "metadata"),
    [({"w\ud800": np.ones(2)}, None), ({"w": np.ones(2)}, {"k\udfff": "v"}), ({"w": np.ones(2)}, {"k": "\ud800"})],
    ids=["tensor-name", "metadata-key", "metadata-value"],
)
def test_lone_surrogates_are_refused_not_written(tmp_path, state, metadata):
    with pytest.raises(pnn.ArgumentError, match="not valid Unicode"):
        pnn.save(state, tmp_path / "s.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_round_trip_through_the_safetensors_package_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model = pnn.Sequential(pnn.Linear(3, 4, seed=0), pnn.Tanh(), pnn.Linear(4, 2, seed=1))
    ours = tmp_path / "ours.safetensors"
    pnn.save(model, ours, metadata={"note": "é"})
    theirs = st.load_file(str(ours))
    assert sorted(theirs) == sorted(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(theirs[key], value)
    rewritten = tmp_path / "theirs.safetensors"
    st.save_file(theirs, str(rewritten), metadata=pnn.load_metadata(ours))
    again = pnn.load(rewritten)
    assert isinstance(again, pnn.Sequential) and again.get_config() == model.get_config()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)


# --------------------------------------------------------------------------- where and how save writes


@pytest.fixture(params=["O_TMPFILE", "named-temp-file"])
def temp_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a save test with Linux's anonymous temporary file and with the portable named fallback."""
    if request.param == "O_TMPFILE" and atomic_write._open_anonymous(Path(".")) is None:
        pytest.skip("no O_TMPFILE here (not Linux, or the file system lacks it)")
    if request.param == "named-temp-file":
        monkeypatch.setattr(atomic_write, "_open_anonymous", lambda directory: None)
    return str(request.param)


def test_save_over_a_symlink_writes_its_target(tmp_path, temp_kind):
    real = tmp_path / "real.safetensors"
    pnn.save(pnn.Linear(2, 2, seed=0), real)
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    layer = pnn.Linear(2, 2, seed=1)
    pnn.save(layer, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(pnn.load(real).weight, layer.weight)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "trailing-slash"])
def test_save_refuses_what_is_not_a_regular_file_up_front(tmp_path, kind):
    target = tmp_path / {"fifo": "fifo", "device": "null", "directory": "folder", "trailing-slash": "folder"}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":  # a private null device node: a broken save must not replace the system's /dev/null
        try:
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except (PermissionError, AttributeError):
            pytest.skip("creating a device node needs privileges")
    else:
        target.mkdir()
    before = sorted(tmp_path.iterdir())
    with deadline(10), pytest.raises(pnn.SerializationError, match="cannot save to"):
        pnn.save(pnn.Linear(2, 2, seed=0), f"{target}/" if kind == "trailing-slash" else target)
    assert sorted(tmp_path.iterdir()) == before
    assert not stat.S_ISREG(os.stat(target).st_mode)


def test_resave_keeps_the_file_mode(tmp_path, temp_kind):
    path = tmp_path / "secret.safetensors"
    pnn.save(pnn.Linear(2, 2, seed=0), path)
    path.chmod(0o600)
    pnn.save(pnn.Linear(2, 2, seed=1), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_long_file_name_saves(tmp_path, temp_kind):
    path = tmp_path / ("m" * 232 + ".safetensors")  # 244 characters, NAME_MAX is 255
    pnn.save(pnn.Linear(2, 2, seed=0), path)
    assert pnn.load(path).in_features == 2
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_errors_name_the_users_path_not_a_temporary_file(tmp_path, temp_kind, monkeypatch):
    path = tmp_path / "m.safetensors"

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left") as info:
        pnn.save(pnn.Linear(2, 2, seed=0), path)
    assert info.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []


def test_a_process_killed_mid_write_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "m.safetensors"
    pnn.save(pnn.Linear(2, 2, seed=0), path)
    script = textwrap.dedent(
        f"""
        import os, portable_nn as pnn
        os.fsync = lambda fd: os._exit(3)  # the process dies after writing, before the rename
        pnn.save(pnn.Linear(2, 2, seed=1), {str(path)!r})
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    np.testing.assert_array_equal(pnn.load(path).weight, pnn.Linear(2, 2, seed=0).weight)


def test_stale_temporary_files_of_a_crashed_save_are_removed(tmp_path, temp_kind):
    path = tmp_path / "m.safetensors"
    stale = tmp_path / ".m.safetensors.0123456789abcdef.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".other.safetensors.0123456789abcdef.tmp"
    other.write_bytes(b"not ours")
    pnn.save(pnn.Linear(2, 2, seed=0), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])


def test_a_killed_save_with_named_temp_files_is_cleaned_by_the_next_save(tmp_path):
    path = tmp_path / "m.safetensors"
    script = textwrap.dedent(
        f"""
        import os, portable_nn as pnn
        from portable_nn.io import _atomic_write as atomic_write
        atomic_write._open_anonymous = lambda directory: None  # the portable fallback
        os.fsync = lambda fd: os._exit(3)
        pnn.save(pnn.Linear(2, 2, seed=1), {str(path)!r})
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 3
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(".m.safetensors.") and leftover.name.endswith(".tmp")
    pnn.save(pnn.Linear(2, 2, seed=0), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_unknown_nested_class_is_found_before_anything_is_built(tmp_path, monkeypatch):
    layers = [
        {"class": "Linear", "config": {"in_features": 2, "out_features": 2, "bias": False}},
        {"class": "Sequential", "config": {"layers": [{"class": "my.Missing", "config": {}}]}},
    ]
    meta = {"portable_nn.class": "Sequential", "portable_nn.config": json.dumps({"layers": layers})}
    path = write_raw(tmp_path / "m.safetensors", {"__metadata__": meta, "0.weight": f32([2, 2])}, b"\0" * 16)
    built = []
    monkeypatch.setattr(pnn.Linear, "from_config", classmethod(lambda cls, *a, **k: built.append(cls)))
    with pytest.raises(pnn.SerializationError, match=r"unknown module class 'my\.Missing'"):
        pnn.load(path)
    assert built == []
