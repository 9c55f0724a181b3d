"""Buffers, train/eval modes and random streams: the methods :class:`portable_nn.Module` inherits for them.

A buffer is non-trainable state (running statistics, counters) declared with
:meth:`ModuleBuffers.register_buffer`; a container routes buffers and modes to its children
through ``_child_modules``. See :mod:`portable_nn.nn.buffers` for how a pure forward returns new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .._backend import convert, dtype_name, from_host, to_host
from .._checks import check_array, namespace_of_arg
from ..errors import ArgumentError, ArgumentTypeError, DTypeError
from ..typing import Array

__all__ = ["ModuleBuffers"]

B = TypeVar("B", bound="ModuleBuffers")


class ModuleBuffers:
    """Buffer, mode and random-stream methods of :class:`portable_nn.Module` (a base class; not used on its own)."""

    xp: ModuleType
    device: Any
    dtype: Any
    _buffer_names: tuple[str, ...] = ()
    #: Train mode (True, as in PyTorch) or eval mode; set by :meth:`train` and :meth:`eval`.
    training: bool = True

    if TYPE_CHECKING:  # provided by ModuleState

        def _check_new_parameter_name(self, name: str) -> None: ...

    def register_buffer(self, name: str, value: Array) -> None:
        """Declare buffer ``name``: non-trainable state (running statistics, counters) held as ``self.<name>``.

        A buffer is in :meth:`named_buffers`, :meth:`~portable_nn.Module.state_dict` and checkpoints,
        moved by :meth:`~portable_nn.Module.to` (a floating buffer is cast to a given dtype, an integer
        one keeps its integer kind, as in PyTorch), pickled, and never handed to optimizers. The pure
        forward reads it from ``params`` under its name and returns new values in a
        :class:`~portable_nn.nn.buffers.BufferUpdate`; ``forward`` rebinds them (the old array is
        never mutated).

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
        if not names and type(self)._child_modules is ModuleBuffers._child_modules:
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
        if type(self)._child_modules is ModuleBuffers._child_modules:
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

    def train(self: B, mode: bool = True) -> B:
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

    def eval(self: B) -> B:
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


def _move_buffer(source_xp: ModuleType, value: Array, target: tuple[ModuleType, Any, Any]) -> Array:
    """A buffer moved to ``target`` (xp, device, dtype): floating ones cast, integer ones the target's default
    integer dtype (int64, or int32 on JAX without x64)."""
    if source_xp.isdtype(value.dtype, "real floating"):
        return convert(value, *target)
    xp, device, _ = target
    return from_host(to_host(value), xp, device, xp.asarray(0, device=device).dtype)
