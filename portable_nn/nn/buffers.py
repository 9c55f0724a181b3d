"""How a layer's pure forward hands back new buffer values: ``saved`` wrapped in a :class:`BufferUpdate`.

Buffers (non-trainable state such as BatchNorm's running statistics, declared with
:meth:`portable_nn.Module.register_buffer`) are *read* from the ``params`` mapping the pure forward
receives, beside the parameters and under their own names. A forward that changes them returns
``(y, BufferUpdate(saved, {name: new value}))`` instead of ``(y, saved)``; layers without buffers
are unchanged. The caller unwraps it with :func:`split_saved`: ``Module.forward`` rebinds the
buffers (never mutating the old arrays) and keeps ``saved`` for backward; a container prefixes the
names of its layers' updates and returns one ``BufferUpdate`` of its own; ``functional_backward``
always receives the unwrapped ``saved``.

Examples
--------
>>> from portable_nn.nn.buffers import BufferUpdate, split_saved
>>> split_saved(BufferUpdate("kept", {"count": 1}))
('kept', {'count': 1})
>>> split_saved("kept")
('kept', {})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .grad_mode import Call

__all__ = ["BufferUpdate", "layer_call_for", "split_saved"]


@dataclass(frozen=True, slots=True)
class BufferUpdate:
    """What a pure forward returns as ``saved`` when it changes buffers.

    Parameters
    ----------
    saved : any
        What :meth:`~portable_nn.Module.functional_backward` needs, as a forward without buffers returns it.
    buffers : mapping of str to array
        Buffer name -> its new value (names of :meth:`~portable_nn.Module.named_buffers`; only those that change).

    Examples
    --------
    >>> from portable_nn.nn.buffers import BufferUpdate
    >>> BufferUpdate(saved=None, buffers={}).buffers
    {}
    """

    saved: Any
    buffers: Mapping[str, Any]


def split_saved(saved: Any) -> tuple[Any, dict[str, Any]]:
    """``(saved, new buffers)`` of what a pure forward returned (``{}`` when it changed no buffer).

    Parameters
    ----------
    saved : any
        The second item a pure forward returned: a :class:`BufferUpdate` or anything else.

    Returns
    -------
    saved : any
        What backward needs.
    buffers : dict of str to array
        The new buffer values, by name.

    Examples
    --------
    >>> from portable_nn.nn.buffers import BufferUpdate, split_saved
    >>> split_saved(BufferUpdate([1], {"running_mean": 0.5}))
    ([1], {'running_mean': 0.5})
    """
    if type(saved) is BufferUpdate:
        return saved.saved, dict(saved.buffers)
    return saved, {}


def layer_call_for(call: Call, index: int, layer: Any) -> Call:
    """The :class:`~portable_nn.nn.grad_mode.Call` a container hands its layer ``index``: key ``fold_in(key, index)``.

    Layers that draw nothing get ``key=None`` (no key is derived for them).

    Parameters
    ----------
    call : Call
        The container's call, with a key.
    index : int
        The layer's position in the container.
    layer : Module
        The layer.

    Returns
    -------
    Call
        ``call`` with the layer's own key.

    Examples
    --------
    >>> import portable_nn as pnn
    >>> from portable_nn import rng
    >>> from portable_nn.nn.module import Call
    >>> call = Call(key=rng.key(0, xp="numpy"))
    >>> layer_call_for(call, 1, pnn.Dropout(0.5)).key.tolist() == rng.fold_in(call.key, 1).tolist()
    True
    """
    from .rng import fold_in

    if not layer._uses_randomness():
        return replace(call, key=None)
    return replace(call, key=fold_in(call.key, index))
