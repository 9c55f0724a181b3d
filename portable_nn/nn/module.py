"""``Module``: the base of layers — one pure forward/backward pair, and the stateful API derived from it.

A layer writes the pure pair (see ``examples/layer_norm``)::

    class Scale(pnn.Module):
        def __init__(self, features, *, xp="numpy", device=None, dtype="float32", seed=None):
            super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)   # placement + host RNG
            self.add_parameter("scale", (features,), init="ones")             # self.scale, self.grad_scale

        def functional_forward(self, params, x, call):
            if call.validate:
                self.check_input(x, last_axis=params["scale"].shape[0])
            return x * params["scale"], x                                      # (y, saved)

        def functional_backward(self, params, x, grad_output, need_input_grad, call):
            if call.validate:
                self.check_input(grad_output, "grad_output", shape=x.shape)
            rows = self.xp.reshape(grad_output * x, (-1, x.shape[-1]))
            grad_x = grad_output * params["scale"] if need_input_grad else None
            return grad_x, {"scale": self.xp.sum(rows, axis=0)}

``forward``/``__call__`` run the pure forward with the module's parameters and keep ``saved`` on
the module; ``backward`` runs the pure backward on it and accumulates into ``grad_<name>``;
:func:`~portable_nn.value_and_grad`, :func:`~portable_nn.functional_call` and
:func:`~portable_nn.train_step` run the same pair with parameters passed in. Arrays are never
mutated in place: every update rebinds the attribute, so immutable JAX arrays work.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .._arrays import as_array
from .._backend import (
    backend_name,
    device_of,
    device_str,
    dtype_name,
    is_traced,
    materialize,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_on,
)
from .._checks import check_array, check_like, check_lr, shape_str
from .._pickling import get_state, set_state
from .._trusted import is_trusted
from ..errors import ArgumentError, CallOrderError, DTypeError, ShapeError, UnknownParameterError
from ..init import Seed, make_rng
from ..typing import Array
from ._module_state import ModuleState
from .buffers import BufferUpdate, split_saved
from .grad_mode import CHECKED, UNCHECKED, Call, _grad_enabled
from .rng import RandomStream

__all__ = ["CHECKED", "UNCHECKED", "BufferUpdate", "Call", "Module"]

M = TypeVar("M", bound="Module")


#: The call of a public entry point in eval mode.
_CHECKED_EVAL = Call(validate=True, training=False)

#: Why a forward kept nothing: it ran under a compiler's trace (see Module.forward).
_TRACED = object()


class Module(ModuleState):
    """Base class of layers: a layer writes :meth:`functional_forward` and :meth:`functional_backward`.

    A layer with parameters calls ``super().__init__(xp=..., device=..., dtype=..., seed=...)``
    (its placement and a host RNG) and declares each parameter with :meth:`~portable_nn.Module.add_parameter` (or
    :meth:`~portable_nn.Module.register_parameter` for an array it already has). Its pure pair reads parameters from
    ``params``, checks arguments with :meth:`check_input` when ``call.validate`` is set (see
    :class:`Call`), and returns ``(y, saved)`` and ``(dL/dx, {name: dL/dparam})``. ``forward``,
    ``__call__``, ``backward``, grads, ``step``, ``state_dict``, ``to``, optimizers,
    ``Sequential``, ``no_grad``, ``functional_call``, ``value_and_grad`` and ``train_step`` then work
    with no further code. Parameter-free layers (activations) need not call ``__init__``.

    Buffers, modes and randomness: a layer declares non-trainable state with
    :meth:`~portable_nn.Module.register_buffer`; its pure forward reads buffers from ``params`` (beside
    the parameters, under their own names) and, when it changes them, returns
    ``(y, BufferUpdate(saved, {name: new}))`` (:class:`~portable_nn.BufferUpdate`); layers without buffers
    are unchanged. The mode and the random key are fields of ``call`` (``call.training``, ``call.key``).
    ``forward`` passes ``self.training`` (set by :meth:`~portable_nn.Module.train` /
    :meth:`~portable_nn.Module.eval` through every container), in train mode the next key of the
    module's :class:`~portable_nn.nn.rng.RandomStream` when a layer has ``needs_random_key = True``
    (advancing the stream), and rebinds the returned buffers.

    Defining ``forward``, ``backward`` or ``__call__`` in a subclass is a ``TypeError`` (they are
    derived from the pure pair, so a layer has one path through the library).

    Parameters
    ----------
    xp : str, namespace or array
        The backend: a name (``"numpy"``, ``"torch"``...), an array namespace, or an array whose
        namespace is taken.
    device : str, native device or None
        ``"cpu"``, ``"cuda:N"``, a backend's own device object, or None for the backend's default.
    dtype : str or backend dtype
        The floating dtype of the parameters (``"float32"``, ``"float64"``... or a backend dtype).
    seed : int, numpy.random.Generator or None
        The host random generator :meth:`~portable_nn.Module.add_parameter` draws initial values from.

    Examples
    --------
    A layer with one parameter, ``y = x * scale`` (``x`` of shape ``(..., n)``):

    >>> import portable_nn as pnn
    >>> class Scale(pnn.Module):
    ...     def __init__(self, n, **placement):
    ...         super().__init__(**placement)
    ...         self.add_parameter("scale", (n,), init="ones")
    ...     def functional_forward(self, params, x, call):
    ...         return x * params["scale"], x
    ...     def functional_backward(self, params, x, grad_output, need_input_grad, call):
    ...         rows = self.xp.reshape(grad_output * x, (-1, x.shape[-1]))
    ...         return grad_output * params["scale"], {"scale": self.xp.sum(rows, axis=0)}
    >>> layer = Scale(3)
    >>> x = layer.xp.ones((2, 3), dtype=layer.dtype)
    >>> layer(x).shape, layer.backward(layer.xp.ones((2, 3), dtype=layer.dtype)).shape
    ((2, 3), (2, 3))
    >>> layer.grad_scale.tolist()
    [2.0, 2.0, 2.0]
    """

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()

    #: What the last forward kept for backward (None: nothing), and whether it ran under ``no_grad()``.
    _saved: Any = None
    _saved_params: Any = None  # None: nothing kept (a layer's ``saved`` may itself be None)
    _nothing_saved_because: object = False  # False: saved (or no forward yet); True: no_grad(); _TRACED: traced

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        derived = [name for name in ("forward", "backward", "__call__") if name in vars(cls)]
        if derived:
            raise TypeError(
                f"{cls.__qualname__} defines {derived}: a layer writes the pure pair functional_forward(params, x, "
                "call) -> (y, saved) and functional_backward(params, saved, grad_output, need_input_grad, call) -> "
                "(grad_x, grads); Module derives forward, backward and __call__ from it (docs/guide/custom-layers.md)"
            )

    if TYPE_CHECKING:  # parameters and their grads are attributes named at run time (``weight``, ``grad_weight``)

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32", seed: Seed = None) -> None:
        """Place the module: ``xp`` (backend name, namespace or array), ``device`` (``"cpu"``, ``"cuda:N"``, a native
        device or None = the backend's default), ``dtype`` (``"float32"``... or a backend dtype), and a host
        ``numpy.random.Generator`` from ``seed`` (int, Generator or None) that
        :meth:`~portable_nn.Module.add_parameter` draws from.
        """
        namespace = resolve_namespace(xp)
        where = resolve_device(namespace, device)
        self.dtype = supported_on(namespace, where, resolve_dtype(namespace, dtype))
        self.xp, self.device = namespace, where
        self._rng = make_rng(seed)
        self._parameter_names = ()
        self._forget_kept()

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

        A layer's pure forward calls it when ``call.validate`` is set (see :class:`Call`).

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
        Module._add_grads(self, {name: grad})

    def _names(self) -> list[str]:
        return list(self.named_parameters())

    # ---------------------------------------------------------------- the pure pair: what a layer writes

    def functional_forward(self, params: Mapping[str, Array], x: Array, call: Call = CHECKED) -> tuple[Array, Any]:
        """The layer's forward as a pure function: ``(y, saved)`` from ``params`` and ``x``.

        A layer overrides this and :meth:`functional_backward`; :meth:`forward`, :meth:`backward`,
        ``__call__``, :func:`~portable_nn.functional_call`, :func:`~portable_nn.value_and_grad` and
        :func:`~portable_nn.train_step` all run it. It reads parameters from ``params`` only (never
        ``self.<name>``), changes nothing on the module and inspects only shapes, dtypes and devices,
        so ``jax.jit`` can trace it.

        Parameters
        ----------
        params : mapping of str to array
            Parameter name -> array (the keys of :meth:`named_parameters`).
        x : array
            The input.
        call : Call
            How this call runs (``call.validate``: check ``x`` with :meth:`check_input`).

        Returns
        -------
        y : array
            The output.
        saved : any
            What :meth:`functional_backward` needs (arrays, shapes...), kept by :meth:`forward` on the
            module or handed back by the functional API.

        Raises
        ------
        NotImplementedError
            The layer does not define it (this base method is abstract).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> y, saved = layer.functional_forward(layer.named_parameters(), layer.xp.ones((4, 3), dtype=layer.dtype))
        >>> y.shape
        (4, 2)
        """
        raise NotImplementedError(f"{type(self).__name__} must define functional_forward(params, x, call)")

    def functional_backward(
        self,
        params: Mapping[str, Array],
        saved: Any,
        grad_output: Array,
        need_input_grad: bool = True,
        call: Call = CHECKED,
    ) -> tuple[Array | None, dict[str, Array]]:
        """The layer's backward as a pure function: ``(dL/dx or None, {name: dL/dparam})``.

        Parameters
        ----------
        params : mapping of str to array
            The parameters :meth:`functional_forward` ran with.
        saved : any
            What that forward returned as ``saved``.
        grad_output : array
            ``dL/dy``, the shape of the forward's output.
        need_input_grad : bool
            Whether the caller uses ``dL/dx``; when False the layer may skip computing it and return
            ``None`` (:func:`~portable_nn.value_and_grad` drops the model's input gradient).
        call : Call
            How this call runs (``call.validate``: check ``grad_output``).

        Returns
        -------
        grad_x : array or None
            ``dL/dx`` (the input's shape), or None when not needed.
        grads : dict of str to array
            One gradient per parameter name of ``params``, each with its parameter's shape.

        Raises
        ------
        NotImplementedError
            The layer does not define it (this base method is abstract).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> params = layer.named_parameters()
        >>> y, saved = layer.functional_forward(params, layer.xp.ones((4, 3), dtype=layer.dtype))
        >>> grad_x, grads = layer.functional_backward(params, saved, layer.xp.ones_like(y))
        >>> grad_x.shape, sorted(grads), grads["weight"].shape
        ((4, 3), ['bias', 'weight'], (2, 3))
        """
        raise NotImplementedError(f"{type(self).__name__} must define functional_backward(...)")

    # ---------------------------------------------------------------- the stateful API, derived from the pure pair

    def forward(self, x: Array) -> Array:
        """``y`` of :meth:`functional_forward` with the module's parameters; keeps ``saved`` for :meth:`backward`.

        Under ``no_grad()`` nothing is kept; under a compiler's trace (``jax.jit(layer.forward)``)
        nothing is kept either (traced values die with the trace: differentiate with
        :func:`~portable_nn.value_and_grad` or :func:`~portable_nn.train_step` instead).

        Parameters
        ----------
        x : array
            The input, of the module's backend, device and dtype.

        Returns
        -------
        array
            The output.

        Raises
        ------
        NamespaceError, DeviceError, DTypeError, ShapeError
            ``x`` does not fit the layer (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> layer.forward(layer.xp.ones((4, 3), dtype=layer.dtype)).shape
        (4, 2)
        """
        params = self.named_parameters()
        buffers = self.named_buffers()
        if buffers:
            params = {**params, **buffers}
        training, stream, call = self.training, None, CHECKED
        if training and self._uses_randomness():
            stream = self._random_stream()
            call = Call(validate=True, training=True, key=stream.key(xp=namespace_of(x), device=device_of(x)))
        elif not training:
            call = _CHECKED_EVAL
        y, saved = self.functional_forward(params, x, call)
        saved, new_buffers = split_saved(saved)
        if (new_buffers or stream is not None) and is_traced(y):
            raise CallOrderError(
                f"{type(self).__name__}.forward under a compiler's trace would bake a random key or buffer update "
                "into the program: run the pure form instead (functional_forward with buffers in params and "
                "Call(training=..., key=...)), or call model.eval() first"
            )
        if new_buffers:
            self._set_buffers(new_buffers)  # rebinding: arrays a user holds are never mutated
        if stream is not None:
            self._stream = stream.advanced()
        if not _grad_enabled.get():
            self._saved, self._saved_params, self._nothing_saved_because = None, None, True
        elif is_traced(y):
            self._saved, self._saved_params, self._nothing_saved_because = None, None, _TRACED
        else:  # backward pairs ``saved`` with the parameters it was computed with
            self._saved, self._saved_params, self._nothing_saved_because = saved, params, False
        return y

    __call__ = forward

    def _random_stream(self) -> RandomStream:
        """The stream whose next key ``forward`` passes in train mode (a container's: seeded by its first random
        layer)."""
        stream = self.__dict__.get("_stream")
        if stream is None:
            seed = next((m._random_stream().seed for _, m in self._child_modules() if m._uses_randomness()), None)
            stream = RandomStream(secrets.randbits(63) if seed is None else seed)
            self._stream = stream
        return stream

    def __getstate__(self) -> dict[str, Any]:  # pickle/deepcopy: arrays as host copies, namespace by name
        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:  # back on the same backend, device and dtype
        set_state(self, state)

    def backward(self, grad_output: Array) -> Array:
        """Accumulate each parameter's gradient into ``grad_<name>`` and return ``dL/dx`` of the last forward.

        Runs :meth:`functional_backward` on what the last :meth:`forward` kept, with the parameters that
        forward ran with; all or nothing.

        Parameters
        ----------
        grad_output : array
            ``dL/dy``, the shape of the last output.

        Returns
        -------
        array
            ``dL/dx``, the shape of the last input.

        Raises
        ------
        CallOrderError
            No forward with gradients enabled came first.
        NamespaceError, DeviceError, DTypeError, ShapeError
            ``grad_output`` does not fit, or the layer returned a gradient unlike its parameter.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(3, 2, seed=0)
        >>> y = layer(layer.xp.ones((4, 3), dtype=layer.dtype))
        >>> layer.backward(layer.xp.ones_like(y)).shape, layer.grad_weight.shape
        ((4, 3), (2, 3))
        """
        params = self._saved_params
        if params is None:
            self._raise_nothing_saved()
        grad_x, grads = self.functional_backward(params, self._saved, grad_output, True, CHECKED)
        self._add_grads(grads)
        return grad_x  # need_input_grad=True: an array

    def _raise_nothing_saved(self) -> None:
        if self._nothing_saved_because is _TRACED:
            raise CallOrderError(
                "backward() cannot use the last forward: it ran under a compiler's trace (jax.jit), whose values "
                "do not outlive it; differentiate inside jax.jit with pnn.value_and_grad(model, loss_fn) or "
                "pnn.functional_call, or train with pnn.train_step(model, loss_fn, optimizer)"
            )
        why = "the last forward ran under no_grad()" if self._nothing_saved_because else "no forward was run"
        raise CallOrderError(f"backward() needs a forward() with gradients enabled first: {why}")

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

    def _forget_kept(self) -> None:
        self._saved, self._saved_params, self._nothing_saved_because = None, None, False

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
        if is_trusted():  # the optimizer inside train_step (until it calls _rebind_parameters itself)
            self._rebind_parameters(values)
            return
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
