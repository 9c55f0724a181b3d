"""MSELoss and CrossEntropyLoss: values and gradients against torch (float64), finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import device_of, namespace_of, resolve_dtype
from portable_nn.testing import assert_close, check_gradients, random_array, to_numpy


def _targets(xp, device, n: int, classes: int, seed: int = 0):
    host = np.random.default_rng(seed).integers(0, classes, size=n)
    return xp.asarray(host, device=device), host


@pytest.mark.parametrize("shape", [(5, 3), (7,), (2, 3, 4)], ids=lambda s: "x" + "x".join(map(str, s)))
def test_mse_matches_torch(xp, device, dtype, shape):
    torch = pytest.importorskip("torch")
    pred, pred64 = random_array(xp, shape, device=device, dtype=dtype, seed=1)
    target, target64 = random_array(xp, shape, device=device, dtype=dtype, seed=2)
    loss, grad = pnn.MSELoss()(pred, target)

    tp = torch.from_numpy(pred64).requires_grad_(True)
    expected = torch.nn.functional.mse_loss(tp, torch.from_numpy(target64))
    expected.backward()
    assert loss.shape == () and loss.dtype == dtype and namespace_of(loss) is xp and device_of(loss) == device
    assert_close(loss, expected.detach().numpy(), xp=xp)
    assert_close(grad, tp.grad.numpy(), xp=xp)


@pytest.mark.parametrize(("n", "classes"), [(6, 3), (1, 5)])
def test_cross_entropy_matches_torch(xp, device, dtype, n, classes):
    torch = pytest.importorskip("torch")
    logits, logits64 = random_array(xp, (n, classes), device=device, dtype=dtype, seed=3, scale=2.0)
    target, target_host = _targets(xp, device, n, classes, seed=4)
    loss, grad = pnn.CrossEntropyLoss()(logits, target)

    tl = torch.from_numpy(logits64).requires_grad_(True)
    expected = torch.nn.functional.cross_entropy(tl, torch.from_numpy(target_host))
    expected.backward()
    assert loss.shape == () and loss.dtype == dtype and namespace_of(loss) is xp and device_of(grad) == device
    assert_close(loss, expected.detach().numpy(), xp=xp)
    assert_close(grad, tl.grad.numpy(), xp=xp)


def test_cross_entropy_is_stable_for_huge_logits(xp, device, dtype):
    """Logits near 3e4 (exp overflows even float64) give a finite loss: the log-sum-exp subtracts the row max."""
    logits, _ = random_array(xp, (4, 3), device=device, dtype=dtype, seed=5)
    target, target_host = _targets(xp, device, 4, 3, seed=6)
    huge = logits + 3e4
    loss, grad = pnn.CrossEntropyLoss()(huge, target)
    # float64 oracle on the values as represented in this dtype, log-sum-exp written out by hand.
    z = to_numpy(huge).astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    log_probs = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    expected_grad = np.exp(log_probs)
    expected_grad[np.arange(4), target_host] -= 1.0
    assert_close(loss, -log_probs[np.arange(4), target_host].mean(), xp=xp)
    assert_close(grad, expected_grad / 4, xp=xp)


@pytest.mark.requires_float64
@pytest.mark.parametrize("which", ["mse", "cross_entropy"])
def test_gradients_match_finite_differences(xp, device, which):
    float64 = resolve_dtype(xp, "float64")
    pred, _pred64 = random_array(xp, (4, 3), device=device, dtype=float64, seed=7)
    if which == "mse":
        loss_fn, (target, _) = pnn.MSELoss(), random_array(xp, (4, 3), device=device, dtype=float64, seed=8)
    else:
        loss_fn, (target, _) = pnn.CrossEntropyLoss(), _targets(xp, device, 4, 3, seed=9)
    check_gradients(
        lambda p: loss_fn(p, target)[0],
        lambda g, p: (loss_fn(p, target)[1] * g,),
        [pred],
        names=[which],
        autograd=False,  # the target lives on the test's backend; torch's own losses are compared elsewhere
    )


def test_mse_errors(xp, device, dtype):
    pred, _ = random_array(xp, (3, 2), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError, match=r"expected pred's shape \(3, 2\), got \(2, 3\)"):
        pnn.MSELoss()(pred, random_array(xp, (2, 3), device=device, dtype=dtype)[0])
    with pytest.raises(pnn.DTypeError):
        pnn.MSELoss()(pred, xp.ones((3, 2), dtype=xp.int32, device=device))
    with pytest.raises(pnn.DTypeError, match="real floating"):
        pnn.MSELoss()(xp.ones((3, 2), dtype=xp.int32, device=device), pred)
    with pytest.raises(pnn.NamespaceError):
        pnn.MSELoss()(pred, [[0.0, 0.0]] * 3)


def test_cross_entropy_errors(xp, device, dtype):
    logits, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    loss_fn = pnn.CrossEntropyLoss()
    with pytest.raises(pnn.ArgumentError, match=r"\[0, 4\), got values in \[0, 4\]"):
        loss_fn(logits, xp.asarray(np.array([0, 4, 1]), device=device))
    with pytest.raises(pnn.ArgumentError, match=r"got values in \[-1, 1\]"):
        loss_fn(logits, xp.asarray(np.array([0, -1, 1]), device=device))
    with pytest.raises(pnn.DTypeError, match="integer class indices"):
        loss_fn(logits, xp.asarray(np.array([True, False, True]), device=device))
    with pytest.raises(pnn.ShapeError, match="class probabilities must have the logits' shape"):
        loss_fn(logits, random_array(xp, (3,), device=device, dtype=dtype)[0])
    with pytest.raises(pnn.ShapeError, match=r"expected shape \(3,\)"):
        loss_fn(logits, _targets(xp, device, 4, 4)[0])
    with pytest.raises(pnn.ShapeError, match=r"\(C,\), \(N, C\) or \(N, C, d1, ..., dk\)"):
        loss_fn(xp.zeros((), dtype=dtype, device=device), _targets(xp, device, 3, 3)[0])
    with pytest.raises(pnn.ShapeError, match="C >= 1"):
        loss_fn(xp.zeros((2, 0), dtype=dtype, device=device), xp.zeros((2,), dtype=xp.int64, device=device))
    with pytest.raises(pnn.NamespaceError):
        loss_fn(logits, [0, 1, 2])


def test_repr():
    assert repr(pnn.MSELoss()) == "MSELoss()" and repr(pnn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(pnn.HuberLoss(delta=2.0, reduction="sum")) == "HuberLoss(delta=2.0, reduction='sum')"
