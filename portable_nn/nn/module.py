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

from .._backend import (
    device_of,
    is_traced,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_on,
)
from .._pickling import get_state, set_state
from ..errors import CallOrderError
from ..init import Seed, make_rng
from ..typing import Array
from ._module_params import ModuleParameters
from ._module_state import names_changed
from .buffers import BufferUpdate, split_saved
from .grad_mode import CHECKED, UNCHECKED, Call, _grad_enabled
from .rng import RandomStream

__all__ = ["CHECKED", "UNCHECKED", "BufferUpdate", "Call", "Module"]

M = TypeVar("M", bound="Module")


#: The call of a public entry point in eval mode.
_CHECKED_EVAL = Call(validate=True, training=False)

#: Why a forward kept nothing: it ran under a compiler's trace (see Module.forward).
_TRACED = object()


class Module(ModuleParameters):
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
        names_changed()  # (a module declared again: containers' flat parameter slots are built again)
        self._forget_kept()

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
                "into the program: pass them explicitly with pnn.functional_call(model, params, x, key=..., "
                "training=..., return_buffers=True) (or pnn.value_and_grad), or call model.eval() first"
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

    def _forget_kept(self) -> None:
        self._saved, self._saved_params, self._nothing_saved_because = None, None, False
