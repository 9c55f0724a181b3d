"""A user-defined layer written only against the Python array API: ``y = scale * tanh(x) + shift``.

The math (``scaled_tanh`` and its backward) knows nothing about portable_nn:
``array_api_compat.array_namespace`` finds the namespace of its inputs, so the same code runs on
NumPy, PyTorch, JAX, CuPy, Dask and array-api-strict arrays. The layer ``ScaledTanh`` is the one
pure forward/backward pair portable_nn asks of a layer, written over those functions; ``Module``
derives ``forward``, ``backward``, ``__call__`` and the functional API from it.
``test_user_layer.py`` next to it tests both on every installed backend with nothing but
portable_nn's pytest plugin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from array_api_compat import array_namespace

import portable_nn as pnn
from portable_nn.nn.module import Call

Array = Any


def scaled_tanh(x: Array, scale: Array, shift: Array) -> Array:
    """``y = scale * tanh(x) + shift``; ``x`` (*, features), ``scale`` and ``shift`` (features,)."""
    xp = array_namespace(x, scale, shift)
    return scale * xp.tanh(x) + shift


def scaled_tanh_backward(grad_output: Array, x: Array, scale: Array, shift: Array) -> tuple[Array, Array, Array]:
    """Gradients ``(grad_x, grad_scale, grad_shift)`` of :func:`scaled_tanh` for ``grad_output = dL/dy``."""
    xp = array_namespace(grad_output, x, scale, shift)
    t = xp.tanh(x)
    grad_x = grad_output * scale * (1 - t * t)
    rows = math.prod(x.shape[:-1])  # leading axes flattened into rows, summed over below
    grad_scale = xp.sum(xp.reshape(grad_output * t, (rows, x.shape[-1])), axis=0)
    grad_shift = xp.sum(xp.reshape(grad_output, (rows, x.shape[-1])), axis=0)
    return grad_x, grad_scale, grad_shift


class ScaledTanh(pnn.Module):
    """``y = scale * tanh(x) + shift`` with parameters ``scale`` (ones) and ``shift`` (zeros) of ``features``.

    >>> layer = ScaledTanh(2)
    >>> layer(layer.xp.zeros((1, 2), dtype=layer.dtype)).tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, features: int, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32") -> None:
        super().__init__(xp=xp, device=device, dtype=dtype)
        self.features = features
        self.add_parameter("scale", (features,), init="ones")
        self.add_parameter("shift", (features,), init="zeros")

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call) -> tuple[Array, Array]:
        """``(y, x)``: the output, and the input kept for backward."""
        if call.validate:
            self.check_input(x, last_axis=self.features)
        return scaled_tanh(x, params["scale"], params["shift"]), x

    def functional_backward(
        self, params: Mapping[str, Array], x: Array, grad_output: Array, need_input_grad: bool, call: Call
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx, {"scale": ..., "shift": ...})`` from the kept ``x``."""
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=x.shape)
        grad_x, grad_scale, grad_shift = scaled_tanh_backward(grad_output, x, params["scale"], params["shift"])
        return grad_x, {"scale": grad_scale, "shift": grad_shift}
