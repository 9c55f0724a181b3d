"""``Module``: the base of stateful layers — parameters, their gradients and plain SGD ``step``.

A module owns named parameter arrays (attributes) and, for each, a ``grad_<name>`` attribute
that backward accumulates into. Arrays are never mutated in place: every update rebinds
the attribute, so immutable JAX arrays work.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any, TypeVar

from ._backend import (
    FLOAT_DTYPES,
    backend_name,
    convert,
    device_of,
    device_str,
    dtype_name,
    materialize,
    namespace_of,
    target_placement,
)
from ._checks import check_like, check_lr, namespace_of_arg, shape_str
from .errors import ArgumentTypeError, CallOrderError, DTypeError, SerializationError, ShapeError
from .grad_mode import is_grad_enabled

__all__ = ["Module"]

Array = Any
M = TypeVar("M", bound="Module")

#: (given, expected) dtype pairs a cast cannot lose precision on.
_LOSSLESS = {
    ("float16", "float32"),
    ("float16", "float64"),
    ("bfloat16", "float32"),
    ("bfloat16", "float64"),
    ("float32", "float64"),
}


class Module:
    """Base class of layers. Subclasses set ``xp``, ``device``, ``dtype`` and ``_parameter_names``."""

    xp: ModuleType
    device: Any
    dtype: Any
    _parameter_names: tuple[str, ...] = ()

    #: What the last forward kept for backward (None: nothing), and whether it ran under ``no_grad()``.
    _saved: Any = None
    _saved_under_no_grad: bool = False

    def _keep_for_backward(self, value: Any) -> None:
        """Keep ``value`` for the next backward, or nothing when the forward runs under ``no_grad()``."""
        if is_grad_enabled():
            self._saved, self._saved_under_no_grad = value, False
        else:
            self._saved, self._saved_under_no_grad = None, True

    def _kept_for_backward(self) -> Any:
        """What the last forward kept; a CallOrderError if it kept nothing."""
        if self._saved is None:
            why = "the last forward ran under no_grad()" if self._saved_under_no_grad else "no forward was run"
            raise CallOrderError(f"backward() needs a forward() with gradients enabled first: {why}")
        return self._saved

    def _forget_kept(self) -> None:
        self._saved, self._saved_under_no_grad = None, False

    def forward(self, x: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_output: Array) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

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
        current = self.named_parameters()
        for name, value in values.items():
            if name not in current:
                raise KeyError(f"{type(self).__name__} has no parameter {name!r}; parameters: {list(current)}")
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
        updated = {}
        for name, grad in grads.items():
            new = grad * -lr  # == -(lr * grad) exactly, so new == p - lr * grad exactly
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
        if not isinstance(state, Mapping):
            raise ArgumentTypeError(f"state must be a mapping of name -> array, got {type(state).__name__}")
        current = self.named_parameters()
        missing = [n for n in current if n not in state]
        unexpected = [n for n in state if n not in current]
        if strict and (missing or unexpected):
            raise SerializationError(
                f"state does not match {type(self).__name__}: missing keys {missing}, unexpected keys {unexpected}; "
                f"expected exactly {list(current)} (strict=False loads the common keys only)"
            )
        loaded = {}
        for name, value in state.items():
            if name not in current:
                continue
            target = current[name]
            source_xp = namespace_of_arg(name, value)
            given = dtype_name(source_xp, value.dtype)
            expected = dtype_name(namespace_of(target), target.dtype)
            if given not in FLOAT_DTYPES:
                raise DTypeError(f"{name}: expected a floating array ({expected}), got dtype {given}")
            if tuple(value.shape) != tuple(target.shape):
                raise ShapeError(f"{name}: expected shape {shape_str(target.shape)}, got {shape_str(value.shape)}")
            if given != expected and not cast:
                loss = "" if (given, expected) in _LOSSLESS else " (it would lose precision)"
                raise DTypeError(
                    f"{name}: expected dtype {expected}, got {given}; portable_nn never casts silently{loss}: "
                    "pass cast=True to convert"
                )
            loaded[name] = (value, target)
        converted = {
            name: convert(value, namespace_of(target), device_of(target), target.dtype, copy=True)
            for name, (value, target) in loaded.items()
        }
        self.set_parameters(converted)

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
