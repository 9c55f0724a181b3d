"""``trusted()``: a context in which the losses' and the optimizer's argument checks are skipped.

Layers never read it: whether a layer validates is the explicit ``call.validate`` of its pure pair
(:class:`portable_nn.grad_mode.Call`), and ``train_step`` calls the unchecked pair directly once an
input signature was validated. :func:`portable_nn.train_step` also runs those steps inside
``trusted()`` because the loss protocol ``loss_fn(prediction, y)`` (any callable, user-written ones
too) and the optimizer's ``step`` have no such argument yet: the losses' checks,
``set_parameters``' checks and Sequential's transaction snapshot consult :func:`is_trusted` and
return early. Nothing else should enter it: an unchecked bad array there gives backend errors or
wrong numbers instead of portable_nn's typed errors.

``checked_trace(...)``: the opposite mix, checks on while a compiler traces (values unknown). A
compiled ``train_step`` validates a new input signature by an abstract trace of the untrusted
loss-and-gradient (``jax.eval_shape``) inside it: every namespace, dtype, shape and device check
runs as in the eager loop (traced arrays report the device of the concrete arrays they stand
for, :func:`traced_device`), and value checks run on host copies of the concrete arrays
(:func:`concrete_of`) or are recorded as not run (:func:`note_unchecked`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

__all__ = [
    "checked_trace",
    "concrete_of",
    "is_tracing",
    "is_trusted",
    "note_unchecked",
    "traced_device",
    "trusted",
]

_trusted: ContextVar[bool] = ContextVar("portable_nn_trusted", default=False)
_tracing: ContextVar[bool] = ContextVar("portable_nn_tracing", default=False)
_checked: ContextVar[checked_trace | None] = ContextVar("portable_nn_checked_trace", default=None)


def is_trusted() -> bool:
    """Whether the arguments of the running call were validated already (inside :func:`trusted`)."""
    return _trusted.get()


def is_tracing() -> bool:
    """Whether the running call is being traced by a compiler (values unknown: value checks cannot run)."""
    return _tracing.get()


class trusted:  # used like a function: ``with trusted():``
    """Skip per-layer checks inside (thread- and asyncio-safe, a ``ContextVar``).

    Value checks that need no compiler-unknown values still run (CrossEntropyLoss's range of
    class targets) unless ``tracing`` says the arrays are traced (inside ``jax.jit``). A plain
    class rather than a generator context manager: it is entered on every training step.
    """

    __slots__ = ("_tokens", "_tracing")

    def __init__(self, *, tracing: bool = False) -> None:
        self._tracing = tracing
        self._tokens: tuple[Token[bool], Token[bool]] | None = None

    def __enter__(self) -> None:
        self._tokens = (_trusted.set(True), _tracing.set(self._tracing))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._tokens is not None
        trusted_token, tracing_token = self._tokens
        _tracing.reset(tracing_token)
        _trusted.reset(trusted_token)


class checked_trace:  # used like a function: ``with checked_trace():`` or ``with checked_trace(c, d) as unchecked:``
    """The arrays inside are traced by a compiler, but nothing was validated: every check runs but value reads.

    For a pure function compiled without a prior eager validation: the command line's evaluation
    on JAX (``checked_trace()``: namespace, dtype and shape checks run once, while tracing, and
    raise the usual typed errors; value checks such as CrossEntropyLoss's range of class targets
    are skipped, as in ``trusted(tracing=True)``), and the abstract validation of a compiled
    ``train_step`` (``checked_trace(concrete, device)``: device checks and value checks too).

    Parameters
    ----------
    concrete : mapping of int to array, optional
        ``id(traced array) -> the concrete array it stands for`` (the batch's ``x`` and ``y``):
        value checks read host copies of those (:func:`concrete_of`); others are skipped.
    device : device, optional
        The device every traced array stands on (the caller checked the concrete ones are there):
        what :func:`traced_device` reports, so device checks compare as in the eager loop. None:
        traced arrays have no device and device checks pass them.

    Entering returns a list that collects the value checks that could not run (:func:`note_unchecked`).
    """

    __slots__ = ("_tokens", "concrete", "device", "unchecked")

    def __init__(self, concrete: Mapping[int, Any] | None = None, device: Any = None) -> None:
        self.concrete: Mapping[int, Any] = {} if concrete is None else concrete
        self.device = device
        self.unchecked: list[str] = []
        self._tokens: tuple[Token[bool], Token[bool], Token[checked_trace | None]] | None = None

    def __enter__(self) -> list[str]:
        self._tokens = (_trusted.set(False), _tracing.set(True), _checked.set(self))
        return self.unchecked

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._tokens is not None
        trusted_token, tracing_token, checked_token = self._tokens
        _checked.reset(checked_token)
        _tracing.reset(tracing_token)
        _trusted.reset(trusted_token)


def traced_device() -> Any:
    """The device traced arrays stand on inside :func:`checked_trace`; None elsewhere (unknown under a compiler)."""
    checked = _checked.get()
    return None if checked is None else checked.device


def concrete_of(x: Any) -> Any:
    """Inside :func:`checked_trace`: the concrete array traced ``x`` stands for, or None (unknown, or not checking)."""
    checked = _checked.get()
    return None if checked is None else checked.concrete.get(id(x))


def note_unchecked(what: str) -> None:
    """Inside :func:`checked_trace`, record that the value check ``what`` could not run (no concrete values)."""
    checked = _checked.get()
    if checked is not None:
        checked.unchecked.append(what)
