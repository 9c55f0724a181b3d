"""``no_grad()``: run forward passes without keeping what backward needs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["is_grad_enabled", "no_grad"]

_grad_enabled: ContextVar[bool] = ContextVar("portable_nn_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """Whether forward passes currently keep their input for a later backward."""
    return _grad_enabled.get()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (and decorator): forwards inside keep nothing, so backward cannot follow.

    Thread- and asyncio-safe (a ``ContextVar``), like ``torch.no_grad``.
    """
    token = _grad_enabled.set(False)
    try:
        yield
    finally:
        _grad_enabled.reset(token)
