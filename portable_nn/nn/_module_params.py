"""A module's parameters and gradients: ``check_input``, ``named_parameters``, ``set_parameters``, ``step``...

:class:`ModuleParameters` holds the methods :class:`portable_nn.Module` inherits for reading, checking and
rebinding parameters and accumulating gradients (all or nothing, by rebinding: arrays are never mutated in
place); nothing in them runs a forward or backward.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._arrays import as_array
from .._backend import backend_name, device_of, device_str, dtype_name, materialize, namespace_of
from .._checks import check_array, check_like, check_lr, shape_str
from ..errors import ArgumentError, CallOrderError, DTypeError, ShapeError, UnknownParameterError
from ..typing import Array
from ._module_state import ModuleState

__all__ = ["ModuleParameters"]


class ModuleParameters(ModuleState):
    """Parameter and gradient methods of :class:`portable_nn.Module` (a base class; not used on its own)."""

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()

    if TYPE_CHECKING:  # parameters and their grads are attributes named at run time (``weight``, ``grad_weight``)

        def __getattr__(self, name: str) -> Any: ...

    # ---------------------------------------------------------------- authoring: checks

    def check_input(
        self,
        x: Array,
        what: str = "input",
        *,
        shape: tuple[int, ...] | None = None,
        last_axis: int | None = None,
        kind: str | None = None,
    ) -> None:
        """Raise a typed error unless ``x`` is an array of this module's backend, device and dtype.

        A layer's pure forward calls it when ``call.validate`` is set (see :class:`~portable_nn.nn.grad_mode.Call`).

        Parameters
        ----------
        x : array
            The array to check.
        what : str
            Its name in error messages (``"input"``, ``"grad_output"``).
        shape : tuple of int, optional
            The exact shape ``x`` must have (e.g. a ``grad_output`` against the last output's shape).
        last_axis : int, optional
            The size its last axis must have (e.g. ``in_features``).
        kind : str, optional
            An array API dtype kind (``"integral"``, ``"bool"``...): ``x`` may have any dtype of that
            kind instead of the module's dtype (an embedding's indices). Namespace and device are checked.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            Naming ``what``, the expected and the given.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> layer.check_input(layer.xp.ones((4, 3), dtype=layer.dtype), last_axis=3)
        >>> layer.check_input(layer.xp.ones((4, 2), dtype=layer.dtype), last_axis=3)
        Traceback (most recent call last):
        ...
        portable_nn.errors.ShapeError: input: expected shape (*, 3) (the last axis), got (4, 2)
        """
        xp = self.xp
        if kind is not None:
            check_array(x, what, xp, self.device)
            if not xp.isdtype(x.dtype, kind):
                raise DTypeError(f"{what}: expected a dtype of kind {kind!r}, got {dtype_name(xp, x.dtype)}")
        elif namespace_of(x) is not xp or x.dtype != self.dtype:  # check_array inlined: run on every forward
            check_array(x, what, xp, self.device, self.dtype)
        device = device_of(x)  # None: a traced JAX array (inside jax.jit or jax.vmap) has no device; it passes
        if device is not None and device != self.device and self.device is not None:
            check_array(x, what, xp, self.device, self.dtype)
        if shape is not None and tuple(x.shape) != tuple(shape):
            raise ShapeError(f"{what}: expected shape {shape_str(shape)}, got {shape_str(x.shape)}")
        if last_axis is not None and (x.ndim == 0 or x.shape[-1] != last_axis):
            raise ShapeError(f"{what}: expected shape (*, {last_axis}) (the last axis), got {shape_str(x.shape)}")

    def accumulate_grad(self, name: str, grad: Array) -> None:
        """Add ``grad`` to ``grad_<name>`` (or set it when there is none yet), by rebinding.

        What :meth:`backward` does with each gradient :meth:`functional_backward` returns; public
        for code that computes gradients elsewhere. ``grad`` is held, not copied, and never mutated.

        Parameters
        ----------
        name : str
            A parameter name of this module.
        grad : array
            The module's backend, device and dtype, the parameter's shape.

        Raises
        ------
        ArgumentError
            ``name`` is no parameter of this module.
        NamespaceError, DeviceError, DTypeError, ShapeError
            ``grad`` is not placed and shaped like the parameter.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.accumulate_grad("bias", layer.xp.ones((1,), dtype=layer.dtype))
        >>> layer.accumulate_grad("bias", layer.xp.ones((1,), dtype=layer.dtype))
        >>> layer.grad_bias.tolist()
        [2.0]
        """
        if name not in self._parameter_names or getattr(self, name) is None:
            raise ArgumentError(f"{type(self).__name__} has no parameter {name!r}; parameters: {self._names()}")
        check_like(grad, f"grad_{name}", getattr(self, name), self.xp, self.device, self.dtype)
        ModuleParameters._add_grads(self, {name: grad})

    def _names(self) -> list[str]:
        return list(self.named_parameters())

    def _add_grads(self, grads: Mapping[str, Array]) -> None:
        """Add a layer's gradients into ``grad_<name>`` by rebinding, all or nothing (containers route them).

        Each is checked against its parameter (name, shape, dtype) before anything changes.
        """
        attributes, names, totals = self.__dict__, self._parameter_names, {}
        for name, grad in grads.items():
            param = attributes[name] if name in names else None
            if param is None or grad.shape != param.shape or grad.dtype != param.dtype:
                self._reject_grad(name, grad, param)
            key = "grad_" + name
            current = attributes[key]
            total = grad if current is None else current + grad
            totals[key] = as_array(self.xp, total) if total.ndim == 0 else total  # NumPy: 0-d sums are scalars
        for key in totals:  # plain loops and subscripts: this runs on every backward
            attributes[key] = totals[key]

    def _reject_grad(self, name: str, grad: Any, param: Any) -> None:
        where = f"{type(self).__name__}.functional_backward"
        if param is None:
            raise ArgumentError(f"{where} returned a gradient for {name!r}, which is no parameter: {self._names()}")
        check_like(grad, f"{where}: grad of {name}", param, self.xp, self.device, self.dtype)
        raise ShapeError(
            f"{where}: grad of {name}: expected shape {shape_str(param.shape)}, got {shape_str(grad.shape)}"
        )

    # ---------------------------------------------------------------- parameters and grads

    def named_parameters(self) -> dict[str, Array]:
        """Name -> live parameter array (parameters that are ``None``, e.g. no bias, are left out).

        Returns
        -------
        dict of str to array
            The parameters in declaration order, the arrays themselves (not copies).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> sorted(pnn.Linear(2, 1, seed=0).named_parameters())
        ['bias', 'weight']
        """
        attributes, params = self.__dict__, {}
        for name in self._parameter_names:  # a plain loop: run on every forward and backward
            value = attributes[name]
            if value is not None:
                params[name] = value
        return params

    def parameters(self) -> list[Array]:
        """The live parameter arrays, in declaration order.

        Returns
        -------
        list of array
            The values of :meth:`named_parameters`, the arrays themselves (not copies).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> [p.shape for p in pnn.Linear(2, 1, seed=0).parameters()]
        [(1, 2), (1,)]
        """
        return list(self.named_parameters().values())

    def named_grads(self) -> dict[str, Array | None]:
        """Name -> accumulated gradient (``None`` before any backward) for each parameter.

        Returns
        -------
        dict of str to array or None
            One entry per name of :meth:`named_parameters`: its gradient, the parameter's shape.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.named_grads()
        {'weight': None, 'bias': None}
        >>> _ = layer.backward(layer.xp.ones_like(layer(layer.xp.ones((3, 2), dtype=layer.dtype))))
        >>> layer.named_grads()["bias"].tolist()
        [3.0]
        """
        return {n: getattr(self, f"grad_{n}") for n in self.named_parameters()}

    def _require_grads(self) -> dict[str, Array]:
        """:meth:`named_grads`, or a CallOrderError naming the parameters that have none yet."""
        grads = self.named_grads()
        missing = [n for n, g in grads.items() if g is None]
        if missing:
            raise CallOrderError(f"step() needs gradients, but {missing} have none: call backward() first")
        return grads

    def zero_grad(self) -> None:
        """Forget accumulated gradients (they become ``None``).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> y = layer(layer.xp.ones((3, 2), dtype=layer.dtype))
        >>> _ = layer.backward(layer.xp.ones_like(y))
        >>> layer.zero_grad()
        >>> layer.grad_weight is None
        True
        """
        attributes = self.__dict__
        for name in self._parameter_names:
            attributes["grad_" + name] = None

    def set_parameters(self, values: Mapping[str, Array]) -> None:
        """Rebind parameters to new arrays, all or nothing.

        Lazy (Dask) values are materialized together: see :func:`portable_nn._backend.materialize`.
        The arrays are held, never copied or mutated.

        Parameters
        ----------
        values : mapping of str to array
            Parameter name -> new value: a ``self.xp`` array on ``self.device`` with ``self.dtype``
            and the parameter's current shape. Names not given keep their value.

        Raises
        ------
        UnknownParameterError
            A name is no parameter (nothing changes).
        NamespaceError, DeviceError, DTypeError, ShapeError
            A value is not placed or shaped like its parameter (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.set_parameters({"bias": layer.xp.zeros((1,), dtype=layer.dtype)})
        >>> layer.bias.tolist()
        [0.0]
        """
        current = self.named_parameters()
        for name, value in values.items():
            if name not in current:
                raise UnknownParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; parameters: {list(current)}"
                )
            check_like(value, name, current[name], self.xp, self.device, self.dtype)
        for name, value in zip(values, materialize(*values.values()), strict=True):
            setattr(self, name, value)

    def _rebind_parameters(self, values: Mapping[str, Array]) -> None:
        """:meth:`set_parameters` without validation, for values computed from this module's checked parameters."""
        attributes = self.__dict__
        for name in values:
            attributes[name] = values[name]

    def step(self, lr: float = 0.01) -> None:
        """Plain gradient descent: ``p <- p - lr * grad_p`` for every parameter (grads are kept).

        Every new parameter is computed before any is rebound, through :meth:`set_parameters`
        (all or nothing, never in place; composite modules route the names to their layers).

        Parameters
        ----------
        lr : float
            The learning rate, finite and non-negative.

        Raises
        ------
        CallOrderError
            A parameter has no gradient yet (call :meth:`backward` first); nothing changes.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.set_parameters({"bias": layer.xp.zeros((1,), dtype=layer.dtype)})
        >>> _ = layer.backward(layer.xp.ones_like(layer(layer.xp.ones((3, 2), dtype=layer.dtype))))
        >>> layer.step(lr=0.5)
        >>> layer.bias.tolist()
        [-1.5]
        """
        lr = check_lr(lr)
        params, grads = self.named_parameters(), self._require_grads()
        xp, device, dtype = self.xp, self.device, self.dtype
        for name, grad in grads.items():
            check_like(grad, f"grad of {name}", params[name], xp, device, dtype)
        updated = {}
        for name, grad in grads.items():
            new = as_array(xp, grad * -lr)  # == -(lr * grad) exactly; an array even for 0-d (NumPy: scalars)
            new += params[name]  # standard in-place add on the fresh array (JAX/Dask rebind): one buffer
            updated[name] = new
        self.set_parameters(updated)

    # ---------------------------------------------------------------- display

    def _placement(self) -> str:
        return (
            f"backend={backend_name(self.xp)}, device={device_str(self.xp, self.device)}, "
            f"dtype={dtype_name(self.xp, self.dtype)}"
        )
