"""``pnn.save`` / ``pnn.load`` / ``pnn.load_state``: safetensors checkpoints between every pair of backends.

Bad files (truncated, tampered, mis-shaped, pickles) raise SerializationError and change nothing;
writes are atomic.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import to_numpy

from .helpers import assert_unchanged, snapshot
from .io_helpers import (
    assert_same_outputs,
    bf16_bits,
    has_dtype,
    host_bytes,
    join_file,
    parametrize_targets,
    split_file,
    target_namespace_device,
    trained_layer,
)

pytest_generate_tests = parametrize_targets


def test_round_trip_across_backends(xp, device, dtype, target, tmp_path):
    """Train on A, save, load on B: bitwise-identical parameters and the same outputs."""
    source, x64 = trained_layer(xp, device, dtype)
    path = tmp_path / "layer.safetensors"
    pnn.save(source, path)
    target_xp, target_device = target_namespace_device(target)
    name = _backend.dtype_name(xp, dtype)
    if not has_dtype(target_xp, target_device, name):  # bfloat16 -> NumPy, float16 -> array-api-strict
        with pytest.raises(pnn.DTypeError, match=f"holds {name} tensors.*pass dtype="):
            pnn.load(path, xp=target_xp, device=target.device)
        loaded = pnn.load(path, xp=target_xp, device=target.device, dtype="float32")
        expected = _backend.from_host(to_numpy(source.weight), target_xp, target_device, loaded.dtype)
        assert host_bytes(loaded.weight) == host_bytes(expected)
        return
    loaded = pnn.load(path, xp=target_xp, device=target.device)
    assert isinstance(loaded, pnn.Linear)
    assert (loaded.in_features, loaded.out_features, loaded.bias is not None) == (4, 3, True)
    assert (loaded.xp, loaded.device, _backend.dtype_name(target_xp, loaded.dtype)) == (target_xp, target_device, name)
    for n in ("weight", "bias"):
        assert host_bytes(getattr(loaded, n)) == host_bytes(getattr(source, n)), n
    x = _backend.from_host(x64, target_xp, target_device, loaded.dtype)
    assert_same_outputs(loaded(x), source(_backend.from_host(x64, xp, device, dtype)), target_xp is xp)
    into = pnn.Linear(4, 3, xp=target_xp, device=target_device, dtype=name, seed=9)
    into.load_state_dict(pnn.load_state(path, xp=target_xp, device=target.device))
    assert host_bytes(into.weight) == host_bytes(source.weight)


def test_layer_without_bias(xp, device, dtype, tmp_path):
    source, _ = trained_layer(xp, device, dtype, bias=False)
    pnn.save(source, tmp_path / "w.safetensors")
    loaded = pnn.load(tmp_path / "w.safetensors", xp=xp, device=device)
    assert loaded.bias is None
    assert host_bytes(loaded.weight) == host_bytes(source.weight)


def test_file_layout_read_independently(xp, device, dtype, tmp_path):
    """The header and bytes follow the safetensors format, parsed here without portable_nn."""
    source, _ = trained_layer(xp, device, dtype)
    path = tmp_path / "layer.safetensors"
    pnn.save(source, path, metadata={"run": "42"})
    header, data = split_file(path.read_bytes())
    name = _backend.dtype_name(xp, dtype)
    code = {"float16": "F16", "bfloat16": "BF16", "float32": "F32", "float64": "F64"}[name]
    assert header["weight"]["dtype"] == code and header["weight"]["shape"] == [3, 4]
    begin, end = header["weight"]["data_offsets"]
    weight = to_numpy(source.weight)
    expected = bf16_bits(weight) if name == "bfloat16" else weight.astype(weight.dtype.newbyteorder("<")).tobytes()
    assert data[begin:end] == expected
    meta = header["__metadata__"]
    assert meta["run"] == "42"
    assert meta["portable_nn.version"] == pnn.__version__
    assert meta["portable_nn.class"] == "Linear"
    assert json.loads(meta["portable_nn.config"]) == {"in_features": 4, "out_features": 3, "bias": True}
    assert meta["portable_nn.dtype"] == name
    assert pnn.load_metadata(path) == meta


def test_bfloat16_file(xp, device, tmp_path):
    """A BF16 file (written here by hand): exact bfloat16 on backends that have it, explicit float32 elsewhere."""
    weight = np.array([[1.5, -2.0, 0.0078125], [3.0, -0.5, 256.0]], dtype=np.float32)  # exact in bfloat16
    header = {
        "weight": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
        "bias": {"dtype": "BF16", "shape": [2], "data_offsets": [12, 16]},
    }
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(join_file(header, bf16_bits(weight) + bf16_bits(weight[:, 0])))
    if "bfloat16" in _backend.supported_dtypes(xp, device):
        layer = pnn.load(path, xp=xp, device=device)
        assert _backend.dtype_name(xp, layer.dtype) == "bfloat16"
        np.testing.assert_array_equal(to_numpy(layer.weight), weight)
        pnn.save(layer, tmp_path / "again.safetensors")
        assert split_file((tmp_path / "again.safetensors").read_bytes())[0]["weight"]["dtype"] == "BF16"
        assert split_file((tmp_path / "again.safetensors").read_bytes())[1] == split_file(path.read_bytes())[1]
    else:
        with pytest.raises(pnn.DTypeError, match="holds bfloat16 tensors"):
            pnn.load(path, xp=xp, device=device)
        with pytest.raises(pnn.DTypeError, match="holds bfloat16 tensors"):
            pnn.load_state(path, xp=xp, device=device)
    layer = pnn.load(path, xp=xp, device=device, dtype="float32")
    np.testing.assert_array_equal(to_numpy(layer.weight), weight)
    np.testing.assert_array_equal(to_numpy(layer.bias), weight[:, 0])


def test_interop_with_the_safetensors_package(xp, device, tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package checks format compatibility")
    source, _ = trained_layer(xp, device, "float32")
    pnn.save(source, tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    np.testing.assert_array_equal(theirs["weight"], to_numpy(source.weight))
    np.testing.assert_array_equal(theirs["bias"], to_numpy(source.bias))
    rng = np.random.default_rng(0)
    state = {"weight": rng.standard_normal((2, 5)), "bias": rng.standard_normal(2)}  # float64, no metadata
    st.save_file(state, str(tmp_path / "theirs.safetensors"))
    layer = pnn.load(tmp_path / "theirs.safetensors", xp=xp, device=device)  # config inferred from the shapes
    assert (layer.in_features, layer.out_features) == (5, 2)
    assert _backend.dtype_name(xp, layer.dtype) == "float64"
    np.testing.assert_array_equal(to_numpy(layer.weight), state["weight"])


def test_save_and_load_a_state_dict_from_several_backends(xp, device, dtype, tmp_path):
    first, _ = trained_layer(xp, device, dtype)
    second = pnn.Linear(2, 2, dtype="float64", seed=1)  # NumPy
    state = {"0.weight": first.weight, "0.bias": first.bias, "1.weight": second.weight}
    pnn.save(state, tmp_path / "state.safetensors")
    loaded = pnn.load_state(tmp_path / "state.safetensors", xp="numpy", dtype="float64")
    assert list(loaded) == list(state)
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name], to_numpy(array).astype(np.float64))
    with pytest.raises(pnn.SerializationError, match=r"holds a state_dict, not a model.*load_state"):
        pnn.load(tmp_path / "state.safetensors")


# --------------------------------------------------------------------------- save errors and atomic writes


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("what", "error"),
    [
        ("integer", pnn.DTypeError),
        ("list", pnn.NamespaceError),
        ("bad_name", pnn.ArgumentError),
        ("reserved_metadata", pnn.ArgumentError),
        ("metadata_not_str", pnn.ArgumentTypeError),
        ("not_a_state", pnn.ArgumentTypeError),
    ],
)
def test_failed_save_leaves_the_old_checkpoint(xp, device, dtype, tmp_path, what, error):
    layer, _ = trained_layer(xp, device, dtype)
    path = tmp_path / "layer.safetensors"
    pnn.save(layer, path)
    before = _listing(tmp_path)
    args = {
        "integer": ({"weight": layer.weight, "steps": np.arange(3)}, None),
        "list": ({"weight": [1.0, 2.0]}, None),
        "bad_name": ({"__metadata__": layer.weight}, None),
        "reserved_metadata": (layer, {"portable_nn.version": "9"}),
        "metadata_not_str": (layer, {"epoch": 3}),
        "not_a_state": ([layer.weight], None),
    }[what]
    with pytest.raises(error):
        pnn.save(args[0], path, metadata=args[1])
    assert _listing(tmp_path) == before


def test_crash_while_writing_keeps_the_old_file_and_no_temp_file(xp, device, dtype, tmp_path, monkeypatch):
    layer, _ = trained_layer(xp, device, dtype)
    path = tmp_path / "layer.safetensors"
    pnn.save(layer, path)
    before = _listing(tmp_path)

    def disk_failure(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_failure)
    layer.step(0.5)  # new values, so a half-written file would differ
    with pytest.raises(OSError, match="No space left"):
        pnn.save(layer, path)
    monkeypatch.undo()
    assert _listing(tmp_path) == before
    pnn.save(layer, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer.safetensors"]
    assert host_bytes(pnn.load(path, xp=xp, device=device).weight) == host_bytes(layer.weight)


# --------------------------------------------------------------------------- bad files


def _good_file() -> bytes:
    layer = pnn.Linear(4, 3, seed=0)  # float32: weight bytes [0, 48), bias [48, 60)
    header = {
        "__metadata__": {"portable_nn.class": "Linear"},
        "weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
        "bias": {"dtype": "F32", "shape": [3], "data_offsets": [48, 60]},
    }
    return join_file(header, to_numpy(layer.weight).tobytes() + to_numpy(layer.bias).tobytes())


def _edit(change: Callable[[dict], None], extra: bytes = b"", cut: int = 0) -> Callable[[bytes], bytes]:
    def make(good: bytes) -> bytes:
        header, data = split_file(good)
        change(header)
        return join_file(header, data[: len(data) - cut] + extra)

    return make


def _set(tensor: str, field: str, value: object) -> Callable[[dict], None]:
    return lambda header: header[tensor].__setitem__(field, value)


def _shift_by_four(header: dict) -> None:
    header["weight"]["data_offsets"], header["bias"]["data_offsets"] = [4, 52], [52, 64]


BAD_FILES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda good: b"", "truncated"),
    "truncated_length": (lambda good: good[:5], "truncated"),
    "truncated_header": (lambda good: good[:20], "does not fit"),
    "truncated_data": (lambda good: good[:-1], "out of range"),
    "header_length_past_end": (lambda good: (len(good)).to_bytes(8, "little") + good[8:], "does not fit"),
    "header_length_huge": (lambda good: (2**63).to_bytes(8, "little") + good[8:], "does not fit"),
    "not_json": (lambda good: join_file(b"{not json", split_file(good)[1]), "corrupt safetensors header"),
    "not_utf8": (lambda good: join_file(b'{"\xff": 1}', split_file(good)[1]), "corrupt safetensors header"),
    "not_an_object": (lambda good: join_file(b"[1, 2]", split_file(good)[1]), "must be a JSON object"),
    "duplicate_tensor": (
        lambda good: join_file(
            b'{"weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}, '
            b'"weight": {"dtype": "F32", "shape": [3], "data_offsets": [48, 60]}}',
            split_file(good)[1],
        ),
        "duplicate key",
    ),
    "overlap": (_edit(_set("bias", "data_offsets", [0, 12]), extra=b""), "overlaps"),
    "hole": (
        _edit(_shift_by_four, extra=b"\0" * 4),
        "hole at byte 0",
    ),
    "out_of_range": (_edit(_set("bias", "data_offsets", [60, 72])), "out of range"),
    "begin_after_end": (_edit(_set("bias", "data_offsets", [60, 48])), "out of range"),
    "size_mismatch": (_edit(_set("weight", "shape", [3, 5])), "needs 60 bytes"),
    "trailing_bytes": (_edit(lambda h: None, extra=b"\0" * 4), "belong to none"),
    "negative_dim": (_edit(_set("weight", "shape", [-3, -4])), "invalid shape"),
    "float_dim": (_edit(_set("weight", "shape", [3.0, 4])), "invalid shape"),
    "offsets_not_a_pair": (_edit(_set("bias", "data_offsets", [48])), "invalid data_offsets"),
    "integer_dtype": (_edit(_set("bias", "dtype", "I32")), "dtype 'I32'"),
    "unknown_dtype": (_edit(_set("bias", "dtype", "F33")), "dtype 'F33'"),
    "missing_field": (_edit(lambda h: h["bias"].pop("shape")), "must have the fields"),
    "metadata_not_strings": (_edit(lambda h: h.__setitem__("__metadata__", {"epoch": 3})), "str -> str"),
    "npy_file": (lambda good: _npy_bytes(), "NumPy .npy"),
}


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones(3), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_and_nothing_is_loaded(xp, device, tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make(_good_file()))
    layer, _ = trained_layer(xp, device, "float32")
    before = snapshot(layer)
    for read in (pnn.load, pnn.load_state):
        with pytest.raises(pnn.SerializationError, match=message) as info:
            layer.load_state_dict(read(path, xp=xp, device=device))  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
    assert_unchanged(layer, before)


def test_the_good_file_of_the_bad_file_cases_loads(xp, device, tmp_path):
    """The cases above differ from a loadable file only by their defect."""
    path = tmp_path / "good.safetensors"
    path.write_bytes(_good_file())
    layer = pnn.load(path, xp=xp, device=device)
    assert host_bytes(layer.weight) == host_bytes(pnn.Linear(4, 3, seed=0).weight)


def _with_metadata(**fields: str) -> Callable[[bytes], bytes]:
    return _edit(lambda h: h["__metadata__"].update(fields))


def _config(in_features: int = 4, bias: str = "true") -> Callable[[bytes], bytes]:
    text = f'{{"in_features": {in_features}, "out_features": 3, "bias": {bias}}}'
    return _with_metadata(**{"portable_nn.config": text})


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (_config(in_features=3), "the layer config needs"),
        (_config(in_features=5), r"invalid layer config.*\(3 elements\) exceeds the 0 of 15 elements"),
        (_config(bias="false"), r"needs tensors \['weight'\]"),
        (_config(in_features=-4), "invalid layer config"),
        (_with_metadata(**{"portable_nn.config": "{in_features: 4"}), "unreadable layer config"),
        (_with_metadata(**{"portable_nn.class": "Sequential"}), "holds a Sequential"),
        (_edit(lambda h: (h.pop("weight"), h["bias"].__setitem__("data_offsets", [0, 12])), cut=48), "'weight'"),
    ],
    ids=[
        "wrong-in-features",
        "more-than-the-file-holds",
        "unexpected-bias",
        "negative-size",
        "unreadable-config",
        "not-a-linear",
        "no-weight",
    ],
)
def test_file_that_does_not_hold_the_layer_its_config_says(xp, device, tmp_path, case, message):
    path = tmp_path / "misshaped.safetensors"
    path.write_bytes(case(_good_file()))
    with pytest.raises(pnn.SerializationError, match=message):
        pnn.load(path, xp=xp, device=device)


def test_misshaped_state_is_refused_by_load_state_dict(xp, device, dtype, tmp_path):
    pnn.save(pnn.Linear(5, 3, seed=0), tmp_path / "other.safetensors")
    layer, _ = trained_layer(xp, device, dtype)
    before = snapshot(layer)
    with pytest.raises(pnn.ShapeError, match=r"weight: expected shape \(3, 4\), got \(3, 5\)"):
        layer.load_state_dict(pnn.load_state(tmp_path / "other.safetensors", xp=xp, device=device, dtype=dtype))
    assert_unchanged(layer, before)


# --------------------------------------------------------------------------- pickles are never executed


class _CreatesFile:
    """Unpickling this runs ``open(path, "x")``, creating the file: the tell-tale of executed pickle code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.path), "x")


def _zip_like_torch_save(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


@pytest.mark.parametrize("container", ["pickle-protocol-2", "pickle-protocol-5", "torch-save-zip"])
def test_pickle_payload_is_refused_without_running_it(xp, tmp_path, container):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(sentinel), protocol=5 if container.endswith("5") else 2)
    path = tmp_path / "model.safetensors"
    path.write_bytes(_zip_like_torch_save(payload) if container == "torch-save-zip" else payload)
    expected = "torch.save" if container == "torch-save-zip" else "Python pickle"
    for read in (pnn.load, pnn.load_state, pnn.load_metadata):
        with pytest.raises(pnn.SerializationError, match=f"{expected}.*never unpickles"):
            read(path, xp=xp) if read is not pnn.load_metadata else read(path)
    assert not sentinel.exists(), "the pickle payload ran"
    pickle.loads(payload).close()  # the payload is live: unpickling it does create the file
    assert sentinel.exists()


def test_real_torch_save_file_is_refused_with_a_hint(tmp_path):
    torch = pytest.importorskip("torch", reason="needs torch to write a torch.save file")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(4, 3).state_dict(), path)
    with pytest.raises(pnn.SerializationError, match=r"torch\.save.*torch\.load\(path, weights_only=True\)"):
        pnn.load(path)
