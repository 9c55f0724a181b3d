"""``check_gradients`` on the functional API: it passes the real backward and catches broken ones.

The references are float64 central finite differences and ``torch.autograd`` (through the
same array-API forward re-run on torch tensors); each broken backward below must be caught
by each reference on its own, on every backend × device × dtype.
"""

from __future__ import annotations

import importlib.util

import pytest

from portable_nn import functional as F
from portable_nn._backend import namespace_of
from portable_nn.testing import check_gradients, random_array, to_numpy

NAMES = ("x", "weight", "bias")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _inputs(xp, device, dtype, bias=True):
    """x (2, 2, 3), weight (2, 3), bias (2,): N-D input, non-square weight (a wrong transpose shows)."""
    x, _ = random_array(xp, (2, 2, 3), device=device, dtype=dtype, seed=1)
    w, _ = random_array(xp, (2, 3), device=device, dtype=dtype, seed=2)
    b = random_array(xp, (2,), device=device, dtype=dtype, seed=3)[0] if bias else None
    return [x, w, b]


def linear_backward(grad_output, x, weight, bias):
    """``functional.linear_backward`` in ``check_gradients``' convention: one gradient per forward input."""
    return F.linear_backward(grad_output, x, weight, has_bias=bias is not None)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_backward_passes(xp, device, dtype, bias):
    report = check_gradients(F.linear, linear_backward, _inputs(xp, device, dtype, bias), names=NAMES)
    assert report.references[0].startswith("finite differences (float64 on ")
    assert report.references[1:] == (["torch.autograd (float64)"] if HAS_TORCH else [])
    for reference in report.references:
        assert set(report.max_abs_error[reference]) == ({"x", "weight", "bias"} if bias else {"x", "weight"})


def _bias_grad_dropped(g, x, w, b):
    grad_x, grad_w, grad_b = linear_backward(g, x, w, b)
    return grad_x, grad_w, grad_b * 0


def _weight_grad_reshaped_not_transposed(g, x, w, b):
    """``grad_weight = reshape(x^T g, (out, in))``: the right shape, the wrong layout."""
    xp = namespace_of(g)
    grad_x, _, grad_b = linear_backward(g, x, w, b)
    rows_x, rows_g = xp.reshape(x, (-1, w.shape[1])), xp.reshape(g, (-1, w.shape[0]))
    return grad_x, xp.reshape(rows_x.T @ rows_g, tuple(w.shape)), grad_b


def _grad_x_sign_flipped(g, x, w, b):
    grad_x, grad_w, grad_b = linear_backward(g, x, w, b)
    return -grad_x, grad_w, grad_b


BROKEN = {
    "bias-grad-dropped": (_bias_grad_dropped, "bias"),
    "weight-grad-reshaped-not-transposed": (_weight_grad_reshaped_not_transposed, "weight"),
    "grad-x-sign-flipped": (_grad_x_sign_flipped, "x"),
}


@pytest.mark.parametrize("reference", ["finite_differences", "autograd"])
@pytest.mark.parametrize("bug", list(BROKEN))
def test_broken_backward_is_caught(xp, device, dtype, bug, reference):
    backward, culprit = BROKEN[bug]
    if reference == "autograd":
        pytest.importorskip("torch", reason="the autograd reference needs torch")
        only = {"finite_differences": None, "autograd": True}
    else:
        only = {"autograd": False}
    with pytest.raises(AssertionError, match=f"gradient for '{culprit}' disagrees with") as info:
        check_gradients(F.linear, backward, _inputs(xp, device, dtype), names=NAMES, **only)
    assert "max abs error" in str(info.value) and "worst at index" in str(info.value)


def test_malformed_backward_results_are_reported(xp, device, dtype):
    inputs = _inputs(xp, device, dtype)

    def too_few(g, x, w, b):
        return linear_backward(g, x, w, b)[:2]

    def none_for_bias(g, x, w, b):
        return (*linear_backward(g, x, w, b)[:2], None)

    def weight_grad_for_bias(g, x, w, b):
        grad_x, grad_w, _ = linear_backward(g, x, w, b)
        return grad_x, grad_w, grad_w

    with pytest.raises(AssertionError, match=r"one gradient per input \(3\), got 2"):
        check_gradients(F.linear, too_few, inputs, names=NAMES)
    with pytest.raises(AssertionError, match="returned None as the gradient for 'bias'"):
        check_gradients(F.linear, none_for_bias, inputs, names=NAMES)
    with pytest.raises(AssertionError, match=r"'bias': expected the input's shape \(2,\), got \(2, 3\)"):
        check_gradients(F.linear, weight_grad_for_bias, inputs, names=NAMES, autograd=False)


@pytest.mark.backends(exclude=["numpy"], reason="a host copy is itself a numpy array")
def test_gradient_on_another_backend_is_rejected(xp, device, dtype, backend):
    """Every gradient must come back on the inputs' backend (here: a host NumPy copy is not)."""

    def host_bias_grad(g, x, w, b):
        grad_x, grad_w, grad_b = linear_backward(g, x, w, b)
        return grad_x, grad_w, to_numpy(grad_b)

    with pytest.raises(AssertionError, match=f"'bias': expected a {backend} array, got a numpy array"):
        check_gradients(F.linear, host_bias_grad, _inputs(xp, device, dtype), names=NAMES, autograd=False)


def test_gradient_in_another_dtype_is_named_as_such(xp, device, dtype):
    """A float64 gradient for a float32 input is a dtype error, not a numerical disagreement."""
    other = xp.float32 if dtype == xp.float64 else xp.float64

    def cast_weight_grad(g, x, w, b):
        grad_x, grad_w, grad_b = linear_backward(g, x, w, b)
        return grad_x, xp.astype(grad_w, other), grad_b

    try:
        xp.zeros(1, dtype=other, device=device)
    except Exception:
        pytest.skip(f"this device has no {other}")
    with pytest.raises(AssertionError, match="'weight': expected the input's dtype") as info:
        check_gradients(F.linear, cast_weight_grad, _inputs(xp, device, dtype), names=NAMES, autograd=False)
    assert "disagrees" not in str(info.value)
