"""``checked_trace(...)``: checks on while a compiler traces (values unknown).

Whether a call validates its arguments is never a mode: it is the explicit ``call`` the layers, the
losses and the optimizer receive (:class:`portable_nn.nn.grad_mode.Call`; a built-in loss's
``_compute(prediction, target, call)``, the optimizer's ``step_with(..., call=...)``), which
:func:`portable_nn.train_step` sets to :data:`~portable_nn.nn.grad_mode.UNCHECKED` once it validated an
input signature. Value checks that need no compiler-unknown values (the range of CrossEntropyLoss's
class targets) run whenever the arrays have values: they are skipped for traced arrays
(:func:`portable_nn._backend.is_traced`), not by a mode.

``checked_trace(...)``: a compiler traces while every check runs. A compiled ``train_step``
validates a new input signature by an abstract trace of the checked loss-and-gradient
(``jax.eval_shape``) inside it: every namespace, dtype, shape and device check runs as in the eager
loop (traced arrays report the device of the concrete arrays they stand for, :func:`traced_device`),
and value checks run on host copies of the concrete arrays (:func:`concrete_of`) or are recorded as
not run (:func:`note_unchecked`). Only code that sees a traced array (a JAX tracer) reads it: nothing
on the path of ``torch.compile``, which cannot trace a ``ContextVar``. It is one ``ContextVar``: the
trace entered last, or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

__all__ = [
    "checked_trace",
    "concrete_of",
    "note_unchecked",
    "traced_device",
]

_mode: ContextVar[checked_trace | None] = ContextVar("portable_nn_mode", default=None)


class checked_trace:  # used like a function: ``with checked_trace():`` or ``with checked_trace(c, d) as unchecked:``
    """The arrays inside are traced by a compiler, but nothing was validated: every check runs but value reads.

    For a pure function compiled without a prior eager validation: the command line's evaluation
    on JAX (``checked_trace()``: namespace, dtype and shape checks run once, while tracing, and
    raise the usual typed errors; value checks such as CrossEntropyLoss's range of class targets
    are skipped, as for any traced array), and the abstract validation of a compiled
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

    __slots__ = ("_token", "concrete", "device", "unchecked")

    def __init__(self, concrete: Mapping[int, Any] | None = None, device: Any = None) -> None:
        self.concrete: Mapping[int, Any] = {} if concrete is None else concrete
        self.device = device
        self.unchecked: list[str] = []
        self._token: Token[checked_trace | None] | None = None

    def __enter__(self) -> list[str]:
        self._token = _mode.set(self)
        return self.unchecked

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._token is not None
        _mode.reset(self._token)


def traced_device() -> Any:
    """The device traced arrays stand on inside :func:`checked_trace`; None elsewhere (unknown under a compiler)."""
    checked = _mode.get()
    return checked.device if type(checked) is checked_trace else None


def concrete_of(x: Any) -> Any:
    """Inside :func:`checked_trace`: the concrete array traced ``x`` stands for, or None (unknown, or not checking)."""
    checked = _mode.get()
    return checked.concrete.get(id(x)) if type(checked) is checked_trace else None


def note_unchecked(what: str) -> None:
    """Inside :func:`checked_trace`, record that the value check ``what`` could not run (no concrete values)."""
    checked = _mode.get()
    if type(checked) is checked_trace:
        checked.unchecked.append(what)
