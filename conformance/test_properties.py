"""Properties of ``Linear`` on every backend × device × dtype, checked by hypothesis.

Shapes include empty and singleton axes and N-D leading axes; values are bounded per dtype
(:mod:`portable_nn.testing.strategies`). The three properties of the layer's math run a quarter of the
profile's examples per combination (``dev``: 10, ``--hypothesis-profile=ci``: 50; profiles in
``conformance/conftest.py``): they run on ~14 backend × device × dtype combinations, so each property
still sees ~700 examples per CI run, and a Dask or eager-JAX example (a graph computed, ops compiled
for new shapes) costs ~20-40 ms, which kept the suite over its time budget at 200.

Each property compares two computations done on the backend in the test's dtype. Rounding
error of a sum of products is bounded relative to the sum of the *absolute values* of its
terms, not to the result (which may cancel to ~0), so comparisons allow
``atol + rtol * scale`` with the dtype's tolerances from ``tolerances.py`` and ``scale`` the
largest such sum of absolute terms, computed on the host in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portable_nn as pnn
from portable_nn import functional as F
from portable_nn._backend import dtype_name
from portable_nn.init import initial_parameters
from portable_nn.testing import assert_close, to_numpy, tolerance
from portable_nn.testing import strategies as pst

from .helpers import host_params


def _allowed(xp: Any, dtype: Any, scale: float) -> float:
    """Allowed absolute difference for results whose terms sum (in absolute value) to ``scale``."""
    rtol, atol = tolerance(dtype_name(xp, dtype))
    return atol + rtol * scale


def _max(a: np.ndarray) -> float:
    return float(np.max(a, initial=0.0))


#: half the profile's examples per combination (see the module docstring)
EXAMPLES = max(10, settings.default.max_examples // 4)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_linear_in_x(xp, device, dtype, data):
    """``f(a x1 + b x2) = a f(x1) + b f(x2) + (1 - a - b) bias``."""
    leading, n_in, n_out = data.draw(pst.linear_shapes(), label="leading, in, out")
    has_bias = data.draw(st.booleans(), label="bias")
    layer = pnn.Linear(n_in, n_out, bias=has_bias, xp=xp, device=device, dtype=dtype, seed=data.draw(pst.seeds()))
    x1, h1 = data.draw(pst.arrays(xp, (*leading, n_in), device=device, dtype=dtype), label="x1")
    x2, h2 = data.draw(pst.arrays(xp, (*leading, n_in), device=device, dtype=dtype), label="x2")
    a, b = data.draw(pst.scalars(), label="a"), data.draw(pst.scalars(), label="b")

    combined = layer(a * x1 + b * x2)
    separate = a * layer(x1) + b * layer(x2)
    if has_bias:
        separate = separate + (1 - a - b) * layer.bias

    w64, b64 = host_params(layer)
    terms = (abs(a) * np.abs(h1) + abs(b) * np.abs(h2)) @ np.abs(w64).T
    if has_bias:
        terms = terms + (abs(a) + abs(b) + abs(1 - a - b)) * np.abs(b64)
    assert_close(combined, separate, rtol=0, atol=_allowed(xp, dtype, _max(terms)), xp=xp, device=device)


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_backward_is_the_vjp_of_forward(xp, device, dtype, data):
    """``<g, J v> = <J^T g, v>`` for the Jacobian J of ``(x, weight, bias) -> y``, any g and v.

    ``J v = linear(v_x, weight) + linear(x, v_weight, v_bias)`` is the forward's own
    linearization; ``J^T g`` is what backward returns (grad_x, grad_weight, grad_bias).
    """
    leading, n_in, n_out = data.draw(pst.linear_shapes(), label="leading, in, out")
    has_bias = data.draw(st.booleans(), label="bias")
    layer = pnn.Linear(n_in, n_out, bias=has_bias, xp=xp, device=device, dtype=dtype, seed=data.draw(pst.seeds()))

    def draw(shape: tuple[int, ...], label: str) -> tuple[Any, np.ndarray]:
        return data.draw(pst.arrays(xp, shape, device=device, dtype=dtype), label=label)

    x, hx = draw((*leading, n_in), "x")
    g, hg = draw((*leading, n_out), "g")
    vx, hvx = draw((*leading, n_in), "v_x")
    vw, hvw = draw((n_out, n_in), "v_weight")
    vb, hvb = draw((n_out,), "v_bias")

    layer(x)
    grad_x = layer.backward(g)
    jv = F.linear(vx, layer.weight) + F.linear(x, vw, vb if has_bias else None)

    g_jv = float(np.sum(hg * to_numpy(jv)))
    jtg_v = float(np.sum(to_numpy(grad_x) * hvx) + np.sum(to_numpy(layer.grad_weight) * hvw))
    if has_bias:
        jtg_v += float(np.sum(to_numpy(layer.grad_bias) * hvb))

    w64, _ = host_params(layer)
    terms = np.abs(hvx) @ np.abs(w64).T + np.abs(hx) @ np.abs(hvw).T + (np.abs(hvb) if has_bias else 0.0)
    scale = float(np.sum(np.abs(hg) * terms))
    allowed = _allowed(xp, dtype, scale)
    assert abs(g_jv - jtg_v) <= allowed, f"<g, Jv> = {g_jv!r} but <J^T g, v> = {jtg_v!r} (allowed {allowed:.3e})"


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_grads_of_concatenated_batches_are_the_sum(xp, device, dtype, data):
    """Backward on ``concat([x1, x2])`` gives the sum of the grads of two backwards, and grad_x concatenated."""
    rest, n_in, n_out = data.draw(pst.linear_shapes(leading=st.sampled_from([(), (2,), (0,)])), label="rest, in, out")
    n1, n2 = data.draw(st.sampled_from([(2, 1), (0, 2), (1, 0)]), label="n1, n2")
    seed = data.draw(pst.seeds(), label="seed")

    def draw(shape: tuple[int, ...], label: str) -> tuple[Any, np.ndarray]:
        return data.draw(pst.arrays(xp, shape, device=device, dtype=dtype), label=label)

    x1, h1 = draw((n1, *rest, n_in), "x1")
    x2, h2 = draw((n2, *rest, n_in), "x2")
    g1, hg1 = draw((n1, *rest, n_out), "g1")
    g2, hg2 = draw((n2, *rest, n_out), "g2")

    whole = pnn.Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=seed)
    whole(xp.concat([x1, x2], axis=0))
    grad_x = whole.backward(xp.concat([g1, g2], axis=0))

    parts = pnn.Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=seed)
    parts(x1)
    grad_x1 = parts.backward(g1)
    parts(x2)
    grad_x2 = parts.backward(g2)

    w64, _ = host_params(whole)
    rows = (n1 + n2) * math.prod(rest)
    rows_x = np.abs(np.concatenate([h1, h2]).reshape(rows, n_in))
    rows_g = np.abs(np.concatenate([hg1, hg2]).reshape(rows, n_out))
    ok = {"xp": xp, "device": device, "rtol": 0}
    assert_close(whole.grad_weight, parts.grad_weight, atol=_allowed(xp, dtype, _max(rows_g.T @ rows_x)), **ok)
    assert_close(whole.grad_bias, parts.grad_bias, atol=_allowed(xp, dtype, _max(rows_g.sum(axis=0))), **ok)
    assert_close(
        grad_x, xp.concat([grad_x1, grad_x2], axis=0), atol=_allowed(xp, dtype, _max(rows_g @ np.abs(w64))), **ok
    )


def _cast_on_host(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` rounded to dtype ``name`` as the backend stores it (bfloat16 read back as float32)."""
    if name != "bfloat16":
        return values.astype(name)
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (shipped with jax) models bfloat16 on the host")
    return values.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


@given(
    seed=pst.seeds(),
    n_in=pst.sides(0, 5),
    n_out=pst.sides(0, 5),
    init=st.sampled_from(["torch", "glorot_uniform"]),
)
def test_seeded_init_is_reproducible(xp, device, dtype, seed, n_in, n_out, init):
    """One seed (int or Generator) gives the bytes of the host draw, cast to the dtype, on every backend."""
    from_int = pnn.Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=seed, init=init)
    from_rng = pnn.Linear(n_in, n_out, xp=xp, device=device, dtype=dtype, seed=np.random.default_rng(seed), init=init)
    host_w, host_b = initial_parameters(init, n_in, n_out, seed)
    name = dtype_name(xp, dtype)
    for layer in (from_int, from_rng):
        assert to_numpy(layer.weight).tobytes() == _cast_on_host(host_w, name).tobytes()
        assert to_numpy(layer.bias).tobytes() == _cast_on_host(host_b, name).tobytes()
