"""portable_nn: a ``Linear`` layer written only against the Python array API standard.

The same source runs on NumPy, CuPy, PyTorch, JAX, array-api-strict and Dask, on CPU or GPU.
"""

from __future__ import annotations

from . import functional, init, optim
from .activations import ReLU, Sigmoid, Tanh
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BackendUnavailableError,
    CallOrderError,
    ClusterError,
    DeviceError,
    DTypeError,
    NamespaceError,
    PortableNNError,
    SerializationError,
    ShapeError,
    UnknownBackendError,
    UnknownParameterError,
)
from .grad_mode import is_grad_enabled, no_grad
from .io import load, load_metadata, load_state, save
from .linear import Linear
from .losses import CrossEntropyLoss, MSELoss
from .module import Module
from .optim import SGD, Adam, AdamW, Optimizer
from .sequential import Sequential
from .training import run_epoch

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "ArgumentError",
    "ArgumentTypeError",
    "BackendUnavailableError",
    "CallOrderError",
    "ClusterError",
    "CrossEntropyLoss",
    "DTypeError",
    "DeviceError",
    "Linear",
    "MSELoss",
    "Module",
    "NamespaceError",
    "Optimizer",
    "PortableNNError",
    "ReLU",
    "Sequential",
    "SerializationError",
    "ShapeError",
    "Sigmoid",
    "Tanh",
    "UnknownBackendError",
    "UnknownParameterError",
    "__version__",
    "functional",
    "init",
    "is_grad_enabled",
    "load",
    "load_metadata",
    "load_state",
    "no_grad",
    "optim",
    "run_epoch",
    "save",
]
