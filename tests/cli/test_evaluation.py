"""The command line's ``Evaluator`` evaluates in eval mode, compiled or eager, and changes nothing on the model."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn.cli.evaluation import Evaluator


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_evaluation_is_eval_mode_and_leaves_buffers_and_stream_alone(backend):
    pytest.importorskip(backend)
    model = pnn.Sequential(
        pnn.Linear(2, 8, xp=backend, seed=0),
        pnn.BatchNorm1d(8, xp=backend),
        pnn.Dropout(0.5, seed=1),
        pnn.Linear(8, 3, xp=backend, seed=2),
    )
    rng = np.random.default_rng(0)
    x = model.xp.asarray(rng.standard_normal((6, 2)).astype(np.float32))
    y = model.xp.asarray(np.array([0, 1, 2, 0, 1, 2]))
    model(x)  # one train-mode forward: running statistics away from their initial values
    buffers, streams = model.named_buffers(), model.random_streams()
    evaluator = Evaluator(model, pnn.CrossEntropyLoss())
    assert evaluator.compiled == (backend == "jax")
    loss, logits = evaluator(x, y, x[:2])
    assert model.training and model.random_streams() == streams
    assert all(model.named_buffers()[name] is value for name, value in buffers.items())
    model.eval()
    expected = model(x)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(expected[:2]), rtol=1e-6)
    np.testing.assert_allclose(float(loss), float(pnn.CrossEntropyLoss()(expected, y)[0]), rtol=1e-6)
