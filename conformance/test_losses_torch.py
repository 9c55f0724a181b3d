"""Every loss option against torch.nn.functional at run time (float64 oracle with autograd), on every backend.

Hypothesis draws shapes (unbatched, batched, k-d, empty batches), options and targets
(class indices with ignored positions, all ignored, class probabilities); torch computes the
loss and, through autograd, the gradient of the same values in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn._backend import backend_name, device_of, namespace_of
from portable_nn.testing import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

#: Examples per test and combination; JAX compiles every operation per shape, so it gets fewer.
EXAMPLES, JAX_EXAMPLES = 6, 2
# Few distinct sizes: JAX compiles every operation once per shape, so a small pool keeps the suite fast.
SIZES = st.sampled_from([0, 1, 3])
ELEMENTWISE_SHAPES = st.sampled_from([(), (0,), (3,), (2, 3), (0, 3), (2, 1, 3)])
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


def _put(xp, device, dtype, host):
    """``host`` (float64) on the backend as ``dtype``, and its values as represented there (host float64)."""
    array = xp.asarray(np.asarray(host, dtype=np.float64), device=device)
    array = xp.astype(array, dtype)
    return array, np.asarray(pnn.testing.to_numpy(array), dtype=np.float64)


def _ints(xp, device, host):
    return xp.asarray(np.asarray(host, dtype=np.int64), device=device)


def _run(xp, body):
    """Run the hypothesis test ``body`` for this backend (its strategies are fixed by ``@given``)."""
    examples = JAX_EXAMPLES if backend_name(xp) == "jax" else EXAMPLES
    settings(max_examples=examples, deadline=None)(body)()


def _check(xp, device, dtype, loss, grad, expected_loss, expected_grad, shape):
    assert namespace_of(loss) is xp and namespace_of(grad) is xp
    assert loss.dtype == dtype and grad.dtype == dtype and device_of(grad) == device
    assert tuple(grad.shape) == tuple(shape)
    assert_close(loss, expected_loss, xp=xp)
    assert_close(grad, expected_grad, xp=xp)


def _torch_grads(value, leaf, reduction, upstream):
    if reduction == "none":
        value.backward(torch.from_numpy(upstream))
    else:
        value.backward()
    grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    return value.detach().numpy(), grad.numpy()


def _upstream_for(xp, device, dtype, rng, shape, reduction, use):
    """For reduction='none': a random grad_output (or None = ones) and its host values."""
    if reduction != "none" or not use:
        return None, np.ones(shape)
    return _put(xp, device, dtype, rng.uniform(0.5, 1.5, size=shape))


@st.composite
def _class_layout(draw):
    classes = draw(st.sampled_from([1, 3]))
    kind = draw(st.sampled_from(["unbatched", "batched", "kd"]))
    if kind == "unbatched":
        return (classes,)
    n = draw(SIZES)
    if kind == "batched":
        return (n, classes)
    return (n, classes, *draw(st.sampled_from([(2,), (0,), (2, 1)])))


def _loss_shape(shape):
    return shape[1:] if len(shape) == 1 else (shape[0], *shape[2:])


def test_cross_entropy_class_indices(xp, device, dtype):
    @given(
        shape=_class_layout(),
        reduction=REDUCTIONS,
        weighted=st.booleans(),
        smoothing=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
        ignore=st.sampled_from(["none", "some", "all", "class"]),
        use_upstream=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def body(shape, reduction, weighted, smoothing, ignore, use_upstream, seed):
        rng = np.random.default_rng(seed)
        classes, loss_shape = (shape[0] if len(shape) == 1 else shape[1]), _loss_shape(shape)
        logits, logits64 = _put(xp, device, dtype, rng.standard_normal(shape) * 2)
        target = rng.integers(0, classes, size=loss_shape)
        ignore_index = -100
        if ignore == "class":  # ignore_index is a real class: its targets are skipped
            ignore_index = int(rng.integers(0, classes))
        elif ignore in ("some", "all"):
            ignore_index = int(rng.choice([-100, -1, classes + 2]))
            mask = rng.random(loss_shape) < (1.0 if ignore == "all" else 0.4)
            target = np.where(mask, ignore_index, target)
        weight = weight64 = None
        if weighted:
            weight, weight64 = _put(xp, device, dtype, rng.uniform(0.2, 2.0, size=classes))
        upstream, upstream64 = _upstream_for(xp, device, dtype, rng, loss_shape, reduction, use_upstream)
        loss_fn = pnn.CrossEntropyLoss(
            weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing
        )
        loss, grad = loss_fn(logits, _ints(xp, device, target), grad_output=upstream)

        leaf = torch.from_numpy(logits64).requires_grad_(True)
        expected = F.cross_entropy(
            leaf,
            torch.from_numpy(np.asarray(target, dtype=np.int64)),
            weight=None if weight64 is None else torch.from_numpy(weight64),
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=smoothing,
        )
        _check(xp, device, dtype, loss, grad, *_torch_grads(expected, leaf, reduction, upstream64), shape)

    _run(xp, body)


def test_cross_entropy_class_probabilities(xp, device, dtype):
    @given(
        shape=_class_layout(),
        reduction=REDUCTIONS,
        weighted=st.booleans(),
        smoothing=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
        seed=st.integers(0, 2**32 - 1),
    )
    def body(shape, reduction, weighted, smoothing, seed):
        rng = np.random.default_rng(seed)
        classes = shape[0] if len(shape) == 1 else shape[1]
        logits, logits64 = _put(xp, device, dtype, rng.standard_normal(shape) * 2)
        target, target64 = _put(xp, device, dtype, rng.random(shape))  # any non-negative values, as torch allows
        weight = weight64 = None
        if weighted:
            weight, weight64 = _put(xp, device, dtype, rng.uniform(0.2, 2.0, size=classes))
        loss, grad = pnn.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=smoothing)(logits, target)

        leaf = torch.from_numpy(logits64).requires_grad_(True)
        expected = F.cross_entropy(
            leaf,
            torch.from_numpy(target64),
            weight=None if weight64 is None else torch.from_numpy(weight64),
            reduction=reduction,
            label_smoothing=smoothing,
        )
        _check(
            xp, device, dtype, loss, grad, *_torch_grads(expected, leaf, reduction, np.ones(_loss_shape(shape))), shape
        )

    _run(xp, body)


def test_nll(xp, device, dtype):
    @given(
        shape=_class_layout(),
        reduction=REDUCTIONS,
        weighted=st.booleans(),
        ignore=st.sampled_from(["none", "some", "all"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def body(shape, reduction, weighted, ignore, seed):
        rng = np.random.default_rng(seed)
        classes, loss_shape = (shape[0] if len(shape) == 1 else shape[1]), _loss_shape(shape)
        log_probs, log_probs64 = _put(xp, device, dtype, -rng.random(shape) * 3)
        target = rng.integers(0, classes, size=loss_shape)
        if ignore != "none":
            target = np.where(rng.random(loss_shape) < (1.0 if ignore == "all" else 0.4), -100, target)
        weight = weight64 = None
        if weighted:
            weight, weight64 = _put(xp, device, dtype, rng.uniform(0.2, 2.0, size=classes))
        loss, grad = pnn.NLLLoss(weight, reduction=reduction)(log_probs, _ints(xp, device, target))

        leaf = torch.from_numpy(log_probs64).requires_grad_(True)
        weight_t = None if weight64 is None else torch.from_numpy(weight64)
        expected = F.nll_loss(
            leaf, torch.from_numpy(np.asarray(target, dtype=np.int64)), weight=weight_t, reduction=reduction
        )
        _check(xp, device, dtype, loss, grad, *_torch_grads(expected, leaf, reduction, np.ones(loss_shape)), shape)

    _run(xp, body)


def test_regression_losses(xp, device, dtype):
    @given(
        shape=ELEMENTWISE_SHAPES,
        which=st.sampled_from(["mse", "l1", "smooth_l1", "huber"]),
        option=st.one_of(st.just(1.0), st.just(0.0), st.floats(0.05, 3.0)),
        reduction=REDUCTIONS,
        use_upstream=st.booleans(),
        seed=st.integers(0, 2**32 - 1),
    )
    def body(shape, which, option, reduction, use_upstream, seed):
        rng = np.random.default_rng(seed)
        pred, pred64 = _put(xp, device, dtype, rng.standard_normal(shape) * 2)
        target, target64 = _put(xp, device, dtype, rng.standard_normal(shape) * 2)
        if which == "huber" and option == 0.0:
            option = 0.5  # delta must be > 0
        ours = {
            "mse": lambda: pnn.MSELoss(reduction=reduction),
            "l1": lambda: pnn.L1Loss(reduction=reduction),
            "smooth_l1": lambda: pnn.SmoothL1Loss(reduction=reduction, beta=option),
            "huber": lambda: pnn.HuberLoss(reduction=reduction, delta=option),
        }[which]()
        upstream, upstream64 = _upstream_for(xp, device, dtype, rng, shape, reduction, use_upstream)
        loss, grad = ours(pred, target, grad_output=upstream)

        leaf, target_t = torch.from_numpy(pred64).requires_grad_(True), torch.from_numpy(target64)
        expected = {
            "mse": lambda: F.mse_loss(leaf, target_t, reduction=reduction),
            "l1": lambda: F.l1_loss(leaf, target_t, reduction=reduction),
            "smooth_l1": lambda: F.smooth_l1_loss(leaf, target_t, reduction=reduction, beta=option),
            "huber": lambda: F.huber_loss(leaf, target_t, reduction=reduction, delta=option),
        }[which]()
        _check(xp, device, dtype, loss, grad, *_torch_grads(expected, leaf, reduction, upstream64), shape)

    _run(xp, body)


def test_bce_with_logits(xp, device, dtype):
    @given(
        shape=ELEMENTWISE_SHAPES,
        reduction=REDUCTIONS,
        weight_kind=st.sampled_from(["none", "full", "last"]),
        pos_kind=st.sampled_from(["none", "last", "scalar"]),
        seed=st.integers(0, 2**32 - 1),
    )
    def body(shape, reduction, weight_kind, pos_kind, seed):
        rng = np.random.default_rng(seed)
        logits, logits64 = _put(xp, device, dtype, rng.standard_normal(shape) * 3)
        target, target64 = _put(xp, device, dtype, rng.random(shape))

        def option(kind):
            if kind == "none":
                return None, None
            option_shape = {"full": shape, "last": shape[-1:], "scalar": ()}[kind]
            return _put(xp, device, dtype, rng.uniform(0.2, 3.0, size=option_shape))

        (weight, weight64), (pos, pos64) = option(weight_kind), option(pos_kind)
        loss, grad = pnn.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos)(logits, target)

        leaf = torch.from_numpy(logits64).requires_grad_(True)
        expected = F.binary_cross_entropy_with_logits(
            leaf,
            torch.from_numpy(target64),
            weight=None if weight64 is None else torch.from_numpy(weight64),
            pos_weight=None if pos64 is None else torch.from_numpy(pos64),
            reduction=reduction,
        )
        _check(xp, device, dtype, loss, grad, *_torch_grads(expected, leaf, reduction, np.ones(shape)), shape)

    _run(xp, body)
