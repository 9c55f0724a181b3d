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
    DeviceError,
    DTypeError,
    NamespaceError,
    PortableNNError,
    SerializationError,
    ShapeError,
    UnknownBackendError,
    UnknownParameterError,
)
from .functional_model import functional_call, value_and_grad
from .grad_mode import is_grad_enabled, no_grad
from .io import load, load_metadata, load_state, save
from .linear import Linear
from .losses import CrossEntropyLoss, MSELoss
from .module import Module
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .sequential import Sequential
from .train_step import TrainStep, train_step

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "ArgumentError",
    "ArgumentTypeError",
    "BackendUnavailableError",
    "CallOrderError",
    "CrossEntropyLoss",
    "DTypeError",
    "DeviceError",
    "Linear",
    "MSELoss",
    "Module",
    "NamespaceError",
    "Optimizer",
    "PortableNNError",
    "RMSprop",
    "ReLU",
    "Sequential",
    "SerializationError",
    "ShapeError",
    "Sigmoid",
    "Tanh",
    "TrainStep",
    "UnknownBackendError",
    "UnknownParameterError",
    "__version__",
    "functional",
    "functional_call",
    "init",
    "is_grad_enabled",
    "load",
    "load_metadata",
    "load_state",
    "no_grad",
    "optim",
    "save",
    "train_step",
    "value_and_grad",
]
