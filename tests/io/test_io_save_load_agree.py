"""What ``save`` writes, ``load`` reads: every hostile value is refused by ``save`` up front (a typed error,
nothing written) or read back exactly; the bounds are the same on both sides (issue 26).

Host-only (NumPy): the rules are about files and configs, the same for every backend.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn.io import _model_config as model_config
from portable_nn.io import _safetensors_format as safetensors_format
from portable_nn.io import registry
from portable_nn.nn.sequential import MAX_NESTING

# monkeypatch and tmp_path_factory are used idempotently inside the examples
EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_raw(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def saved_or_refused(save: Any, path: Path) -> bool:
    """True if ``save()`` wrote ``path``; False if it raised a typed error and wrote nothing."""
    try:
        save()
    except pnn.PortableNNError:
        assert not path.exists(), "a refused save left a file"
        return False
    return True


def nested_sequential(depth: int) -> pnn.Sequential:
    model: pnn.Module = pnn.Linear(2, 2, seed=0)
    for _ in range(depth):
        model = pnn.Sequential(model, pnn.ReLU())
    assert isinstance(model, pnn.Sequential)
    return model


@pnn.register("tests.io_agree.Nested")
class Nested(pnn.Module):
    """A parameterless layer whose config is any JSON value (the hostile configs of a user layer)."""

    def __init__(self, value: Any = None, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32") -> None:
        super().__init__(xp=xp, device=device, dtype=dtype)
        self.value = value

    def functional_forward(self, params: Any, x: Any, call: Any = None) -> tuple[Any, None]:
        return x, None

    def functional_backward(
        self, params: Any, saved: Any, grad_output: Any, need_input_grad: bool = True, call: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        return grad_output, {}

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


# --------------------------------------------------------------------------- the header budget


@EXAMPLES
@given(extra=st.integers(-64, 64))
def test_metadata_over_the_header_budget_is_refused_before_writing(tmp_path_factory, monkeypatch, extra):
    """Metadata around the budget (scaled down from 100 MB): saved and read back, or refused with nothing written."""
    monkeypatch.setattr(safetensors_format, "MAX_HEADER", 4096)
    path = tmp_path_factory.mktemp("budget") / "model.safetensors"
    metadata = {"label": "x" * (3800 + extra * 8)}
    if saved_or_refused(lambda: pnn.save(pnn.Linear(2, 2, seed=0), path, metadata=metadata), path):
        assert pnn.load_metadata(path)["label"] == metadata["label"]


def test_metadata_over_the_real_budget_names_it(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(pnn.SerializationError, match=r"over the 100000000 that safetensors readers accept"):
        pnn.save(pnn.Linear(2, 2, seed=0), path, metadata={"label": "x" * safetensors_format.MAX_HEADER})
    assert path.read_bytes() == b"previous"


# --------------------------------------------------------------------------- nesting


@EXAMPLES
@given(depth=st.integers(1, MAX_NESTING))
@example(depth=21)  # the config went past 64 levels: saved, then refused by load
@example(depth=MAX_NESTING)
def test_every_sequential_that_can_be_built_round_trips(tmp_path_factory, depth):
    model = nested_sequential(depth)
    path = tmp_path_factory.mktemp("nest") / "model.safetensors"
    pnn.save(model, path)
    loaded = pnn.load(path)
    assert loaded.get_config() == model.get_config()
    x = np.ones((1, 2), dtype=np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert repr(loaded) == repr(model)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 500])
def test_sequential_nested_too_deeply_is_a_typed_error_not_a_recursion_error(depth):
    with pytest.raises(pnn.ArgumentError, match=f"nest at most {MAX_NESTING} deep"):
        nested_sequential(depth)


def test_a_file_nesting_sequential_too_deeply_is_refused(tmp_path):
    entry: dict[str, Any] = {"class": "Linear", "config": {"in_features": 1, "out_features": 1, "bias": False}}
    for _ in range(MAX_NESTING + 5):
        entry = {"class": "Sequential", "config": {"layers": [entry]}}
    meta = {"portable_nn.class": "Sequential", "portable_nn.config": json.dumps(entry["config"])}
    path = write_raw(tmp_path / "deep.safetensors", {"__metadata__": meta, "0." * 69 + "weight": f32([1, 1])}, bytes(4))
    with pytest.raises(pnn.SerializationError, match=f"nest at most {MAX_NESTING} deep"):
        pnn.load(path)


def f32(shape: list[int], begin: int = 0) -> dict[str, Any]:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + math.prod(shape) * 4]}


def nested_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@EXAMPLES
@given(depth=st.integers(0, 3 * model_config.MAX_DEPTH))
@example(depth=70)  # past the old 64 levels: saved, then refused by load
@example(depth=model_config.MAX_DEPTH - 2)
@example(depth=model_config.MAX_DEPTH - 1)
@example(depth=2000)  # json.dumps' own RecursionError
def test_a_user_config_nested_deeply_is_saved_and_read_or_refused_up_front(tmp_path_factory, depth):
    path = tmp_path_factory.mktemp("user") / "model.safetensors"
    model = pnn.Sequential(pnn.Linear(2, 2, seed=0), Nested(nested_list(depth)))
    if saved_or_refused(lambda: pnn.save(model, path), path):
        assert pnn.load(path)[1].value == model[1].value
    else:
        assert depth > model_config.MAX_DEPTH - 10  # refused only past the documented bound


# --------------------------------------------------------------------------- bounded parsing


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{},:"\\ab\n'),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(alphabet='[]{},:"\\a'), inner, max_size=6),
    max_leaves=60,
)


@EXAMPLES
@given(value=JSON)
def test_the_node_bound_is_the_same_when_saving_and_loading(tmp_path_factory, monkeypatch, value):
    """With a small MAX_NODES, a user config (strings full of JSON punctuation) is read back or refused by save."""
    monkeypatch.setattr(model_config, "MAX_NODES", 40)
    path = tmp_path_factory.mktemp("nodes") / "model.safetensors"
    model = pnn.Sequential(pnn.Linear(2, 2, seed=0), Nested(value))
    if saved_or_refused(lambda: pnn.save(model, path), path):
        assert pnn.load(path)[1].value == value


def test_a_huge_config_of_empty_objects_is_refused_in_memory_proportional_to_it(tmp_path):
    """1,000,001 empty objects (3 MB): refused before parsing; parsing them cost ~75 MB (1.47 GB for 30 MB)."""
    text = "[" + "{}," * model_config.MAX_NODES + "{}]"
    meta = {"portable_nn.class": "Sequential", "portable_nn.config": text}
    path = write_raw(tmp_path / "objects.safetensors", {"__metadata__": meta})
    tracemalloc.start()
    try:
        with pytest.raises(pnn.SerializationError) as refused:
            pnn.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * len(text), f"peak {peak / 1e6:.1f} MB for a {len(text) / 1e6:.1f} MB config"
    assert "more than the 1000000 a config may hold" in str(refused.value)


def reference_items(value: Any) -> int:
    """The items json_items counts, from the parsed value: each value and key, an empty container twice."""
    if isinstance(value, dict):
        return 1 + sum(1 + reference_items(v) for v in value.values()) + (not value)
    if isinstance(value, list):
        return 1 + sum(reference_items(v) for v in value) + (not value)
    return 1


@EXAMPLES
@given(value=JSON, limit=st.integers(0, 120), compact=st.booleans())
def test_json_items_counts_without_parsing_as_far_as_the_limit_needs(value, limit, compact):
    text = json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=compact)
    counted, true = safetensors_format.json_items(text, limit), reference_items(value)
    assert counted >= true if counted <= limit else true > limit


@EXAMPLES
@given(tensors=st.integers(1, 12), label=st.text(alphabet="[{,:a", max_size=30))
def test_the_header_item_bound_is_the_same_when_saving_and_loading(tmp_path_factory, monkeypatch, tensors, label):
    monkeypatch.setattr(safetensors_format, "MAX_HEADER_ITEMS", 80)
    path = tmp_path_factory.mktemp("items") / "state.safetensors"
    state = {f"t{i}": np.zeros((1, 2), dtype=np.float32) for i in range(tensors)}
    if saved_or_refused(lambda: pnn.save(state, path, metadata={"label": label}), path):
        assert sorted(pnn.load_state(path)) == sorted(state) and pnn.load_metadata(path)["label"] == label


def test_a_huge_header_of_empty_lists_is_refused_in_memory_proportional_to_it(tmp_path):
    """1,000,001 empty lists in a tensor entry (3 MB): refused before parsing (parsing them cost ~140 MB)."""
    count = safetensors_format.MAX_HEADER_ITEMS // 2
    path = tmp_path / "lists.safetensors"
    text = ('{"x":[' + "[]," * count + "[]]}").encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    tracemalloc.start()
    try:
        with pytest.raises(pnn.SerializationError) as refused:
            pnn.load_metadata(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * len(text), f"peak {peak / 1e6:.1f} MB for a {len(text) / 1e6:.1f} MB header"
    assert f"more than the {safetensors_format.MAX_HEADER_ITEMS} portable_nn reads" in str(refused.value)


@pytest.mark.parametrize(
    "config",
    [
        '{"in_features": 2, "in_features": 3, "out_features": 2, "bias": true}',
        '{"in_features": 2, "out_features": 2, "bias": true, "bias": false}',
    ],
)
def test_duplicate_keys_in_a_config_are_refused_as_in_the_header(tmp_path, config):
    meta = {"portable_nn.class": "Linear", "portable_nn.config": config}
    path = write_raw(tmp_path / "dup.safetensors", {"__metadata__": meta, "weight": f32([2, 2])}, bytes(16))
    with pytest.raises(pnn.SerializationError, match="duplicate key"):
        pnn.load(path)


def test_duplicate_keys_in_an_optimizer_record_are_refused(tmp_path):
    model = pnn.Linear(2, 2, seed=0)
    path = tmp_path / "run.safetensors"
    pnn.save(model, path, optimizer=pnn.SGD(model, lr=0.1))
    header = pnn.load_metadata(path)
    record = header["portable_nn.optimizer"]
    hostile = record.replace('"step": 0', '"step": 0, "step": 5')
    assert hostile != record
    meta = {**header, "portable_nn.optimizer": hostile}
    data = pnn.load_state(path)
    entries = {"weight": f32([2, 2]), "bias": f32([2], 16)}
    raw = np.concatenate([data["weight"].ravel(), data["bias"]]).astype("<f4").tobytes()
    with pytest.raises(pnn.SerializationError, match="duplicate key"):
        pnn.load_optimizer(write_raw(tmp_path / "dup.safetensors", {"__metadata__": meta, **entries}, raw), model)


# --------------------------------------------------------------------------- declared sizes


@pytest.mark.parametrize(
    "out_features", [1, model_config.MAX_EMPTY_DIMENSION, model_config.MAX_EMPTY_DIMENSION + 1, 10**18]
)
def test_an_empty_layer_declaring_a_huge_size_is_refused_by_save_and_by_load(tmp_path, out_features):
    """Linear(0, 10**18) holds no byte and fails at its first forward: refused on both sides, never half-used."""
    path = tmp_path / "empty.safetensors"
    if saved_or_refused(lambda: pnn.save(pnn.Linear(0, out_features, bias=False), path), path):
        assert pnn.load(path).weight.shape == (out_features, 0)
    else:
        assert out_features > model_config.MAX_EMPTY_DIMENSION
    config = json.dumps({"in_features": 0, "out_features": out_features, "bias": False})
    meta = {"portable_nn.class": "Linear", "portable_nn.config": config}
    raw = write_raw(tmp_path / "raw.safetensors", {"__metadata__": meta, "weight": f32([out_features, 0])})
    if out_features > model_config.MAX_EMPTY_DIMENSION:
        with pytest.raises(pnn.SerializationError, match=r"in a \d+-byte file: a dimension over"):
            pnn.load(raw)
    else:
        assert pnn.load(raw).weight.shape == (out_features, 0)


# --------------------------------------------------------------------------- optimizer state


LRS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-3.5e-18, -1.9e-18, 0.0, -0.0, 1e-300])


@EXAMPLES
@given(lr=LRS, group_lr=LRS)
@example(lr=-3.5e-18, group_lr=0.1)  # LinearLR ended at 0, by rounding
@example(lr=0.1, group_lr=-3.5e-18)
def test_load_optimizer_accepts_exactly_what_load_state_dict_accepts(tmp_path_factory, lr, group_lr):
    model = pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.Linear(2, 1, seed=1))
    opt = pnn.SGD(model, lr=0.1, momentum=0.9, param_groups=[{"params": ["1.weight"], "lr": 0.2}])
    opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr, group_lr  # as a schedule writes them
    try:
        pnn.SGD(model, lr=0.5, param_groups=[{"params": ["1.weight"]}]).load_state_dict(opt.state_dict())
        in_memory = True
    except pnn.PortableNNError:
        in_memory = False
    path = tmp_path_factory.mktemp("opt") / "run.safetensors"
    if not saved_or_refused(lambda: pnn.save(model, path, optimizer=opt), path):
        assert not in_memory or not all(map(math.isfinite, (lr, group_lr)))  # JSON holds no nan/inf
        return
    try:
        loaded = pnn.load_optimizer(path, model)
    except pnn.SerializationError:
        assert not in_memory, "load_optimizer refused a state load_state_dict accepts"
        return
    assert in_memory, "load_optimizer accepted a state load_state_dict refuses"
    assert [g["lr"] for g in loaded.param_groups] == [lr, group_lr]


# --------------------------------------------------------------------------- registry


def test_registering_a_class_under_a_second_name_keeps_the_first(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_MODULES", dict(registry._MODULES))
    path = tmp_path / "linear.safetensors"
    pnn.save(pnn.Linear(2, 3, seed=0), path)
    assert pnn.register("my.Dense")(pnn.Linear) is pnn.Linear
    assert registry.lookup("Linear") is pnn.Linear and registry.lookup("my.Dense") is pnn.Linear
    assert pnn.registered_name(pnn.Linear) == "Linear"  # what save records stays the first name
    assert isinstance(pnn.load(path), pnn.Linear)  # checkpoints written before the alias still load
    meta = {"portable_nn.class": "my.Dense", "portable_nn.config": json.dumps(pnn.Linear(2, 3).get_config())}
    entries = {"weight": f32([3, 2]), "bias": f32([3], 24)}
    alias = write_raw(tmp_path / "alias.safetensors", {"__metadata__": meta, **entries}, bytes(36))
    assert isinstance(pnn.load(alias), pnn.Linear)
