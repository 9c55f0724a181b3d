"""``trusted()``: a context in which per-layer argument checks are skipped (the validated hot path).

:func:`portable_nn.train_step` validates namespace, device, dtype and shapes once per new input
signature, then runs its steps inside ``trusted()``: ``Module.check_input``, Sequential's
transaction snapshot, ``set_parameters``' checks and the losses' checks consult
:func:`is_trusted` and return early. Nothing else should enter it: an unchecked bad array there
gives backend errors or wrong numbers instead of portable_nn's typed errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["is_trusted", "trusted"]

_trusted: ContextVar[bool] = ContextVar("portable_nn_trusted", default=False)


def is_trusted() -> bool:
    """Whether the arguments of the running call were validated already (inside :func:`trusted`)."""
    return _trusted.get()


@contextlib.contextmanager
def trusted() -> Iterator[None]:
    """Skip per-layer checks inside (thread- and asyncio-safe, a ``ContextVar``)."""
    token = _trusted.set(True)
    try:
        yield
    finally:
        _trusted.reset(token)
