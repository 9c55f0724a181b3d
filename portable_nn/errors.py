"""The exceptions portable_nn raises.

Every error derives from :class:`PortableNNError` *and* from the builtin a caller would
naturally catch, so ``except ValueError`` keeps working for code that does not know us.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "BackendUnavailableError",
    "CallOrderError",
    "ClusterError",
    "DeviceError",
    "DTypeError",
    "IndexOutOfRangeError",
    "NamespaceError",
    "PortableNNError",
    "SerializationError",
    "ShapeError",
    "UnknownBackendError",
]


class PortableNNError(Exception):
    """Base class of every error raised by portable_nn."""


class ShapeError(PortableNNError, ValueError):
    """An array has the wrong shape (e.g. wrong ``in_features`` or ``grad_output`` shape)."""


class DeviceError(PortableNNError, ValueError):
    """An array lives on another device than expected, or a device is unavailable."""


class DTypeError(PortableNNError, TypeError):
    """An array has the wrong dtype, or a dtype is unsupported by a backend."""


class IndexOutOfRangeError(PortableNNError, IndexError):
    """An index array holds a value outside ``[0, size)`` (e.g. an embedding lookup or a scatter-add)."""


class NamespaceError(PortableNNError, TypeError):
    """An array comes from another array library than expected, or is not an array."""


class CallOrderError(PortableNNError, RuntimeError):
    """Methods were called in an order that cannot work (e.g. backward before forward)."""


class UnknownBackendError(PortableNNError, ValueError):
    """A backend name or object that portable_nn does not know."""


class BackendUnavailableError(PortableNNError, ImportError):
    """A known backend whose package is not installed (or fails to import)."""


class SerializationError(PortableNNError, ValueError):
    """A checkpoint or state dict that cannot be loaded: missing keys, bad file, etc."""


class ArgumentError(PortableNNError, ValueError):
    """A bad argument value (e.g. a negative or non-finite learning rate, an unknown init name)."""


class ArgumentTypeError(PortableNNError, TypeError):
    """An argument of the wrong Python type (e.g. ``lr="0.1"``, ``seed=1.5``)."""


class UnknownParameterError(PortableNNError, KeyError):
    """A parameter name the module does not have (e.g. in ``set_parameters``)."""

    def __str__(self) -> str:  # KeyError's str() would quote the whole message
        return str(self.args[0]) if self.args else ""


class ClusterError(PortableNNError, RuntimeError):
    """A Dask cluster that cannot be reached, is not a Dask scheduler, or makes no progress (e.g. no workers left).

    ``checkpoint`` holds the host (NumPy) copies of the parameters at the last checkpoint
    taken before the failure (None if there was none) and ``step`` the number of steps of the
    epoch they include.
    """

    def __init__(self, message: str, *, checkpoint: dict[str, Any] | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.step = step
