"""A user-defined ``LayerNorm`` written with portable_nn's public API only.

Two parameters (``weight``, ``bias``) and a backward that is more than elementwise: the
gradient of the normalization couples every feature of a row. The math lives in two pure
functions (testable with ``check_gradients``, usable under ``jax.jit``); the layer writes the pure
pair ``functional_forward``/``functional_backward`` on top of them, and ``Module`` derives the rest:
``forward``/``__call__`` (keeping what backward needs), ``backward`` (accumulating gradients),
``value_and_grad``, ``functional_call`` and ``train_step``.

``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (``features``), with
``mean`` and ``var`` (biased, as in PyTorch) of each row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from array_api_compat import array_namespace

import portable_nn as pnn
from portable_nn.nn.module import Call

Array = Any


def layer_norm(x: Array, weight: Array, bias: Array, eps: float = 1e-5) -> Array:
    """Normalize ``x`` (*, features) over its last axis, then scale by ``weight`` and shift by ``bias`` (features,)."""
    xp = array_namespace(x, weight, bias)
    centered = x - xp.mean(x, axis=-1, keepdims=True)
    inv_std = 1 / xp.sqrt(xp.mean(centered * centered, axis=-1, keepdims=True) + eps)
    return centered * inv_std * weight + bias


def layer_norm_backward(
    grad_output: Array, x: Array, weight: Array, bias: Array, eps: float = 1e-5
) -> tuple[Array, Array, Array]:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`layer_norm` for ``grad_output = dL/dy`` (*, features)."""
    xp = array_namespace(grad_output, x, weight, bias)
    features = x.shape[-1]
    centered = x - xp.mean(x, axis=-1, keepdims=True)
    inv_std = 1 / xp.sqrt(xp.mean(centered * centered, axis=-1, keepdims=True) + eps)
    normalized = centered * inv_std
    g = grad_output * weight  # dL/d(normalized)
    grad_x = inv_std * (
        g - xp.mean(g, axis=-1, keepdims=True) - normalized * xp.mean(g * normalized, axis=-1, keepdims=True)
    )
    rows = (-1, features)  # leading axes flattened: parameter grads sum over every row
    grad_weight = xp.sum(xp.reshape(grad_output * normalized, rows), axis=0)
    grad_bias = xp.sum(xp.reshape(grad_output, rows), axis=0)
    return grad_x, grad_weight, grad_bias


@pnn.register("ExampleLayerNorm")  # pnn.load rebuilds it by this name (pnn.LayerNorm is the built-in one)
class LayerNorm(pnn.Module):
    """Layer normalization over the last axis, with learnable ``weight`` (ones) and ``bias`` (zeros).

    Shapes: ``x`` (*, features) -> ``y`` (*, features).

    >>> norm = LayerNorm(3)
    >>> y = norm(norm.xp.asarray([[1.0, 2.0, 3.0]], dtype=norm.dtype))
    >>> [round(float(v), 4) for v in y[0]]
    [-1.2247, 0.0, 1.2247]
    """

    def __init__(
        self, features: int, eps: float = 1e-5, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> None:
        super().__init__(xp=xp, device=device, dtype=dtype)
        self.features, self.eps = features, eps
        self.add_parameter("weight", (features,), init="ones")
        self.add_parameter("bias", (features,), init="zeros")

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call) -> tuple[Array, Array]:
        """``(y, x)``: the normalized ``x`` and what backward needs (``x`` itself); reads ``params`` only."""
        if call.validate:  # the public entry points validate; train_step's later steps do not
            self.check_input(x, last_axis=self.features)
        return layer_norm(x, params["weight"], params["bias"], self.eps), x

    def functional_backward(
        self, params: Mapping[str, Array], x: Array, grad_output: Array, need_input_grad: bool, call: Call
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx, {"weight": ..., "bias": ...})`` from the forward's ``x`` (dL/dx is cheap here: always given)."""
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=x.shape)
        grad_x, grad_weight, grad_bias = layer_norm_backward(grad_output, x, params["weight"], params["bias"], self.eps)
        return grad_x, {"weight": grad_weight, "bias": grad_bias}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments a checkpoint stores to rebuild this layer."""
        return {"features": self.features, "eps": self.eps}

    def __repr__(self) -> str:
        return f"LayerNorm({self.features}, eps={self.eps})"
