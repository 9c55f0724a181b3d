"""Loss options: typed errors for impossible combinations, 0-d in gives 0-d out, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import portable_nn as pnn
from portable_nn._backend import available_devices, namespace_of, resolve_dtype
from portable_nn.testing import check_gradients, random_array, to_numpy


class _Foreign:
    """An array-like of no backend (shape and dtype, no namespace): a weight from elsewhere."""

    shape, dtype = (4,), "float32"


def _ints(xp, device, values):
    return xp.asarray(np.asarray(values, dtype=np.int64), device=device)


def test_option_errors_are_typed():
    with pytest.raises(pnn.ArgumentError, match=r"label_smoothing must be a finite number in \[0, 1\]"):
        pnn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(pnn.ArgumentError, match="reduction must be one of"):
        pnn.MSELoss(reduction="avg")
    with pytest.raises(pnn.ArgumentTypeError, match="reduction must be a str"):
        pnn.L1Loss(reduction=None)
    with pytest.raises(pnn.ArgumentError, match="delta"):
        pnn.HuberLoss(delta=0.0)
    with pytest.raises(pnn.ArgumentError, match="beta"):
        pnn.SmoothL1Loss(beta=-1.0)
    with pytest.raises(pnn.ArgumentTypeError, match="weight must be an array"):
        pnn.CrossEntropyLoss(weight=[1.0, 2.0])
    with pytest.raises(pnn.ArgumentTypeError, match="ignore_index must be an int"):
        pnn.NLLLoss(ignore_index=1.0)
    with pytest.raises(TypeError):
        pnn.MSELoss("sum")  # options are keyword-only (PyTorch's positional order passes deprecated arguments)


def test_cross_entropy_call_errors(xp, device, dtype):
    logits, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    target = _ints(xp, device, [0, 1, 3])
    with pytest.raises(pnn.ShapeError, match=r"weight: expected shape \(4,\)"):
        pnn.CrossEntropyLoss(random_array(xp, (3,), device=device, dtype=dtype)[0])(logits, target)
    with pytest.raises(pnn.DTypeError, match="weight"):
        pnn.CrossEntropyLoss(xp.ones((4,), dtype=xp.int32, device=device))(logits, target)
    with pytest.raises(pnn.NamespaceError, match="weight"):
        pnn.CrossEntropyLoss(_Foreign())(logits, target)
    with pytest.raises(pnn.ArgumentError, match=r"or equal ignore_index=1, got other values in \[0, 5\]"):
        pnn.CrossEntropyLoss(ignore_index=1)(logits, _ints(xp, device, [1, 5, 0]))
    with pytest.raises(pnn.ArgumentError, match="ignore_index=0 is not supported with class-probability"):
        pnn.CrossEntropyLoss(ignore_index=0)(logits, random_array(xp, (3, 4), device=device, dtype=dtype)[0])
    with pytest.raises(pnn.ArgumentError, match="grad_output is only accepted with reduction='none'"):
        pnn.CrossEntropyLoss()(logits, target, grad_output=xp.ones((3,), dtype=dtype, device=device))
    with pytest.raises(pnn.ShapeError, match=r"grad_output: expected the per-element loss's shape \(3,\)"):
        pnn.CrossEntropyLoss(reduction="none")(logits, target, grad_output=xp.ones((3, 4), dtype=dtype, device=device))
    with pytest.raises(pnn.ShapeError, match=r"target: expected shape \(3, 2\)"):
        pnn.NLLLoss()(xp.zeros((3, 4, 2), dtype=dtype, device=device), target)


def test_bce_call_errors(xp, device, dtype):
    logits, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    target, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    with pytest.raises(pnn.ShapeError, match=r"pos_weight: expected a shape that broadcasts"):
        pnn.BCEWithLogitsLoss(pos_weight=xp.ones((3,), dtype=dtype, device=device))(logits, target)
    with pytest.raises(pnn.ShapeError, match=r"target: expected the logits' shape"):
        pnn.BCEWithLogitsLoss()(logits, xp.ones((4,), dtype=dtype, device=device))
    with pytest.raises(pnn.DTypeError, match="weight"):
        pnn.BCEWithLogitsLoss(xp.ones((4,), dtype=xp.int32, device=device))(logits, target)


@pytest.mark.parametrize("loss_fn", [pnn.MSELoss(), pnn.L1Loss(), pnn.HuberLoss(), pnn.BCEWithLogitsLoss()], ids=repr)
def test_zero_dim_inputs_give_arrays(xp, device, dtype, loss_fn):
    """0-d in gives 0-d arrays out (NumPy's operations on 0-d arrays return scalars: never hand one back)."""
    pred, target = xp.asarray(0.25, dtype=dtype, device=device), xp.asarray(1.0, dtype=dtype, device=device)
    for reduction in ("mean", "sum", "none"):
        loss_fn.reduction = reduction
        loss, grad = loss_fn(pred, target)
        assert namespace_of(loss) is xp and namespace_of(grad) is xp
        assert loss.shape == () and grad.shape == () and grad.dtype == dtype
    loss_fn.reduction = "mean"


def test_unbatched_cross_entropy_gives_arrays(xp, device, dtype):
    loss, grad = pnn.CrossEntropyLoss(reduction="none")(
        xp.asarray([1.0, 2.0, 0.5], dtype=dtype, device=device), _ints(xp, device, 2)
    )
    assert namespace_of(loss) is xp and loss.shape == () and grad.shape == (3,)


@pytest.mark.requires_float64
@pytest.mark.parametrize(
    "case",
    ["ce_weight_smoothing", "ce_kd_ignore", "ce_probabilities", "nll", "bce_pos_weight", "huber", "smooth_l1"],
)
def test_new_losses_match_finite_differences(xp, device, case):
    float64 = resolve_dtype(xp, "float64")
    rng = np.random.default_rng(11)
    shape = (2, 3, 2) if case == "ce_kd_ignore" else (4, 3)
    pred, _pred64 = random_array(xp, shape, device=device, dtype=float64, seed=12)
    weight = xp.asarray(rng.uniform(0.5, 2.0, size=3), device=device)
    if case == "ce_weight_smoothing":
        loss_fn, target = pnn.CrossEntropyLoss(weight, label_smoothing=0.3), _ints(xp, device, [0, 2, 1, 2])
    elif case == "ce_kd_ignore":
        loss_fn, target = pnn.CrossEntropyLoss(ignore_index=1), _ints(xp, device, [[1, 0], [2, 1]])
    elif case == "ce_probabilities":
        loss_fn, target = (
            pnn.CrossEntropyLoss(weight, label_smoothing=0.1),
            xp.asarray(rng.random(shape), device=device),
        )
    elif case == "nll":
        loss_fn, target = pnn.NLLLoss(weight, ignore_index=0), _ints(xp, device, [0, 2, 1, 2])
    elif case == "bce_pos_weight":
        loss_fn = pnn.BCEWithLogitsLoss(weight, pos_weight=xp.asarray(rng.uniform(0.5, 3.0, size=3), device=device))
        target = xp.asarray(rng.random(shape), device=device)
    else:
        loss_fn = pnn.HuberLoss(delta=0.7) if case == "huber" else pnn.SmoothL1Loss(beta=0.6)
        target = xp.asarray(rng.standard_normal(shape), device=device)
    check_gradients(
        lambda p: loss_fn(p, target)[0],
        lambda g, p: (loss_fn(p, target)[1] * g,),
        [pred],
        names=[case],
        autograd=False,  # the target lives on the test's backend; torch's own losses are compared elsewhere
    )


def test_relu_passes_gradient_through_nan(xp, device, dtype):
    """torch: x = [nan, 1, -1], upstream ones -> [1, 1, 0] (the gradient is only zeroed where x <= 0)."""
    relu = pnn.ReLU()
    relu(xp.asarray([float("nan"), 1.0, -1.0, 0.0], dtype=dtype, device=device))
    grad = relu.backward(xp.ones((4,), dtype=dtype, device=device))
    np.testing.assert_array_equal(to_numpy(grad).astype(np.float64), [1.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("layer", [pnn.ReLU, pnn.Tanh, pnn.Sigmoid])
def test_activations_keep_zero_dim_arrays(xp, device, dtype, layer):
    act = layer()
    y = act(xp.asarray(-4.8, dtype=dtype, device=device))
    assert namespace_of(y) is xp and y.shape == () and y.dtype == dtype
    grad = act.backward(xp.asarray(1.0, dtype=dtype, device=device))
    assert namespace_of(grad) is xp and grad.shape == ()


class _Scale(pnn.Module):
    """A user layer with a 0-d parameter: ``y = x * s``."""

    def __init__(self, xp, device, dtype):
        super().__init__(xp=xp, device=device, dtype=dtype)
        self.add_parameter("s", (), init="ones")

    def functional_forward(self, params, x, call):
        return self.xp.asarray(x * params["s"]), x  # NumPy: a 0-d product is a scalar

    def functional_backward(self, params, x, grad_output, need_input_grad, call):
        return self.xp.asarray(grad_output * params["s"]), {"s": self.xp.asarray(self.xp.sum(grad_output * x))}


def test_zero_dim_parameters_stay_arrays(xp, device, dtype):
    """Accumulated 0-d gradients and Module.step on 0-d parameters hand back arrays (NumPy: scalars otherwise)."""
    layer = _Scale(xp, device, dtype)
    x = xp.asarray(2.0, dtype=dtype, device=device)
    _, grad = pnn.MSELoss()(layer(x), xp.asarray(0.5, dtype=dtype, device=device))
    layer.backward(grad)
    layer.backward(grad)
    assert namespace_of(layer.grad_s) is xp and layer.grad_s.shape == ()
    layer.step(0.1)
    assert namespace_of(layer.s) is xp and layer.s.shape == ()
    np.testing.assert_allclose(float(to_numpy(layer.s)), 1.0 - 0.1 * 2 * (2 * 1.5 * 2.0), rtol=1e-3)


def test_weight_on_another_device_is_a_device_error(xp, device, dtype):
    others = [d for d in available_devices(xp).values() if d != device]
    if not others:
        pytest.skip("this backend has a single device here")
    logits, _ = random_array(xp, (3, 4), device=device, dtype=dtype)
    weight = xp.ones((4,), dtype=dtype, device=others[0])
    with pytest.raises(pnn.DeviceError, match="weight"):
        pnn.CrossEntropyLoss(weight)(logits, _ints(xp, device, [0, 1, 3]))
    with pytest.raises(pnn.DeviceError, match="pos_weight"):
        pnn.BCEWithLogitsLoss(pos_weight=weight)(logits, xp.zeros((3, 4), dtype=dtype, device=device))
