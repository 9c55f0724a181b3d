"""portable_nn: a ``Linear`` layer written only against the Python array API standard.

The same source runs on NumPy, CuPy, PyTorch, JAX, array-api-strict and Dask, on CPU or GPU.
"""

from __future__ import annotations

from . import functional, init
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BackendUnavailableError,
    CallOrderError,
    DeviceError,
    DTypeError,
    NamespaceError,
    PortableNNError,
    SerializationError,
    ShapeError,
    UnknownBackendError,
)
from .grad_mode import is_grad_enabled, no_grad
from .io import load, load_metadata, load_state, save
from .linear import Linear
from .module import Module

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "BackendUnavailableError",
    "CallOrderError",
    "DTypeError",
    "DeviceError",
    "Linear",
    "Module",
    "NamespaceError",
    "PortableNNError",
    "SerializationError",
    "ShapeError",
    "UnknownBackendError",
    "__version__",
    "functional",
    "init",
    "is_grad_enabled",
    "load",
    "load_metadata",
    "load_state",
    "no_grad",
    "save",
]
