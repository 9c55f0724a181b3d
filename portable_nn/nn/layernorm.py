"""``LayerNorm(normalized_shape, eps, elementwise_affine, bias)``: normalization over the trailing axes, as torch.nn.

``y = (x - mean) / sqrt(var + eps) * weight + bias``, ``mean`` and ``var`` (biased) over the last
``len(normalized_shape)`` axes of each example. Backward, with ``n = x̂`` and ``g = dL/dy * weight``:
``dL/dx = (g - mean(g) - n * mean(g * n)) / sqrt(var + eps)`` (means over the normalized axes),
``dL/dweight = Σ dL/dy * n`` and ``dL/dbias = Σ dL/dy`` over the leading axes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..init import Seed
from ._normalization import normalized_input_grad
from .grad_mode import CHECKED, Call
from .module import Module

__all__ = ["LayerNorm"]

Array = Any


def _shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ArgumentError(f"LayerNorm: normalized_shape must be a positive int or a tuple of them, got {shape}")
    return shape


class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` axes; parameters ``weight`` (ones), ``bias`` (zeros).

    Shapes: ``x`` ``(*, *normalized_shape)`` -> ``y`` of the same shape.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing shape normalized over.
    eps : float
        Added to the variance.
    elementwise_affine : bool
        Whether ``weight`` (and ``bias``) exist.
    bias : bool
        Whether ``bias`` exists (with ``elementwise_affine``).
    xp, device, dtype, seed
        Placement, as for every :class:`~portable_nn.Module`.

    Raises
    ------
    ArgumentError, ArgumentTypeError
        A bad ``normalized_shape`` or ``eps``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> norm = pnn.LayerNorm(3)
    >>> y = norm(norm.xp.asarray([[1.0, 2.0, 3.0]], dtype=norm.dtype))
    >>> [round(float(v), 4) for v in y[0]], list(norm.state_dict())
    ([-1.2247, 0.0, 1.2247], ['weight', 'bias'])
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        xp: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: Seed = None,
    ) -> None:
        super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ArgumentTypeError(f"LayerNorm: eps must be a float >= 0, got {eps!r}")
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        self.has_bias = bool(bias)
        if self.elementwise_affine:
            self.add_parameter("weight", self.normalized_shape, init="ones")
            if self.has_bias:
                self.add_parameter("bias", self.normalized_shape, init="zeros")
            else:
                self.register_parameter("bias", None)

    def _axes(self) -> tuple[int, ...]:
        return tuple(range(-len(self.normalized_shape), 0))

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, (normalized, inv_std))``: the normalized, scaled and shifted ``x``.

        Parameters
        ----------
        params : mapping
            ``weight`` and ``bias`` (when they exist).
        x : array
            ``(*, *normalized_shape)``.
        call : Call
            ``call.validate``: check ``x``.

        Returns
        -------
        y : array
            ``x``'s shape.
        saved : tuple
            The normalized input and ``1 / sqrt(var + eps)`` (keepdims).

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            ``x`` does not fit.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> norm = pnn.LayerNorm((2, 2))
        >>> norm.functional_forward(norm.named_parameters(), norm.xp.ones((3, 2, 2), dtype=norm.dtype))[0].shape
        (3, 2, 2)
        """
        k = len(self.normalized_shape)
        if call.validate:
            self.check_input(x)
            if tuple(x.shape[x.ndim - k :]) != self.normalized_shape or x.ndim < k:
                raise ShapeError(
                    f"input: expected shape (*, {', '.join(map(str, self.normalized_shape))}), got {tuple(x.shape)}"
                )
        xp, axes = self.xp, self._axes()
        centered = x - xp.mean(x, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(xp.mean(centered * centered, axis=axes, keepdims=True) + self.eps)
        normalized = centered * inv_std
        y = normalized
        if "weight" in params:
            y = y * params["weight"]
        if "bias" in params:
            y = y + params["bias"]
        return y, (normalized, inv_std)

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx or None, {"weight": ..., "bias": ...})``.

        Parameters
        ----------
        params : mapping
            The forward's parameters.
        saved : tuple
            The forward's ``(normalized, inv_std)``.
        grad_output : array
            ``dL/dy``, the input's shape.
        need_input_grad : bool
            Whether ``dL/dx`` is computed.
        call : Call
            ``call.validate``: check ``grad_output``.

        Returns
        -------
        grad_x : array or None
            ``dL/dx``.
        grads : dict of str to array
            ``weight`` and ``bias`` gradients (those that exist).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> norm = pnn.LayerNorm(3)
        >>> x = norm.xp.asarray([[1.0, 2.0, 4.0]], dtype=norm.dtype)
        >>> y, saved = norm.functional_forward(norm.named_parameters(), x)
        >>> norm.functional_backward(norm.named_parameters(), saved, norm.xp.ones_like(y))[1]["bias"].tolist()
        [1.0, 1.0, 1.0]
        """
        normalized, inv_std = saved
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=tuple(normalized.shape))
        xp, axes = self.xp, self._axes()
        rows = (math.prod(normalized.shape[: normalized.ndim - len(axes)]), *self.normalized_shape)
        grads: dict[str, Array] = {}
        if "weight" in params:
            grads["weight"] = xp.sum(xp.reshape(grad_output * normalized, rows), axis=0)
        if "bias" in params:
            grads["bias"] = xp.sum(xp.reshape(grad_output, rows), axis=0)
        if not need_input_grad:
            return None, grads
        g = grad_output * params["weight"] if "weight" in params else grad_output
        return normalized_input_grad(xp, g, normalized, inv_std, axes), grads

    def __repr__(self) -> str:
        return (
            f"LayerNorm({self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"{self._placement()})"
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values).

        Returns
        -------
        dict
            ``normalized_shape``, ``eps``, ``elementwise_affine``, ``bias``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.LayerNorm((2, 3)).get_config()["normalized_shape"]
        [2, 3]
        """
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self.has_bias,
        }
