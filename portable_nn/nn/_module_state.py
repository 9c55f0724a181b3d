"""A module's state and placement: declaring parameters, ``state_dict``, ``load_state_dict``, ``to``, ``get_config``.

:class:`ModuleState` holds the methods :class:`portable_nn.Module` inherits for them (nothing in
them concerns a forward or backward); :func:`loadable_state` validates a ``load_state_dict``
argument: every value is checked against the module's parameters (names, floating dtype, shape,
no silent cast) before anything changes, then copied onto each parameter's backend, device and dtype.
"""

from __future__ import annotations

import itertools
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
from ._module_buffers import ModuleBuffers, _move_buffer

if TYPE_CHECKING:
    pass

__all__ = ["NAMES_EPOCH", "ModuleState", "loadable_state", "names_changed"]

S = TypeVar("S", bound="ModuleState")

#: A value never used before, written at every change of any module's ``_parameter_names`` (a declared
#: parameter): a container's flat parameter slots (:meth:`portable_nn.Sequential.named_parameters`,
#: ``zero_grad``) are valid while it is unchanged. Fresh values from a counter rather than ``+= 1``: two threads
#: changing names at once cannot write back a value a container already built its slots at.
NAMES_EPOCH = [0]
_EPOCHS = itertools.count(1)


def names_changed() -> None:
    """Record that some module's declared parameters changed (containers rebuild their flat slots)."""
    NAMES_EPOCH[0] = next(_EPOCHS)


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


class ModuleState(ModuleBuffers):
    """State and placement methods of :class:`portable_nn.Module` (a base class; not used on its own)."""

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()
    _rng: Any

    if TYPE_CHECKING:  # provided by ModuleParameters (_module_params.py)

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
        names_changed()  # containers' flat parameter slots are built again

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
