"""``BatchNorm1d``: batch normalization over (N, C) or (N, C, L), with torch.nn's parameters, buffers and numbers.

Train mode (or ``track_running_stats=False``): ``y = (x - mean) / sqrt(var + eps) * weight + bias``
with ``mean`` and ``var`` (biased) of the batch per channel (over N, and L); the running buffers
move by ``momentum``: ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased*
batch variance (``var * n / (n - 1)``), ``momentum=None`` giving the cumulative average
(``1 / num_batches_tracked``). Eval mode with tracked statistics: ``running_mean``/``running_var``
are used instead, constants for backward.

Backward with batch statistics (``n = x̂``, ``g = dL/dy * weight``):
``dL/dx = (g - mean(g) - n * mean(g * n)) / sqrt(var + eps)``; with running statistics
``dL/dx = g / sqrt(running_var + eps)``; ``dL/dweight = Σ dL/dy * n``, ``dL/dbias = Σ dL/dy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._arrays import as_array
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..init import Seed
from ._normalization import normalized_input_grad
from .buffers import BufferUpdate
from .grad_mode import CHECKED, Call
from .module import Module

__all__ = ["BatchNorm1d"]

Array = Any


class BatchNorm1d(Module):
    """Batch normalization of (N, C) or (N, C, L) inputs per channel C, as ``torch.nn.BatchNorm1d``.

    Parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers ``running_mean``
    (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (an integer 0) when
    ``track_running_stats``.

    Parameters
    ----------
    num_features : int
        C.
    eps : float
        Added to the variance.
    momentum : float or None
        The running statistics' update factor (None: cumulative average).
    affine : bool
        Whether ``weight`` and ``bias`` exist.
    track_running_stats : bool
        Whether the running buffers exist (without them eval mode uses batch statistics too).
    xp, device, dtype, seed
        Placement, as for every :class:`~portable_nn.Module`.

    Raises
    ------
    ArgumentError, ArgumentTypeError
        A bad argument.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> norm = pnn.BatchNorm1d(2)
    >>> y = norm(norm.xp.asarray([[1.0, 2.0], [3.0, 6.0]], dtype=norm.dtype))
    >>> [[round(v, 3) for v in row] for row in y.tolist()], [round(v, 3) for v in norm.running_mean.tolist()]
    ([[-1.0, -1.0], [1.0, 1.0]], [0.2, 0.4])
    >>> int(norm.num_batches_tracked), list(norm.named_buffers())
    (1, ['running_mean', 'running_var', 'num_batches_tracked'])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        xp: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: Seed = None,
    ) -> None:
        super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ArgumentError(f"BatchNorm1d: num_features must be a positive int, got {num_features!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ArgumentTypeError(f"BatchNorm1d: eps must be a float >= 0, got {eps!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise ArgumentTypeError(f"BatchNorm1d: momentum must be a float or None, got {momentum!r}")
        self.num_features, self.eps = num_features, float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.add_parameter("weight", (num_features,), init="ones")
            self.add_parameter("bias", (num_features,), init="zeros")
        if self.track_running_stats:
            placed = self.xp, self.device
            self.register_buffer("running_mean", placed[0].zeros((num_features,), dtype=self.dtype, device=placed[1]))
            self.register_buffer("running_var", placed[0].ones((num_features,), dtype=self.dtype, device=placed[1]))
            self.register_buffer("num_batches_tracked", placed[0].asarray(0, device=placed[1]))

    def _check(self, x: Array, what: str = "input") -> None:
        self.check_input(x, what)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{what}: expected shape (N, {self.num_features}) or (N, {self.num_features}, L), got {tuple(x.shape)}"
            )

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, saved)``; in train mode with tracked statistics ``saved`` is a ``BufferUpdate``.

        Parameters
        ----------
        params : mapping
            ``weight``, ``bias`` (when ``affine``) and the buffers (when tracked).
        x : array
            ``(N, C)`` or ``(N, C, L)``.
        call : Call
            ``call.training``: batch statistics and buffer update; ``call.validate``: check ``x``.

        Returns
        -------
        y : array
            ``x``'s shape.
        saved : tuple or BufferUpdate
            ``(normalized, inv_std, batch_statistics)``, wrapped with the new buffers in train mode.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            ``x`` does not fit.
        ArgumentError
            Train mode with one value per channel (as in PyTorch).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> from portable_nn.nn.buffers import split_saved
        >>> norm = pnn.BatchNorm1d(2)
        >>> state = {**norm.named_parameters(), **norm.named_buffers()}
        >>> y, saved = norm.functional_forward(state, norm.xp.ones((4, 2, 3), dtype=norm.dtype))
        >>> sorted(split_saved(saved)[1])
        ['num_batches_tracked', 'running_mean', 'running_var']
        """
        if call.validate:
            self._check(x)
        xp = self.xp
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) if x.ndim == 2 else (1, self.num_features, 1)
        batch_statistics = call.training or not self.track_running_stats
        updates: dict[str, Array] = {}
        if batch_statistics:
            count = x.shape[0] * (1 if x.ndim == 2 else x.shape[2])
            if call.training and count <= 1:
                raise ArgumentError(
                    "BatchNorm1d: expected more than 1 value per channel when training, "
                    f"got input shape {tuple(x.shape)}"
                )
            mean = xp.mean(x, axis=axes, keepdims=True)
            centered = x - mean
            var = xp.mean(centered * centered, axis=axes, keepdims=True)
            if call.training and self.track_running_stats:
                tracked = as_array(xp, params["num_batches_tracked"] + 1)  # NumPy: 0-d sums are scalars
                if self.momentum is None:  # cumulative moving average
                    factor: Any = 1.0 / xp.astype(tracked, self.dtype)
                else:
                    factor = self.momentum
                unbiased = xp.reshape(var, (self.num_features,)) * (count / max(count - 1, 1))
                updates = {
                    "running_mean": (1 - factor) * params["running_mean"] + factor * xp.reshape(mean, (-1,)),
                    "running_var": (1 - factor) * params["running_var"] + factor * unbiased,
                    "num_batches_tracked": tracked,
                }
        else:
            centered = x - xp.reshape(params["running_mean"], shape)
            var = xp.reshape(params["running_var"], shape)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        normalized = centered * inv_std
        y = normalized
        if self.affine:
            y = y * xp.reshape(params["weight"], shape) + xp.reshape(params["bias"], shape)
        saved = (normalized, inv_std, batch_statistics)
        return y, (BufferUpdate(saved, updates) if updates else saved)

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
            The forward's parameters and buffers.
        saved : tuple
            The forward's ``(normalized, inv_std, batch_statistics)``.
        grad_output : array
            ``dL/dy``.
        need_input_grad : bool
            Whether ``dL/dx`` is computed.
        call : Call
            ``call.validate``: check ``grad_output``.

        Returns
        -------
        grad_x : array or None
            ``dL/dx``.
        grads : dict of str to array
            ``weight`` and ``bias`` gradients when ``affine``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> from portable_nn.nn.buffers import split_saved
        >>> norm = pnn.BatchNorm1d(2)
        >>> state = {**norm.named_parameters(), **norm.named_buffers()}
        >>> y, saved = norm.functional_forward(state, norm.xp.asarray([[1.0, 2.0], [3.0, 6.0]], dtype=norm.dtype))
        >>> norm.functional_backward(state, split_saved(saved)[0], norm.xp.ones_like(y))[1]["bias"].tolist()
        [2.0, 2.0]
        """
        normalized, inv_std, batch_statistics = saved
        if call.validate:
            self.check_input(grad_output, "grad_output", shape=tuple(normalized.shape))
        xp = self.xp
        axes = (0,) if normalized.ndim == 2 else (0, 2)
        shape = (1, self.num_features) if normalized.ndim == 2 else (1, self.num_features, 1)
        grads: dict[str, Array] = {}
        if self.affine:
            grads["weight"] = xp.sum(grad_output * normalized, axis=axes)
            grads["bias"] = xp.sum(grad_output, axis=axes)
        if not need_input_grad:
            return None, grads
        g = grad_output * xp.reshape(params["weight"], shape) if self.affine else grad_output
        if not batch_statistics:
            return g * inv_std, grads
        return normalized_input_grad(xp, g, normalized, inv_std, axes), grads

    def __repr__(self) -> str:
        return (
            f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, {self._placement()})"
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values).

        Returns
        -------
        dict
            ``num_features``, ``eps``, ``momentum``, ``affine``, ``track_running_stats``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.BatchNorm1d(3).get_config()["num_features"]
        3
        """
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }
