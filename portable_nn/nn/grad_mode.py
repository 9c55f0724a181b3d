"""The modes a layer call runs in: ``no_grad()`` (a context) and :class:`Call` (an explicit argument).

``no_grad()`` stays a context manager, as in PyTorch: it is set around user code (``with
pnn.no_grad(): model(x)``) and read only by the stateful ``Module.forward``, never by a layer's pure
pair or a compiled program. Every other mode is a field of the :class:`Call` each
``functional_forward``/``functional_backward`` receives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["CHECKED", "UNCHECKED", "Call", "is_grad_enabled", "no_grad"]

_grad_enabled: ContextVar[bool] = ContextVar("portable_nn_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """Whether forward passes currently keep what a later backward needs (False inside :func:`no_grad`).

    Returns
    -------
    bool
        True unless the calling thread or task is inside ``no_grad()``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> with pnn.no_grad():
    ...     pnn.is_grad_enabled()
    False
    """
    return _grad_enabled.get()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (and decorator): forwards inside keep nothing, so backward cannot follow.

    Thread- and asyncio-safe (a ``ContextVar``), like ``torch.no_grad``. It is the one implicit mode
    left: set around user code and read only by the stateful ``Module.forward`` (a layer's pure pair
    and the functional API never read it, so no compiled program captures it).

    Yields
    ------
    None
        Inside the block, ``Module.forward`` keeps nothing for backward.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> layer = pnn.Linear(2, 1, seed=0)
    >>> with pnn.no_grad():
    ...     y = layer(layer.xp.ones((3, 2), dtype=layer.dtype))
    >>> layer.backward(layer.xp.ones_like(y))
    Traceback (most recent call last):
    ...
    portable_nn.errors.CallOrderError: backward() needs a forward() with gradients enabled first: ...
    """
    token = _grad_enabled.set(False)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


@dataclass(frozen=True, slots=True)
class Call:
    """How one call of a layer's pure pair runs: every implicit mode as an explicit, immutable argument.

    Every ``functional_forward``/``functional_backward`` receives one (containers hand theirs to
    their layers unchanged), so a field added here reaches every layer, built-in or user-written,
    with no new parameter in any signature and no second code path: the train/eval flag and the
    random key of stateful layers are meant to become fields (``training: bool``, ``key``), read by
    the layers that need them and ignored by the others. A frozen dataclass rather than keyword
    arguments because a layer written today keeps working when a field is added, and rather than a
    context variable because it is visible in the signature and captured by no compiled program.
    Buffers, which a call reads *and* updates, travel in ``params`` (read) and come back wrapped
    around ``saved`` (:class:`portable_nn.BufferUpdate`) instead.

    Parameters
    ----------
    validate : bool
        Whether the layer checks its arguments (:meth:`portable_nn.Module.check_input`). The public entry points
        (``forward``, ``backward``, ``__call__``, ``functional_call``, ``value_and_grad``) pass
        :data:`CHECKED`; ``train_step`` passes :data:`UNCHECKED` once it validated the input signature.
    training : bool
        Train mode (True, the default as in PyTorch) or eval mode: ``Module.forward`` passes the
        module's ``training`` attribute. Dropout drops only in train mode; BatchNorm uses the batch's
        statistics and updates its running buffers only in train mode.
    key : array or None
        A random key (:func:`portable_nn.nn.rng.key`: int32, shape ``(2,)``) for the layers that draw
        (Dropout in train mode), or None. ``Module.forward`` passes the key of the module's
        :class:`~portable_nn.nn.rng.RandomStream` and advances the stream; a container hands each layer
        ``fold_in(key, index)``. A layer that needs a key and gets None raises ``ArgumentError``.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> from portable_nn.nn.module import CHECKED, UNCHECKED
    >>> layer = pnn.Linear(3, 2, seed=0)
    >>> y, saved = layer.functional_forward(layer.named_parameters(), layer.xp.ones((4, 3), dtype=layer.dtype), CHECKED)
    >>> y.shape, CHECKED.validate, UNCHECKED.validate
    ((4, 2), True, False)
    """

    validate: bool = True
    training: bool = True
    key: Any = None


#: The call of the public entry points: arguments are checked.
CHECKED = Call(validate=True)
#: The call of a validated hot path (``train_step`` after the first batch of an input signature).
UNCHECKED = Call(validate=False)
