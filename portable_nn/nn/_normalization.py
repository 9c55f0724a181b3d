"""The input gradient shared by the normalization layers (:class:`BatchNorm1d`, :class:`LayerNorm`)."""

from __future__ import annotations

from typing import Any

from ..typing import Array

__all__ = ["normalized_input_grad"]


def normalized_input_grad(xp: Any, g: Array, normalized: Array, inv_std: Array, axes: tuple[int, ...]) -> Array:
    """``dL/dx`` of ``normalized = (x - mean) * inv_std``, mean and variance taken over ``axes``.

    ``g`` is ``dL/dnormalized`` (the upstream gradient times the affine weight, if any); the result is
    ``inv_std * (g - mean(g) - normalized * mean(g * normalized))`` with the means over ``axes``.
    """
    g_mean = xp.mean(g, axis=axes, keepdims=True)
    projection = xp.mean(g * normalized, axis=axes, keepdims=True)
    return inv_std * (g - g_mean - normalized * projection)
