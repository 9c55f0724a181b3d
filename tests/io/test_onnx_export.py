"""export_onnx: the exported graph, run in onnxruntime, gives the NumPy forward's numbers at batch sizes 1 to 1024.

Oracle: the float64 NumPy forward of the same model (portable_nn on NumPy, itself checked against
einsum oracles in conformance/). Every built-in layer with a forward is exported (a test checks that
the lists below cover every registered built-in module class; a model starting with an Embedding takes int64
indices). Batch sizes share one session per model: the batch is a symbolic dimension of the graph.
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.io.registry import lookup, registered_names
from portable_nn.testing import tolerance

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ndonnx")
pytest.importorskip("onnx")

BATCHES = (1, 2, 7, 64, 1024)


def _models(dtype: str = "float32") -> dict[str, pnn.Module]:
    kw = {"dtype": dtype}
    return {
        "Linear": pnn.Linear(6, 3, seed=0, **kw),
        "Linear-no-bias": pnn.Linear(6, 3, bias=False, seed=1, **kw),
        "ReLU": pnn.ReLU(),
        "Tanh": pnn.Tanh(),
        "Sigmoid": pnn.Sigmoid(),
        "Sequential": pnn.Sequential(
            pnn.Linear(6, 16, seed=2, **kw),
            pnn.ReLU(),
            pnn.Linear(16, 8, seed=3, **kw),
            pnn.Tanh(),
            pnn.Linear(8, 3, seed=4, **kw),
            pnn.Sigmoid(),
        ),
        "Dropout": pnn.Dropout(0.5, seed=5),  # exported in eval mode: the identity
        "BatchNorm1d": pnn.BatchNorm1d(6, **kw),
        "LayerNorm": pnn.LayerNorm(6, **kw),
    }


def _index_models(dtype: str = "float32") -> dict[str, pnn.Module]:
    """Models whose input is int64 indices (``export_onnx``'s default input dtype for a model starting with an
    Embedding), exported in eval mode: Dropout is the identity."""
    kw = {"dtype": dtype}
    return {
        "Embedding": pnn.Embedding(10, 6, padding_idx=0, seed=6, **kw),
        "Embedding-Sequential": pnn.Sequential(
            pnn.Embedding(10, 6, seed=7, **kw),
            pnn.Dropout(0.5, seed=8),
            pnn.LayerNorm(6, **kw),
            pnn.Linear(6, 3, seed=9, **kw),
            pnn.Tanh(),
        ),
    }


#: What each model's exported graph was compared against, for the report: name -> batch -> max |Δ|.
MEASURED: dict[str, dict[int, float]] = {}


def _run(path, x):
    (y,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    return y


def test_every_built_in_layer_is_exported():
    built_in = {name for name in registered_names() if lookup(name).__module__.startswith("portable_nn.")}
    covered = {type(model).__name__ for model in (*_models().values(), *_index_models().values())}
    assert built_in <= covered, f"add the built-in layers {sorted(built_in - covered)} to _models()"


@pytest.mark.parametrize("name", list(_models()))
def test_exported_forward_matches_numpy_at_every_batch_size(name, tmp_path):
    model = _models()[name]
    warm_up = np.random.default_rng(9).standard_normal((8, 6)).astype(np.float32)
    model(warm_up)  # train mode: BatchNorm's running statistics move away from zeros and ones
    model.eval()
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    path = tmp_path / f"{name}.onnx"
    proto = pnn.export_onnx(model, path, input_shape=(None, 6))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # a symbolic batch
    session = ort.InferenceSession(str(path))
    rtol, atol = tolerance("float32")
    oracle = _models("float64")[name]  # the same parameters, computing in float64
    oracle.load_state_dict({k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in before.items()})
    oracle.eval()
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        x = rng.standard_normal((batch, 6)).astype(np.float32)
        (got,) = session.run(None, {"input": x})
        expected = np.asarray(oracle(x.astype(np.float64)))
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"{name} at batch {batch}")
        MEASURED.setdefault(name, {})[batch] = float(np.max(np.abs(got - expected)))
    after = model.state_dict()  # the model itself is left as it was (still NumPy float32, same values)
    assert all(np.array_equal(np.asarray(after[k]), before[k]) and after[k].dtype == before[k].dtype for k in before)


@pytest.mark.parametrize("name", list(_index_models()))
def test_an_integer_input_model_exports_its_eval_mode_graph(name, tmp_path):
    """int64 indices of shape (batch, 5) (the batch symbolic), against the float64 NumPy forward in eval mode."""
    model = _index_models()[name]
    rng = np.random.default_rng(4)
    model(rng.integers(0, 10, (4, 5)))  # train mode: the dropout stream advances; the export is eval mode anyway
    path = tmp_path / f"{name}.onnx"
    proto = pnn.export_onnx(model, path, input_shape=(None, 5))
    assert proto.graph.input[0].type.tensor_type.elem_type == 7  # onnx.TensorProto.INT64
    assert model.training  # the model's own mode is left as it was
    oracle = _index_models("float64")[name]
    oracle.load_state_dict({k: np.asarray(v, dtype=np.float64) for k, v in model.state_dict().items()})
    oracle.eval()
    session = ort.InferenceSession(str(path))
    rtol, atol = tolerance("float32")
    for batch in (1, 7, 64):
        x = rng.integers(0, 10, (batch, 5))
        x[0, 0] = 0  # the padding row of the plain Embedding
        (got,) = session.run(None, {"input": x})
        expected = np.asarray(oracle(x))
        assert got.dtype == np.float32 and got.shape == expected.shape == (batch, 5, expected.shape[-1])
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"{name} at batch {batch}")
        MEASURED.setdefault(name, {})[batch] = float(np.max(np.abs(got - expected)))


def test_an_embedding_graph_refuses_out_of_range_indices_and_floating_inputs(tmp_path):
    table = _index_models()["Embedding"]
    pnn.export_onnx(table, tmp_path / "e.onnx", input_shape=(None,))
    with pytest.raises(Exception, match="out of data bounds"):  # onnxruntime's Gather checks the range too
        _run(tmp_path / "e.onnx", np.array([3, 10]))
    with pytest.raises(pnn.DTypeError, match="integral"):
        pnn.export_onnx(table, tmp_path / "f.onnx", input_shape=(None,), input_dtype="float32")
    assert not (tmp_path / "f.onnx").exists()


def test_float64_and_symbolic_leading_axes(tmp_path):
    model = _models("float64")["Sequential"]
    pnn.export_onnx(model, tmp_path / "nd.onnx", input_shape=(None, None, 6), dtype="float64")
    x = np.random.default_rng(1).standard_normal((3, 5, 6))
    np.testing.assert_allclose(_run(tmp_path / "nd.onnx", x), model(x), rtol=1e-12, atol=1e-12)


def test_a_torch_model_exports_the_same_graph_numbers(tmp_path):
    torch = pytest.importorskip("torch")
    model = _models()["Sequential"]
    on_torch = pnn.Sequential(*[layer for layer in _models()["Sequential"]]).to(xp="torch")
    pnn.export_onnx(on_torch, tmp_path / "t.onnx", input_shape=(None, 6))
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "t.onnx", x), model(x), rtol=1e-6, atol=1e-6)
    assert isinstance(on_torch[0].weight, torch.Tensor)  # left on torch


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_shape": (None, 5)}, pnn.ShapeError, r"expected shape \(\*, 6\)"),
        ({"input_shape": "6"}, pnn.ArgumentTypeError, "input_shape must be a tuple"),
        ({"input_shape": (None, 6.0)}, pnn.ArgumentTypeError, r"input_shape\[1\] must be an int or None"),
        ({"input_shape": ()}, pnn.ArgumentError, "at least one axis"),
        ({"input_shape": (None, 6), "dtype": "float16"}, pnn.ArgumentError, "dtype must be one of"),
        ({"input_shape": (None, 6), "input_dtype": "int32"}, pnn.ArgumentError, "input_dtype must be one of"),
        ({"input_shape": (None, 6), "input_dtype": "int64"}, pnn.DTypeError, "expected dtype float32, got int64"),
    ],
)
def test_bad_arguments_are_typed_errors_and_write_nothing(tmp_path, kwargs, error, match):
    path = tmp_path / "bad.onnx"
    with pytest.raises(error, match=match):
        pnn.export_onnx(_models()["Linear"], path, **kwargs)
    assert not path.exists()


def test_not_a_module_is_refused(tmp_path):
    with pytest.raises(pnn.ArgumentTypeError, match="exports a portable_nn Module"):
        pnn.export_onnx(lambda x: x, tmp_path / "f.onnx", input_shape=(None, 2))


def test_cli_export_onnx_writes_the_trained_model(capsys, tmp_path):
    from ..cli.cli_support import run_cli

    saved, exported = tmp_path / "model.safetensors", tmp_path / "model.onnx"
    argv = ["--backend", "numpy", "--epochs", "2", "--progress", "never", "--save", str(saved)]
    code, out, err = run_cli(capsys, *argv, "--export-onnx", str(exported))
    assert code == 0, out + err
    assert f"exported to ONNX at {exported}" in out
    model = pnn.load(saved)  # the same trained model, saved by --save
    features = model[0].weight.shape[1]
    x = np.random.default_rng(3).standard_normal((5, features)).astype(np.float32)
    np.testing.assert_allclose(_run(exported, x), model(x), rtol=1e-5, atol=1e-5)


def test_cli_export_onnx_path_is_checked_before_training(capsys, tmp_path):
    from ..cli.cli_support import run_cli

    code, _, err = run_cli(capsys, "--backend", "numpy", "--export-onnx", str(tmp_path / "missing" / "m.onnx"))
    assert code == 2 and "--export-onnx" in err and "does not exist" in err
