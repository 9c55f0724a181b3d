"""``trusted()``: a context in which per-layer argument checks are skipped (the validated hot path).

:func:`portable_nn.train_step` validates namespace, device, dtype and shapes once per new input
signature, then runs its steps inside ``trusted()``: ``Module.check_input``, Sequential's
transaction snapshot, ``set_parameters``' checks and the losses' checks consult
:func:`is_trusted` and return early. Nothing else should enter it: an unchecked bad array there
gives backend errors or wrong numbers instead of portable_nn's typed errors.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

__all__ = ["checked_trace", "input_grad_unused", "is_input_grad_unused", "is_tracing", "is_trusted", "trusted"]

_trusted: ContextVar[bool] = ContextVar("portable_nn_trusted", default=False)
_tracing: ContextVar[bool] = ContextVar("portable_nn_tracing", default=False)
_input_grad_unused: ContextVar[bool] = ContextVar("portable_nn_input_grad_unused", default=False)


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


class checked_trace:  # used like a function: ``with checked_trace():``
    """The arrays inside are traced by a compiler, but nothing was validated: every check runs but value reads.

    For a pure function compiled without a prior eager validation (the command line's evaluation on
    JAX): the per-layer checks of namespace, dtype and shape run once, while tracing, and raise the
    usual typed errors; value checks (CrossEntropyLoss's range of class targets) are skipped, as in
    ``trusted(tracing=True)``.
    """

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = _tracing.set(True)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._token is not None
        _tracing.reset(self._token)


def is_input_grad_unused() -> bool:
    """Whether the running ``functional_backward``'s ``dL/dx`` is discarded by its caller (a layer may skip it)."""
    return _input_grad_unused.get()


class input_grad_unused:  # used like a function: ``with input_grad_unused(flag):``
    """Tell ``functional_backward`` calls inside whether their ``dL/dx`` is used (value_and_grad drops the model's).

    A layer that sees :func:`is_input_grad_unused` may return ``None`` instead of computing ``dL/dx``
    (:class:`~portable_nn.Linear` skips its ``grad_output @ weight``); a container clears the flag
    for every child whose input gradient it consumes.
    """

    __slots__ = ("_token", "_unused")

    def __init__(self, unused: bool) -> None:
        self._unused = unused
        self._token: Token[bool] | None = None

    def __enter__(self) -> None:
        self._token = _input_grad_unused.set(self._unused)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._token is not None
        _input_grad_unused.reset(self._token)
