"""``Module``: the base of stateful layers — placement, parameters, their gradients and plain SGD ``step``.

A module owns named parameter arrays (attributes) and, for each, a ``grad_<name>`` attribute
that backward accumulates into. Arrays are never mutated in place: every update rebinds
the attribute, so immutable JAX arrays work.

Writing a layer takes only this class's public methods (see ``examples/layer_norm``)::

    class Scale(pnn.Module):
        def __init__(self, features, *, xp="numpy", device=None, dtype="float32", seed=None):
            super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)   # placement + host RNG
            self.add_parameter("scale", (features,), init="ones")             # self.scale, self.grad_scale

        def forward(self, x):
            self.check_input(x, last_axis=self.scale.shape[0])
            self.save_for_backward(x)
            return x * self.scale

        def backward(self, grad_output):
            (x,) = self.saved_for_backward()
            self.check_input(grad_output, "grad_output", shape=x.shape)
            self.accumulate_grad("scale", self.xp.sum(self.xp.reshape(grad_output * x, (-1, x.shape[-1])), axis=0))
            return grad_output * self.scale
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from ._arrays import as_array
from ._backend import (
    backend_name,
    convert,
    device_str,
    dtype_name,
    from_host,
    is_traced,
    materialize,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    supported_on,
    target_placement,
)
from ._checks import check_array, check_like, check_lr, shape_str
from ._pickling import get_state, set_state
from ._trusted import is_trusted
from .errors import (
    ArgumentError,
    CallOrderError,
    ShapeError,
    UnknownParameterError,
)
from .grad_mode import is_grad_enabled
from .init import ParameterInit, Seed, draw, make_rng
from .module_state import loadable_state

__all__ = ["Module"]

Array = Any
M = TypeVar("M", bound="Module")


#: Why a forward kept nothing: it ran under a compiler's trace (see Module.save_for_backward).
_TRACED = object()
#: Set while the functional form runs a forward whose kept values stay inside the caller's trace.
_KEEP_TRACED: ContextVar[bool] = ContextVar("portable_nn_keep_traced", default=False)


class Module:
    """Base class of layers.

    A layer with parameters calls ``super().__init__(xp=..., device=..., dtype=..., seed=...)``
    (its placement and a host RNG) and declares each parameter with :meth:`add_parameter` (or
    :meth:`register_parameter` for an array it already has); ``forward`` validates its input with
    :meth:`check_input` and keeps what ``backward`` needs with :meth:`save_for_backward`;
    ``backward`` reads it with :meth:`saved_for_backward`, adds each parameter's gradient with
    :meth:`accumulate_grad` and returns the input's gradient. Grads, ``step``, ``state_dict``,
    ``to``, optimizers, ``Sequential`` and ``no_grad`` then work with no further code.
    Parameter-free layers (activations) need not call ``__init__``.
    """

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()

    #: What the last forward kept for backward (None: nothing), and whether it ran under ``no_grad()``.
    _saved: Any = None
    _nothing_saved_because: object = False  # False: saved (or no forward yet); True: no_grad(); _TRACED: traced

    if TYPE_CHECKING:  # parameters and their grads are attributes named at run time (``weight``, ``grad_weight``)

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32", seed: Seed = None) -> None:
        """Place the module: ``xp`` (backend name, namespace or array), ``device`` (``"cpu"``, ``"cuda:N"``, a native
        device or None = the backend's default), ``dtype`` (``"float32"``... or a backend dtype), and a host
        ``numpy.random.Generator`` from ``seed`` (int, Generator or None) that :meth:`add_parameter` draws from.
        """
        namespace = resolve_namespace(xp)
        where = resolve_device(namespace, device)
        self.dtype = supported_on(namespace, where, resolve_dtype(namespace, dtype))
        self.xp, self.device = namespace, where
        self._rng = make_rng(seed)
        self._parameter_names = ()
        self._forget_kept()

    # ---------------------------------------------------------------- authoring: declaring parameters

    def add_parameter(
        self,
        name: str,
        shape: tuple[int, ...],
        init: str | ParameterInit = "zeros",
        *,
        fan_in: int | None = None,
        fan_out: int | None = None,
    ) -> Array:
        """Declare parameter ``name`` of ``shape``, drawn by ``init`` on the host, placed like the module.

        ``init`` is a name of :data:`portable_nn.init.PARAMETER_INITS` (``"zeros"``, ``"ones"``,
        ``"torch"``, ``"xavier_uniform"``, ``"kaiming_normal"``, ...) or a callable
        ``init(rng, shape, *, fan_in, fan_out) -> host array``. It draws in float64 from the module's
        seeded RNG (in declaration order), then the values are cast on the host and moved to the
        module's backend, device and dtype: one seed gives the same bytes on every backend.
        ``fan_in``/``fan_out`` default to :func:`portable_nn.init.default_fans` of ``shape``.
        Sets ``self.<name>`` and ``self.grad_<name> = None``; returns the new array.

        Example: ``self.add_parameter("weight", (out, in), init="torch")``.
        """
        self._check_new_parameter_name(name)
        host = draw(init, self._rng, shape, fan_in=fan_in, fan_out=fan_out)
        value = from_host(host, self.xp, self.device, self.dtype)
        self._bind_parameter(name, value)
        return value

    def register_parameter(self, name: str, value: Array | None) -> None:
        """Declare parameter ``name`` holding ``value``: an array of the module's backend, device and dtype.

        ``None`` declares an absent optional parameter (e.g. ``bias=False``): it is left out of
        :meth:`named_parameters`. The array is held, never copied or mutated.
        """
        self._check_new_parameter_name(name)
        if value is not None:
            check_array(value, name, self.xp, self.device, self.dtype)
        self._bind_parameter(name, value)

    def _check_new_parameter_name(self, name: str) -> None:
        if not hasattr(self, "_rng"):
            raise CallOrderError(
                f"{type(self).__name__}: call super().__init__(xp=..., device=..., dtype=..., seed=...) "
                "before declaring parameters"
            )
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("grad_"):
            raise ArgumentError(f"parameter name must be an identifier not starting with 'grad_', got {name!r}")
        if name in self._parameter_names:
            raise ArgumentError(f"{type(self).__name__} already has a parameter {name!r}")
        if name in vars(self) or hasattr(type(self), name):
            raise ArgumentError(f"{type(self).__name__} already has an attribute {name!r}")

    def _bind_parameter(self, name: str, value: Array | None) -> None:
        setattr(self, name, value)
        setattr(self, f"grad_{name}", None)
        self._parameter_names = (*self._parameter_names, name)

    # ---------------------------------------------------------------- authoring: forward and backward

    def check_input(
        self, x: Array, what: str = "input", *, shape: tuple[int, ...] | None = None, last_axis: int | None = None
    ) -> None:
        """Raise a typed error unless ``x`` is an array of this module's backend, device and dtype.

        ``shape``: the exact shape ``x`` must have (e.g. a ``grad_output`` against the last output's
        shape); ``last_axis``: the size its last axis must have (e.g. ``in_features``). Errors are
        ``NamespaceError``, ``DeviceError``, ``DTypeError`` or ``ShapeError`` naming ``what``.
        """
        if is_trusted():  # validated once per input signature by train_step
            return
        check_array(x, what, self.xp, self.device, self.dtype)
        if shape is not None and tuple(x.shape) != tuple(shape):
            raise ShapeError(f"{what}: expected shape {shape_str(shape)}, got {shape_str(x.shape)}")
        if last_axis is not None and (x.ndim == 0 or x.shape[-1] != last_axis):
            raise ShapeError(f"{what}: expected shape (*, {last_axis}) (the last axis), got {shape_str(x.shape)}")

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` for the next :meth:`backward`, or nothing when the forward runs under ``no_grad()``.

        Under a compiler's trace (``jax.jit(layer.forward)``) the values are stand-ins that die with the
        trace: nothing is kept, and ``backward`` then says to use the functional API
        (:func:`portable_nn.value_and_grad`, :func:`portable_nn.functional_call`, :func:`portable_nn.train_step`).
        """
        if not is_grad_enabled():
            self._saved, self._nothing_saved_because = None, True
        elif not _KEEP_TRACED.get() and any(is_traced(v) for v in values):
            self._saved, self._nothing_saved_because = None, _TRACED
        else:
            self._saved, self._nothing_saved_because = values, False

    def saved_for_backward(self) -> tuple[Any, ...]:
        """What the last forward kept (a tuple); a ``CallOrderError`` if it kept nothing."""
        if self._saved is None:
            if self._nothing_saved_because is _TRACED:
                raise CallOrderError(
                    "backward() cannot use the last forward: it ran under a compiler's trace (jax.jit), whose values "
                    "do not outlive it; differentiate inside jax.jit with pnn.value_and_grad(model, loss_fn) or "
                    "pnn.functional_call, or train with pnn.train_step(model, loss_fn, optimizer)"
                )
            why = "the last forward ran under no_grad()" if self._nothing_saved_because else "no forward was run"
            raise CallOrderError(f"backward() needs a forward() with gradients enabled first: {why}")
        return self._saved  # type: ignore[no-any-return]

    def _forget_kept(self) -> None:
        self._saved, self._nothing_saved_because = None, False

    def accumulate_grad(self, name: str, grad: Array, *, validate: bool = True) -> None:
        """Add ``grad`` to ``grad_<name>`` (or set it when there is none yet), by rebinding.

        ``grad`` must be an array of the module's backend, device and dtype with the parameter's
        shape (checked unless ``validate=False``, for gradients computed from checked operands).
        ``grad`` is held, not copied, and never mutated; a later accumulation builds a new array.
        """
        current = getattr(self, f"grad_{name}", None)
        if validate:
            if name not in self._parameter_names or getattr(self, name) is None:
                raise ArgumentError(f"{type(self).__name__} has no parameter {name!r}; parameters: {self._names()}")
            check_like(grad, f"grad_{name}", getattr(self, name), self.xp, self.device, self.dtype)
        total = grad if current is None else current + grad
        setattr(
            self, f"grad_{name}", as_array(self.xp, total) if total.ndim == 0 else total
        )  # NumPy: 0-d sums are scalars

    def _names(self) -> list[str]:
        return list(self.named_parameters())

    def forward(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_output: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    def __getstate__(self) -> dict[str, Any]:  # pickle/deepcopy: arrays as host copies, namespace by name
        return get_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:  # back on the same backend, device and dtype
        set_state(self, state)

    # ---------------------------------------------------------------- functional form

    def functional_forward(self, params: Mapping[str, Array], x: Array) -> tuple[Array, Any]:
        """``(y, ctx)``: the forward with ``params`` (name -> array) in place of the parameters; pure.

        ``ctx`` is what :meth:`functional_backward` needs. This default binds ``params`` on a
        snapshot of the module's attributes, runs :meth:`forward` and restores the snapshot, so
        the module is left as it was (not thread-safe for one module; layers override it with
        pure code, e.g. :class:`~portable_nn.Linear`).
        """
        with self._bound(params):
            self._forget_kept()
            token = _KEEP_TRACED.set(True)  # the ctx returned is used inside the same trace: keep it
            try:
                y = self.forward(x)
            finally:
                _KEEP_TRACED.reset(token)
            return y, self._saved

    def functional_backward(
        self, params: Mapping[str, Array], ctx: Any, grad_output: Array
    ) -> tuple[Array, dict[str, Array]]:
        """``(dL/dx, {name: dL/dparam})`` from :meth:`functional_forward`'s ``ctx``; pure (see there)."""
        with self._bound(params):
            for name in params:
                setattr(self, f"grad_{name}", None)
            self._saved, self._nothing_saved_because = ctx, False
            grad_x = self.backward(grad_output)
            return grad_x, {name: getattr(self, f"grad_{name}") for name in params}

    @contextlib.contextmanager
    def _bound(self, params: Mapping[str, Array]) -> Iterator[None]:
        """``params`` bound as the module's parameters inside; every attribute restored on the way out."""
        snapshot = dict(vars(self))
        try:
            for name, value in params.items():
                setattr(self, name, value)
            yield
        finally:
            vars(self).clear()
            vars(self).update(snapshot)

    # ---------------------------------------------------------------- parameters and grads

    def named_parameters(self) -> dict[str, Array]:
        """Name -> live parameter array (parameters that are ``None``, e.g. no bias, are left out)."""
        return {n: getattr(self, n) for n in self._parameter_names if getattr(self, n) is not None}

    def parameters(self) -> list[Array]:
        """The live parameter arrays, in declaration order."""
        return list(self.named_parameters().values())

    def named_grads(self) -> dict[str, Array | None]:
        """Name -> accumulated gradient (``None`` before any backward) for each parameter."""
        return {n: getattr(self, f"grad_{n}") for n in self.named_parameters()}

    def _require_grads(self) -> dict[str, Array]:
        """:meth:`named_grads`, or a CallOrderError naming the parameters that have none yet."""
        grads = self.named_grads()
        missing = [n for n, g in grads.items() if g is None]
        if missing:
            raise CallOrderError(f"step() needs gradients, but {missing} have none: call backward() first")
        return grads

    def zero_grad(self) -> None:
        """Forget accumulated gradients (they become ``None``)."""
        for name in self._parameter_names:
            setattr(self, f"grad_{name}", None)

    def set_parameters(self, values: Mapping[str, Array]) -> None:
        """Rebind parameters to new arrays, all or nothing.

        Every value must be a ``self.xp`` array on ``self.device`` with ``self.dtype`` and the
        current shape; the names must be existing parameters. Nothing changes if one fails.
        Lazy (Dask) values are materialized together: see :func:`portable_nn._backend.materialize`.
        """
        if is_trusted():  # values computed from validated parameters and already stored (train_step)
            for name, value in values.items():
                setattr(self, name, value)
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

    def step(self, lr: float = 0.01) -> None:
        """Plain gradient descent: ``p <- p - lr * grad_p`` for every parameter (grads are kept).

        Every new parameter is computed before any is rebound, through :meth:`set_parameters`
        (all or nothing, never in place; composite modules route the names to their layers).
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

    # ---------------------------------------------------------------- state and placement

    def state_dict(self) -> dict[str, Array]:
        """Name -> live parameter array (no copy: portable_nn never mutates arrays in place).

        Names come from :meth:`named_parameters`, so a container that prefixes them
        (``"0.weight"``) gets the prefixed names. Grads and the saved input are not state.
        """
        return dict(self.named_parameters())

    def load_state_dict(self, state: Mapping[str, Array], strict: bool = True, cast: bool = False) -> None:
        """Replace parameters with ``state``'s arrays, from any backend or device; all or nothing.

        Every value is validated before anything changes: with ``strict`` (default) missing or
        unexpected names -> SerializationError (``strict=False`` loads the common names only);
        a non-array (e.g. a list) -> NamespaceError; a non-float dtype, or a float dtype other
        than the parameter's without ``cast=True`` (no silent float64 -> float32) -> DTypeError;
        another shape -> ShapeError. Values are then copied onto each parameter's backend,
        device and dtype (they never alias the caller's arrays, e.g. a torch module's weights).
        Grads and the saved input are kept, as in
        PyTorch; call ``zero_grad()`` when they no longer apply.
        """
        self.set_parameters(loadable_state(self, state, strict=strict, cast=cast))

    def to(self: M, xp: Any = None, device: Any = None, dtype: Any = None) -> M:
        """Move parameters and grads to ``xp``/``device``/``dtype`` (None keeps each); returns ``self``.

        DLPack where the backends share memory, a host round trip where not (CUDA -> NumPy).
        A kept device is matched by its portable string, else the target's default device; a
        kept dtype the target lacks (bfloat16 -> NumPy) is a DTypeError, and a given ``dtype``
        is an explicit cast. The input saved by the last forward is dropped (run a new
        forward before backward). All or nothing: if any array cannot move, nothing changes.
        Containers override this to delegate to their children.
        """
        target = target_placement(self.xp, self.device, self.dtype, xp, device, dtype)
        if target[0] is self.xp and target[1] == self.device and target[2] == self.dtype:
            return self
        params = {n: convert(p, *target) for n, p in self.named_parameters().items()}
        grads = {n: None if g is None else convert(g, *target) for n, g in self.named_grads().items()}
        self.xp, self.device, self.dtype = target
        for name in params:
            setattr(self, name, params[name])
            setattr(self, f"grad_{name}", grads[name])
        self._forget_kept()
        return self

    # ---------------------------------------------------------------- display

    def _placement(self) -> str:
        return (
            f"backend={backend_name(self.xp)}, device={device_str(self.xp, self.device)}, "
            f"dtype={dtype_name(self.xp, self.dtype)}"
        )

    # ---------------------------------------------------------------- gradients (rebinding)

    def set_grads(self, values: Mapping[str, Array]) -> None:
        """Rebind accumulated gradients to new arrays, all or nothing (e.g. after clipping).

        Names are parameter names (as :meth:`named_grads` gives them); every value must be a
        ``self.xp`` array on ``self.device`` with ``self.dtype`` and its parameter's shape, checked
        before anything changes: an unknown name is an ``UnknownParameterError``, a mismatch a
        ``NamespaceError``/``DeviceError``/``DTypeError``/``ShapeError``. Arrays are held, never copied.

        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.set_grads({"weight": layer.xp.ones((1, 2), dtype=layer.dtype)})
        >>> layer.grad_weight.tolist()
        [[1.0, 1.0]]
        """
        current = self.named_parameters()
        for name, value in values.items():
            if name not in current:
                raise UnknownParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; parameters: {list(current)}"
                )
            check_like(value, f"grad_{name}", current[name], self.xp, self.device, self.dtype)
        for name, value in values.items():
            setattr(self, f"grad_{name}", value)

    # ---------------------------------------------------------------- architecture config (whole-model files)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer's architecture, as JSON values.

        Placement (``xp``, ``device``, ``dtype``) and ``seed`` are not part of it: :meth:`from_config`
        takes the placement, and the parameters come from the checkpoint. ``pnn.save`` stores it
        for registered classes (:func:`portable_nn.register`) and ``pnn.load`` passes it back.

        A user layer whose constructor takes arguments declares them by overriding this method::

            @pnn.register
            class Scale(pnn.Module):
                def __init__(self, features, *, xp="numpy", device=None, dtype="float32", seed=None):
                    super().__init__(xp=xp, device=device, dtype=dtype, seed=seed)
                    self.features = features
                    self.add_parameter("scale", (features,), init="ones")

                def get_config(self):
                    return {"features": self.features}

        The default returns ``{}`` for a constructor with only optional arguments and raises an
        ``ArgumentError`` naming the class otherwise.
        """
        import inspect

        required = [
            name
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required:
            raise ArgumentError(
                f"{type(self).__name__} takes constructor arguments {required}: override get_config() to return "
                "them as a dict of JSON values, so a checkpoint can rebuild the layer"
            )
        return {}

    @classmethod
    def from_config(
        cls: type[M], config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> M:
        """A new layer built from :meth:`get_config`'s dict, placed on ``xp``/``device``/``dtype``.

        Its parameters are initialized as the constructor does; ``pnn.load`` calls it inside
        :func:`portable_nn.init.placeholder` (zeros, no random draw, a size budget) and then
        replaces them with the file's. The default calls
        ``cls(**config, xp=xp, device=device, dtype=dtype)``; override it when the constructor differs.
        """
        return cls(**config, xp=xp, device=device, dtype=dtype)
