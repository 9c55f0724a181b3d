"""Elementwise activations ``ReLU``, ``Tanh`` and ``Sigmoid``: forward, and backward from what forward kept.

They have no parameters and take their namespace, device and dtype from the input, so one
instance works on any backend. ``forward(x)`` keeps one array (ReLU: the input; Tanh and
Sigmoid: the output) for ``backward(grad_output)`` unless run under ``no_grad()``. Each writes
only the pure pair (``_apply`` and ``_gradient`` inside it); :class:`~portable_nn.Module` derives the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .._arrays import as_array
from .._backend import device_of, namespace_of
from .._checks import check_array, check_floating, shape_str
from ..errors import ArgumentError, ShapeError
from ..typing import Array
from .module import CHECKED, Call, Module

__all__ = ["ReLU", "Sigmoid", "Tanh"]


class _Activation(Module):
    """Base of the parameter-free elementwise activations (any shape, any real floating dtype)."""

    _parameter_names = ()

    def __init__(self) -> None:
        self._forget_kept()

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:  # pragma: no cover - abstract
        """``(y, kept)``: the output and the array backward needs."""
        raise NotImplementedError

    def _gradient(self, xp: ModuleType, grad_output: Array, kept: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """``(y, kept)``: the activation of ``x`` (any shape, a real floating dtype) and what backward needs; pure.

        Parameters
        ----------
        params : mapping
            ``{}``: an activation has no parameters.
        x : array
            The input, of any backend, device and shape.
        call : Call
            ``call.validate``: check that ``x`` is a real floating array.

        Returns
        -------
        y : array
            The same shape, dtype and device as ``x``.
        kept : array
            ReLU: ``x``; Tanh and Sigmoid: ``y``.

        Raises
        ------
        NamespaceError, DTypeError
            With ``call.validate``, ``x`` is no floating array of a supported backend.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> y, kept = pnn.ReLU().functional_forward({}, np.asarray([-1.0, 2.0]))
        >>> y.tolist(), kept.tolist()
        ([0.0, 2.0], [-1.0, 2.0])
        """
        xp = check_floating(x, "input") if call.validate else namespace_of(x)
        y, kept = self._apply(xp, x)
        if x.ndim == 0:  # NumPy returns scalars from operations on 0-d arrays: hand back (and keep) arrays
            y, kept = as_array(xp, y), as_array(xp, kept)
        return y, kept

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """``(dL/dx, {})`` from the ``kept`` array of :meth:`functional_forward`; pure.

        Parameters
        ----------
        params : mapping
            ``{}``.
        saved : array
            The forward's ``kept``.
        grad_output : array
            ``dL/dy``, the output's shape, dtype and device.
        need_input_grad : bool
            False returns None for ``dL/dx`` (an activation has nothing else to compute).
        call : Call
            ``call.validate``: check ``grad_output`` against ``saved``.

        Returns
        -------
        grad_x : array or None
            ``dL/dx``; None unless ``need_input_grad``.
        grads : dict
            ``{}``.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            With ``call.validate``, ``grad_output`` does not fit.

        Examples
        --------
        >>> import numpy as np, portable_nn as pnn
        >>> relu = pnn.ReLU()
        >>> y, kept = relu.functional_forward({}, np.asarray([-1.0, 2.0]))
        >>> relu.functional_backward({}, kept, np.ones(2))[0].tolist()
        [0.0, 1.0]
        """
        if not need_input_grad:
            return None, {}
        xp = namespace_of(saved)
        if call.validate:
            check_array(grad_output, "grad_output", xp, device_of(saved), saved.dtype)
            if tuple(grad_output.shape) != tuple(saved.shape):
                raise ShapeError(
                    f"grad_output: expected shape {shape_str(saved.shape)} (the last output's), "
                    f"got {shape_str(grad_output.shape)}"
                )
        grad = self._gradient(xp, grad_output, saved)
        return (as_array(xp, grad) if saved.ndim == 0 else grad), {}

    def to(self, xp: Any = None, device: Any = None, dtype: Any = None) -> _Activation:
        """No parameters to move; drops the kept forward values, like :meth:`Module.to`. Returns ``self``."""
        self._forget_kept()
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ---------------------------------------------------------------- architecture config

    def get_config(self) -> dict[str, Any]:
        """``{}``: an activation has no constructor arguments."""
        return {}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> _Activation:
        """A new activation (it takes its placement from its input; ``config`` must be ``{}``)."""
        if not isinstance(config, Mapping) or config:
            raise ArgumentError(f"{cls.__name__} takes no config, got {config!r}")
        return cls()


class ReLU(_Activation):
    """``y = max(x, 0)``; ``dL/dx = 0`` where ``x <= 0``, else ``dL/dy`` (NaN inputs pass it through). Keeps ``x``.

    Both choices are PyTorch's: the gradient at 0 is 0, and where ``x`` is NaN the gradient
    passes (``x = [nan, 1, -1]`` gives ``[g, g, 0]``).

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> relu = pnn.ReLU()
    >>> relu(np.asarray([-1.0, 0.0, 2.0])).tolist(), relu.backward(np.ones(3)).tolist()
    ([0.0, 0.0, 2.0], [0.0, 0.0, 1.0])
    """

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        return xp.maximum(x, xp.zeros_like(x)), x

    def _gradient(self, xp: ModuleType, grad_output: Array, x: Array) -> Array:
        return xp.where(x <= 0, xp.zeros_like(grad_output), grad_output)


class Tanh(_Activation):
    """``y = tanh(x)``; ``dL/dx = dL/dy * (1 - y²)``. Keeps ``y``.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> tanh = pnn.Tanh()
    >>> np.round(tanh(np.asarray([-1.0, 0.0, 2.0])), 4).tolist(), np.round(tanh.backward(np.ones(3)), 4).tolist()
    ([-0.7616, 0.0, 0.964], [0.42, 1.0, 0.0707])
    """

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        y = xp.tanh(x)
        return y, y

    def _gradient(self, xp: ModuleType, grad_output: Array, y: Array) -> Array:
        slope = 1 - y * y  # fresh: scaled in place (JAX/Dask rebind)
        slope *= grad_output
        return slope


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))`` without overflow for large ``|x|``; ``dL/dx = dL/dy * y (1 - y)``. Keeps ``y``.

    Examples
    --------
    >>> import numpy as np, portable_nn as pnn
    >>> sigmoid = pnn.Sigmoid()
    >>> np.round(sigmoid(np.asarray([-1.0, 0.0, 1000.0])), 4).tolist(), sigmoid.backward(np.ones(3))[1:].tolist()
    ([0.2689, 0.5, 1.0], [0.25, 0.0])
    """

    def _apply(self, xp: ModuleType, x: Array) -> tuple[Array, Array]:
        e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
        positive = 1 / (1 + e)  # sigmoid(|x|)
        y = xp.where(x >= 0, positive, e * positive)  # sigmoid(-|x|) = e / (1 + e)
        return y, y

    def _gradient(self, xp: ModuleType, grad_output: Array, y: Array) -> Array:
        slope = 1 - y  # fresh: scaled in place (JAX/Dask rebind)
        slope *= y
        slope *= grad_output
        return slope
