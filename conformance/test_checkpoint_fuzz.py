"""Fuzzing checkpoint files: every mutation of a valid file loads correctly or raises SerializationError.

Mutations: bit flips, truncations, inserted bytes, and header edits (a tensor's dtype, shape or
offsets, a metadata value, the config) with hostile values. Each read must finish quickly and
allocate little (traced with tracemalloc, which sees NumPy's buffers).
"""

from __future__ import annotations

import contextlib
import json
import time
import tracemalloc
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import portable_nn as pnn


def _valid_file(tmp: Any) -> bytes:
    model = pnn.Sequential(pnn.Linear(3, 4, seed=0), pnn.ReLU(), pnn.Sequential(pnn.Linear(4, 2, seed=1)))
    opt = pnn.SGD(model, lr=0.1, momentum=0.9)
    x = np.ones((2, 3), dtype=np.float32)
    model.backward(model(x))
    opt.step()
    pnn.save(model, tmp, metadata={"run": "fuzz"}, optimizer=opt)
    with open(tmp, "rb") as fh:
        return fh.read()


def _header_and_data(data: bytes) -> tuple[dict[str, Any], bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


HOSTILE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**64, 10**12, -1, 0, 1, 1.5, True, None, "F32", "BF16", "I64", "", [], {}]),
    st.lists(st.integers(min_value=-2, max_value=2**64), max_size=70),
    st.text(max_size=8),
)


@st.composite
def mutations(draw: Any, good: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "entry", "metadata"]))
    if kind == "flip":
        data = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "truncate":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "insert":
        at = draw(st.integers(0, len(good)))
        return good[:at] + draw(st.binary(min_size=1, max_size=16)) + good[at:]
    header, data = _header_and_data(good)
    if kind == "entry":
        name = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))
        header[name][field] = draw(HOSTILE)
    else:
        key = draw(st.sampled_from(sorted(header["__metadata__"])))
        value = header["__metadata__"][key]
        header["__metadata__"][key] = draw(
            st.one_of(
                st.just(value.replace("4", draw(st.sampled_from(["0", "9", "400000000", "-4", "4.0"])))),
                st.just(value.replace("Linear", draw(st.sampled_from(["ReLU", "Sequential", "Nope"])))),
                st.just(value[: len(value) // 2]),
            )
        )
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def _read_all(path: str) -> None:
    for read in (
        pnn.load_metadata,
        lambda p: pnn.load_state(p, dtype="float64"),
        lambda p: pnn.load(p, dtype="float64"),
        lambda p: pnn.load_optimizer(p, pnn.load(p, dtype="float64"), cast=True),
    ):
        with contextlib.suppress(pnn.SerializationError):
            read(path)


def test_mutated_checkpoints_load_or_raise_serialization_error(tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    good = _valid_file(folder / "good.safetensors")
    path = str(folder / "mutated.safetensors")
    _read_all(str(folder / "good.safetensors"))  # the unmutated file loads fully (no exception at all)
    pnn.load_optimizer(folder / "good.safetensors", pnn.load(folder / "good.safetensors"))

    @given(mutations(good))
    def check(mutated: bytes) -> None:
        with open(path, "wb") as fh:
            fh.write(mutated)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            _read_all(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.perf_counter() - start < 5, "a read took more than 5 s"
        assert peak < 4 * 2**20, f"reading a {len(mutated)}-byte file allocated {peak} bytes"

    check()
