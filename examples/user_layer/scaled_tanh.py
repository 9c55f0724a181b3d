"""A user-defined layer written only against the Python array API: ``y = scale * tanh(x) + shift``.

It knows nothing about portable_nn; ``array_api_compat.array_namespace`` finds the namespace
of its inputs, so the same code runs on NumPy, PyTorch, JAX, CuPy, Dask and array-api-strict
arrays. ``test_user_layer.py`` next to it tests it on every installed backend with nothing
but portable_nn's pytest plugin.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace, device

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


class ScaledTanh:
    """The stateful layer: parameters ``scale`` (ones) and ``shift`` (zeros) like ``x``'s namespace/device/dtype."""

    def __init__(self, like: Array) -> None:
        xp, where = array_namespace(like), device(like)  # not like.device: Dask arrays have none
        features = like.shape[-1]
        self.scale = xp.ones((features,), dtype=like.dtype, device=where)
        self.shift = xp.zeros((features,), dtype=like.dtype, device=where)
        self.grad_scale: Array | None = None
        self.grad_shift: Array | None = None
        self._x: Array | None = None

    def forward(self, x: Array) -> Array:
        self._x = x
        return scaled_tanh(x, self.scale, self.shift)

    def backward(self, grad_output: Array) -> Array:
        if self._x is None:
            raise RuntimeError("backward() needs a forward() first")
        grad_x, self.grad_scale, self.grad_shift = scaled_tanh_backward(grad_output, self._x, self.scale, self.shift)
        return grad_x
