"""A module's state and placement: declaring parameters, ``state_dict``, ``load_state_dict``, ``to``, ``get_config``.

:class:`ModuleState` holds the methods :class:`portable_nn.Module` inherits for them (nothing in
them concerns a forward or backward); :func:`loadable_state` validates a ``load_state_dict``
argument: every value is checked against the module's parameters (names, floating dtype, shape,
no silent cast) before anything changes, then copied onto each parameter's backend, device and dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .._backend import (
    FLOAT_DTYPES,
    convert,
    device_of,
    dtype_name,
    from_host,
    namespace_of,
    target_placement,
    to_host,
)
from .._checks import check_array, check_like, namespace_of_arg, shape_str
from ..backends.arrays import plain_storage
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    CallOrderError,
    DTypeError,
    SerializationError,
    ShapeError,
    UnknownParameterError,
)
from ..init import ParameterInit, draw
from ..typing import Array

if TYPE_CHECKING:
    pass

__all__ = ["ModuleState", "loadable_state"]

S = TypeVar("S", bound="ModuleState")

#: (given, expected) dtype pairs a cast cannot lose precision on.
_LOSSLESS = {
    ("float16", "float32"),
    ("float16", "float64"),
    ("bfloat16", "float32"),
    ("bfloat16", "float64"),
    ("float32", "float64"),
}


def loadable_state(module: ModuleState, state: Mapping[str, Array], *, strict: bool, cast: bool) -> dict[str, Array]:
    """``state``'s values validated against ``module``'s parameters and buffers, converted onto their placement.

    Errors (nothing changes): not a mapping -> ``ArgumentTypeError``; with ``strict``, missing or
    unexpected names -> ``SerializationError``; a non-array -> ``NamespaceError``; a non-float
    dtype, or another float dtype without ``cast`` -> ``DTypeError`` (an integer buffer such as
    ``num_batches_tracked`` takes any integer dtype, converted to its own); another shape -> ``ShapeError``.
    """
    if not isinstance(state, Mapping):
        raise ArgumentTypeError(f"state must be a mapping of name -> array, got {type(state).__name__}")
    current = {**module.named_parameters(), **module.named_buffers()}
    missing = [n for n in current if n not in state]
    unexpected = [n for n in state if n not in current]
    if strict and (missing or unexpected):
        raise SerializationError(
            f"state does not match {type(module).__name__}: missing keys {missing}, unexpected keys {unexpected}; "
            f"expected exactly {list(current)} (strict=False loads the common keys only)"
        )
    loaded = {}
    integral = set()
    for name, value in state.items():
        if name not in current:
            continue
        target = current[name]
        value = plain_storage(value)  # np.memmap (joblib) is plain storage: copied; masked arrays stay refused
        source_xp = namespace_of_arg(name, value)
        target_xp = namespace_of(target)
        given = dtype_name(source_xp, value.dtype)
        expected = dtype_name(target_xp, target.dtype)
        if tuple(value.shape) != tuple(target.shape):
            raise ShapeError(f"{name}: expected shape {shape_str(target.shape)}, got {shape_str(value.shape)}")
        if expected not in FLOAT_DTYPES:  # an integer buffer (a counter): any integer dtype
            if not source_xp.isdtype(value.dtype, "integral"):
                raise DTypeError(f"{name}: expected an integer array ({expected}), got dtype {given}")
            integral.add(name)
        elif given not in FLOAT_DTYPES:
            raise DTypeError(f"{name}: expected a floating array ({expected}), got dtype {given}")
        elif given != expected and not cast:
            loss = "" if (given, expected) in _LOSSLESS else " (it would lose precision)"
            raise DTypeError(
                f"{name}: expected dtype {expected}, got {given}; portable_nn never casts silently{loss}: "
                "pass cast=True to convert"
            )
        loaded[name] = (value, target)
    return {
        name: (
            from_host(to_host(value), namespace_of(target), device_of(target), target.dtype)
            if name in integral
            else convert(value, namespace_of(target), device_of(target), target.dtype, copy=True)
        )
        for name, (value, target) in loaded.items()
    }


class ModuleState:
    """State and placement methods of :class:`portable_nn.Module` (a base class; not used on its own)."""

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()
    _buffer_names: tuple[str, ...] = ()
    _rng: Any
    #: Train mode (True, as in PyTorch) or eval mode; set by :meth:`train` and :meth:`eval`.
    training: bool = True

    if TYPE_CHECKING:  # provided by Module

        def named_parameters(self) -> dict[str, Array]: ...
        def named_grads(self) -> dict[str, Array | None]: ...
        def set_parameters(self, values: Mapping[str, Array]) -> None: ...
        def _forget_kept(self) -> None: ...

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
        :meth:`~portable_nn.Module.named_parameters`. The array is held, never copied or mutated.
        """
        self._check_new_parameter_name(name)
        if value is not None:
            check_array(value, name, self.xp, self.device, self.dtype)
        self._bind_parameter(name, value)

    def register_buffer(self, name: str, value: Array) -> None:
        """Declare buffer ``name``: non-trainable state (running statistics, counters) held as ``self.<name>``.

        A buffer is in :meth:`named_buffers`, :meth:`state_dict` and checkpoints, moved by :meth:`to`
        (a floating buffer is cast to a given dtype, an integer one keeps its integer kind, as in
        PyTorch), pickled, and never handed to optimizers. The pure forward reads it from ``params``
        under its name and returns new values in a :class:`~portable_nn.nn.buffers.BufferUpdate`;
        ``forward`` rebinds them (the old array is never mutated).

        Parameters
        ----------
        name : str
            An identifier, not already an attribute.
        value : array
            The module's backend and device: its floating dtype, or an integer dtype.

        Raises
        ------
        ArgumentError
            A bad or taken name.
        NamespaceError, DeviceError, DTypeError
            ``value`` is not placed like the module, or is floating with another dtype.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0)
        >>> layer.register_buffer("count", layer.xp.zeros((), dtype=layer.xp.int64))
        >>> list(layer.named_buffers()), list(layer.state_dict())
        (['count'], ['weight', 'bias', 'count'])
        """
        self._check_new_parameter_name(name)
        floating = namespace_of_arg(name, value).isdtype(value.dtype, "real floating")
        check_array(value, name, self.xp, self.device, self.dtype if floating else None)
        if not floating and not self.xp.isdtype(value.dtype, "integral"):
            raise DTypeError(
                f"{name}: a buffer is floating ({dtype_name(self.xp, self.dtype)}) or integer, "
                f"got dtype {dtype_name(self.xp, value.dtype)}"
            )
        setattr(self, name, value)
        self._buffer_names = (*self._buffer_names, name)

    def _child_modules(self) -> list[tuple[str, Any]]:
        """``(prefix, module)`` of each child (containers override): routes buffers and modes."""
        return []

    def named_buffers(self) -> dict[str, Array]:
        """Name -> live buffer array: this module's, then each child's prefixed (``"1.running_mean"``).

        Returns
        -------
        dict of str to array
            The arrays themselves (an update rebinds, never mutates).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.BatchNorm1d(3))
        >>> list(model.named_buffers())
        ['1.running_mean', '1.running_var', '1.num_batches_tracked']
        """
        names = self._buffer_names
        if not names and type(self)._child_modules is ModuleState._child_modules:
            return {}  # a layer without buffers: the common case, on every forward
        attributes = self.__dict__
        buffers = {name: attributes[name] for name in names}
        for prefix, child in self._child_modules():
            for name, value in child.named_buffers().items():
                buffers[f"{prefix}.{name}"] = value
        return buffers

    def _set_buffers(self, values: Mapping[str, Array]) -> None:
        """Rebind buffers (names of :meth:`named_buffers`, values already checked), routing children's by prefix."""
        children = dict(self._child_modules())
        routed: dict[str, dict[str, Array]] = {}
        for name, value in values.items():
            if name in self._buffer_names:
                setattr(self, name, value)
            else:
                head, _, rest = name.partition(".")
                routed.setdefault(head, {})[rest] = value
        for head, child_values in routed.items():
            children[head]._set_buffers(child_values)

    def _uses_randomness(self) -> bool:
        """Whether this module or a child draws random numbers in train mode (needs ``call.key``)."""
        if getattr(self, "needs_random_key", False):
            return True
        if type(self)._child_modules is ModuleState._child_modules:
            return False
        return any(child._uses_randomness() for _, child in self._child_modules())

    def random_streams(self) -> dict[str, dict[str, int]]:
        """Where each random stream of this model stands: ``{module path: {"seed": ..., "position": ...}}``.

        The path is ``""`` for this module and ``"<index>"`` (``"0.3"``...) for a child's. ``pnn.save``
        stores it with a model and ``pnn.load`` restores it, so a training run resumes bit for bit.

        Returns
        -------
        dict of str to dict
            One :meth:`portable_nn.nn.rng.RandomStream.state_dict` per module holding a stream.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.Dropout(0.5, seed=4)).random_streams()
        {'1': {'seed': 4, 'position': 0}}
        """
        streams: dict[str, dict[str, int]] = {}
        own = self.__dict__.get("_stream")
        if own is not None:
            streams[""] = own.state_dict()
        for prefix, child in self._child_modules():
            for path, state in child.random_streams().items():
                streams[f"{prefix}.{path}" if path else prefix] = state
        return streams

    def set_random_streams(self, streams: Mapping[str, Any]) -> None:
        """Restore :meth:`random_streams`'s positions (all or nothing).

        Parameters
        ----------
        streams : mapping
            ``{module path: {"seed": int, "position": int}}``.

        Raises
        ------
        ArgumentError
            A path names no module, or a state is malformed (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.Dropout(0.5, seed=4))
        >>> model.set_random_streams({"1": {"seed": 4, "position": 7}})
        >>> model[1].random_streams()
        {'': {'seed': 4, 'position': 7}}
        """
        from .rng import RandomStream

        if not isinstance(streams, Mapping):
            raise ArgumentError(f"random streams: expected a mapping of module path -> state, got {streams!r:.100}")
        resolved = []
        for path, state in streams.items():
            module: Any = self
            for part in str(path).split(".") if path else []:
                children = dict(module._child_modules())
                if part not in children:
                    raise ArgumentError(f"random streams: {path!r} names no module of {type(self).__name__}")
                module = children[part]
            resolved.append((module, RandomStream.from_state_dict(state)))
        for module, stream in resolved:
            module._stream = stream

    def train(self: S, mode: bool = True) -> S:
        """Set train mode (``mode=True``) or eval mode on this module and every child; returns ``self``.

        Parameters
        ----------
        mode : bool
            True: train mode (Dropout drops, BatchNorm uses and updates batch statistics); False: eval mode.

        Returns
        -------
        Module
            ``self``.

        Raises
        ------
        ArgumentTypeError
            ``mode`` is not a bool.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 2, seed=0), pnn.Dropout(0.5))
        >>> model.eval().training, model[1].training, model.train().training, model[1].training
        (False, False, True, True)
        """
        if not isinstance(mode, bool):
            raise ArgumentTypeError(f"train(mode): expected a bool, got {type(mode).__name__}")
        self.training = mode
        for _, child in self._child_modules():
            child.train(mode)
        return self

    def eval(self: S) -> S:
        """Set eval mode on this module and every child (``train(False)``); returns ``self``.

        Returns
        -------
        Module
            ``self``.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> pnn.Dropout(0.5).eval().training
        False
        """
        return self.train(False)

    def _check_new_parameter_name(self, name: str) -> None:
        if not hasattr(self, "_rng"):
            raise CallOrderError(
                f"{type(self).__name__}: call super().__init__(xp=..., device=..., dtype=..., seed=...) "
                "before declaring parameters"
            )
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("grad_"):
            raise ArgumentError(f"parameter name must be an identifier not starting with 'grad_', got {name!r}")
        if name in self._parameter_names or name in self._buffer_names:
            raise ArgumentError(f"{type(self).__name__} already has a parameter or buffer {name!r}")
        if name in vars(self) or hasattr(type(self), name):
            raise ArgumentError(f"{type(self).__name__} already has an attribute {name!r}")

    def _bind_parameter(self, name: str, value: Array | None) -> None:
        setattr(self, name, value)
        setattr(self, f"grad_{name}", None)
        self._parameter_names = (*self._parameter_names, name)

    # ---------------------------------------------------------------- state and placement

    def state_dict(self) -> dict[str, Array]:
        """Name -> live parameter and buffer array (no copy: portable_nn never mutates arrays in place).

        Buffers follow each module's parameters, as in PyTorch. Names come from
        :meth:`~portable_nn.Module.named_parameters`, so a container that prefixes them
        (``"0.weight"``) gets the prefixed names. Grads and the saved input are not state.

        Returns
        -------
        dict of str to array
            The live arrays (hold them freely: an update rebinds, never mutates).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> model = pnn.Sequential(pnn.Linear(2, 3, seed=0), pnn.ReLU(), pnn.Linear(3, 1, seed=1))
        >>> list(model.state_dict())
        ['0.weight', '0.bias', '2.weight', '2.bias']
        """
        children = self._child_modules()
        if not children:
            return {**self.named_parameters(), **self.named_buffers()}
        state = {}
        for prefix, child in children:  # module by module, each one's parameters then buffers (as in PyTorch)
            for name, value in child.state_dict().items():
                state[f"{prefix}.{name}"] = value
        return state

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

        Parameters
        ----------
        state : mapping of str to array
            Name -> array of any backend and device, e.g. another model's ``state_dict()``.
        strict : bool
            Whether the names must be exactly the parameters' (else the common ones load).
        cast : bool
            Whether another floating dtype is converted (an explicit cast) instead of refused.

        Raises
        ------
        SerializationError, NamespaceError, DTypeError, ShapeError, ArgumentTypeError
            As above; nothing changes.

        Examples
        --------
        >>> import portable_nn as pnn
        >>> source, target = pnn.Linear(2, 1, seed=0), pnn.Linear(2, 1, seed=1, dtype="float64")
        >>> target.load_state_dict(source.state_dict(), cast=True)
        >>> target.weight.dtype.name, float(target.bias[0]) == float(source.bias[0])
        ('float64', True)
        """
        values = loadable_state(self, state, strict=strict, cast=cast)
        buffer_names = self.named_buffers()
        self.set_parameters({name: value for name, value in values.items() if name not in buffer_names})
        self._set_buffers({name: value for name, value in values.items() if name in buffer_names})

    def to(self: S, xp: Any = None, device: Any = None, dtype: Any = None) -> S:
        """Move parameters, grads and buffers to ``xp``/``device``/``dtype`` (None keeps each); returns ``self``.

        Floating buffers are cast to a given ``dtype``; integer buffers keep an integer dtype (PyTorch's rule).

        DLPack where the backends share memory, a host round trip where not (CUDA -> NumPy).
        A kept device is matched by its portable string, else the target's default device; a
        kept dtype the target lacks (bfloat16 -> NumPy) is a DTypeError, and a given ``dtype``
        is an explicit cast. The input saved by the last forward is dropped (run a new
        forward before backward). All or nothing: if any array cannot move, nothing changes.
        Containers override this to delegate to their children.

        Parameters
        ----------
        xp : str, namespace or None
            The target backend (None: keep).
        device : str, device or None
            The target device (None: keep, matched by its portable string).
        dtype : str, dtype or None
            The target floating dtype (None: keep; given: an explicit cast).

        Returns
        -------
        Module
            ``self``, moved.

        Raises
        ------
        UnknownBackendError, BackendUnavailableError, DeviceError, DTypeError
            The target is unknown or cannot hold the arrays (nothing changes).

        Examples
        --------
        >>> import portable_nn as pnn
        >>> layer = pnn.Linear(2, 1, seed=0).to(dtype="float64")
        >>> layer.weight.dtype.name
        'float64'
        """
        target = target_placement(self.xp, self.device, self.dtype, xp, device, dtype)
        if target[0] is self.xp and target[1] == self.device and target[2] == self.dtype:
            return self
        params = {n: convert(p, *target) for n, p in self.named_parameters().items()}
        grads = {n: None if g is None else convert(g, *target) for n, g in self.named_grads().items()}
        buffers = {n: _move_buffer(self.xp, b, target) for n, b in self.named_buffers().items()}
        self.xp, self.device, self.dtype = target
        for name, value in buffers.items():
            setattr(self, name, value)
        for name in params:
            setattr(self, name, params[name])
            setattr(self, f"grad_{name}", grads[name])
        self._forget_kept()
        return self

    # ---------------------------------------------------------------- gradients (rebinding)

    def set_grads(self, values: Mapping[str, Array]) -> None:
        """Rebind accumulated gradients to new arrays, all or nothing (e.g. after clipping).

        Names are parameter names (as :meth:`~portable_nn.Module.named_grads` gives them); every value must be a
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
        cls: type[S], config: Mapping[str, Any], *, xp: Any = "numpy", device: Any = None, dtype: Any = "float32"
    ) -> S:
        """A new layer built from :meth:`get_config`'s dict, placed on ``xp``/``device``/``dtype``.

        Its parameters are initialized as the constructor does; ``pnn.load`` calls it inside
        :func:`portable_nn.init.placeholder` (zeros, no random draw, a size budget) and then
        replaces them with the file's. The default calls
        ``cls(**config, xp=xp, device=device, dtype=dtype)``; override it when the constructor differs.
        """
        return cls(**config, xp=xp, device=device, dtype=dtype)  # type: ignore[call-arg]  # a Module


def _move_buffer(source_xp: ModuleType, value: Array, target: tuple[ModuleType, Any, Any]) -> Array:
    """A buffer moved to ``target`` (xp, device, dtype): floating ones cast, integer ones the target's default
    integer dtype (int64, or int32 on JAX without x64)."""
    if source_xp.isdtype(value.dtype, "real floating"):
        return convert(value, *target)
    xp, device, _ = target
    return from_host(to_host(value), xp, device, xp.asarray(0, device=device).dtype)
