"""Symbolic sizes and arrays without values: forward and losses run, value-dependent checks are skipped.

ndonnx's symbolic arrays (``None`` sizes, no values) stand for any namespace that traces: each loss is
built into an ONNX graph and run in onnxruntime against the NumPy loss (the oracle). On torch, the
class-index losses run inside ``torch.func.vmap`` and ``torch.func.grad`` (no ``.item()``), compared
with a loop of eager calls. The documented consequence of skipping the range check where values are
not available: an out-of-range class index is not reported there (its one-hot row is zero).
"""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn import _backend
from portable_nn.testing import tolerance

ndx = pytest.importorskip("ndonnx")
ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3)).astype(np.float32)
INDEX = np.array([0, 2, 1, 1, 0])
FLOAT = RNG.random((5, 3)).astype(np.float32)
WEIGHT = np.array([1.0, 2.0, 0.5])
#: name -> (loss built from the class weights of the namespace at hand, target)
LOSSES = {
    "ce": (lambda w: pnn.CrossEntropyLoss(), INDEX),
    "ce-ignore-smooth-weight": (lambda w: pnn.CrossEntropyLoss(w, ignore_index=1, label_smoothing=0.1), INDEX),
    "ce-probabilities": (lambda w: pnn.CrossEntropyLoss(), FLOAT),
    "nll-none": (lambda w: pnn.NLLLoss(reduction="none"), INDEX),
    "nll-sum-weight": (lambda w: pnn.NLLLoss(w, reduction="sum"), INDEX),
    "bce": (lambda w: pnn.BCEWithLogitsLoss(), FLOAT),
    "mse": (lambda w: pnn.MSELoss(), FLOAT),
    "l1": (lambda w: pnn.L1Loss(), FLOAT),
    "huber": (lambda w: pnn.HuberLoss(delta=0.5), FLOAT),
    "smooth-l1": (lambda w: pnn.SmoothL1Loss(), FLOAT),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_on_symbolic_sizes_give_numpys_numbers(name):
    build, target = LOSSES[name]
    x = ndx.argument(shape=("N", 3), dtype=ndx.float32)
    y_shape, y_dtype = (("N",), ndx.int64) if target.dtype.kind == "i" else (("N", 3), ndx.float32)
    y = ndx.argument(shape=y_shape, dtype=y_dtype)
    loss, grad = build(_backend.convert(WEIGHT, "ndonnx", dtype="float32"))(x, y)
    graph = ndx.build({"x": x, "y": y}, {"loss": loss, "grad": grad})
    got_loss, got_grad = ort.InferenceSession(graph.SerializeToString()).run(None, {"x": X, "y": target})
    oracle_target = target if target.dtype.kind == "i" else target.astype(np.float64)
    expected_loss, expected_grad = build(WEIGHT)(X.astype(np.float64), oracle_target)  # float64 NumPy
    rtol, atol = tolerance("float32")
    np.testing.assert_allclose(got_loss, expected_loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got_grad, expected_grad, rtol=rtol, atol=atol)


def test_forward_of_every_activation_on_symbolic_sizes():
    x = ndx.argument(shape=("N", "M", 3), dtype=ndx.float32)
    data = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    for layer in (pnn.ReLU(), pnn.Tanh(), pnn.Sigmoid(), pnn.Linear(3, 2, xp="ndonnx", seed=0)):
        graph = ndx.build({"x": x}, {"y": layer(x)})
        (got,) = ort.InferenceSession(graph.SerializeToString()).run(None, {"x": data})
        oracle = layer if not isinstance(layer, pnn.Linear) else pnn.Linear(3, 2, seed=0)
        np.testing.assert_allclose(got, oracle(data), rtol=1e-6, atol=1e-6)


def test_out_of_range_class_is_not_reported_without_values():
    """The documented consequence: no values, no range check; the row with class 7 contributes only its softmax."""
    x, y = ndx.argument(shape=("N", 3), dtype=ndx.float32), ndx.argument(shape=("N",), dtype=ndx.int64)
    loss, _ = pnn.CrossEntropyLoss(reduction="none")(x, y)  # no ArgumentError while tracing
    graph = ndx.build({"x": x, "y": y}, {"loss": loss})
    (got,) = ort.InferenceSession(graph.SerializeToString()).run(None, {"x": X[:2], "y": np.array([0, 7])})
    assert got[1] == 0.0  # no class marked: -sum(onehot * log_softmax) is 0
    with pytest.raises(pnn.ArgumentError, match=r"class indices must be in \[0, 3\)"):  # eager: reported
        pnn.CrossEntropyLoss()(X[:2], np.array([0, 7]))


@pytest.mark.parametrize("loss_fn", [pnn.CrossEntropyLoss(), pnn.NLLLoss(), pnn.CrossEntropyLoss(ignore_index=1)])
def test_class_index_losses_inside_torch_func_transforms(loss_fn):
    torch = pytest.importorskip("torch")
    logits = torch.randn(4, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(1))
    batched = torch.func.vmap(lambda z, t: loss_fn(z, t)[0])(logits, target)  # no .item() under vmap
    looped = torch.stack([loss_fn(logits[i], target[i])[0] for i in range(4)])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)
    grad = torch.func.grad(lambda z: loss_fn(z, target[0])[0])(logits[0])
    torch.testing.assert_close(grad, loss_fn(logits[0], target[0])[1], rtol=1e-12, atol=1e-12)
