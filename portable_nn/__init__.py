"""portable_nn: a ``Linear`` layer written only against the Python array API standard.

The same source runs on NumPy, CuPy, PyTorch, JAX, array-api-strict and Dask, on CPU or GPU.
"""

from __future__ import annotations

from . import functional, init, losses, lr_scheduler, optim
from ._backend import synchronize
from .backends.arrays import backend_of, place_on, to_numpy
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    BackendUnavailableError,
    CallOrderError,
    ClusterError,
    DeviceError,
    DTypeError,
    IndexOutOfRangeError,
    NamespaceError,
    PortableNNError,
    SerializationError,
    ShapeError,
    UnknownBackendError,
    UnknownParameterError,
)
from .io import load, load_metadata, load_optimizer, load_state, registry, save
from .io.onnx_export import export_onnx
from .io.registry import register, register_optimizer, registered_name
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .nn import rng, scatter
from .nn.activations import ReLU, Sigmoid, Tanh
from .nn.batchnorm import BatchNorm1d
from .nn.buffers import BufferUpdate
from .nn.clip_grad import clip_grad_norm_, clip_grad_value_
from .nn.dropout import Dropout
from .nn.embedding import Embedding
from .nn.grad_mode import is_grad_enabled, no_grad
from .nn.layernorm import LayerNorm
from .nn.linear import Linear
from .nn.module import Module
from .nn.sequential import Sequential
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .training import run_epoch
from .training.functional_model import functional_call, value_and_grad
from .training.program_cache import compilation_cache
from .training.step import TrainStep, train_step

__version__ = "0.1.0"

# The built-in classes a checkpoint may name (see portable_nn.io.registry).
for _module in (Linear, ReLU, Tanh, Sigmoid, Sequential, Dropout, BatchNorm1d, LayerNorm, Embedding):
    register(_module)
for _optimizer in (SGD, Adam, AdamW, RMSprop, Adagrad):
    register_optimizer(_optimizer)
del _module, _optimizer

__all__ = [
    "BatchNorm1d",
    "BufferUpdate",
    "Dropout",
    "Embedding",
    "LayerNorm",
    "compilation_cache",
    "export_onnx",
    "lr_scheduler",
    "losses",
    "clip_grad_value_",
    "clip_grad_norm_",
    "SmoothL1Loss",
    "NLLLoss",
    "L1Loss",
    "HuberLoss",
    "BCEWithLogitsLoss",
    "SGD",
    "Adagrad",
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
    "IndexOutOfRangeError",
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
    "backend_of",
    "place_on",
    "to_numpy",
    "functional",
    "functional_call",
    "init",
    "is_grad_enabled",
    "load",
    "load_metadata",
    "load_optimizer",
    "load_state",
    "no_grad",
    "optim",
    "register",
    "register_optimizer",
    "registered_name",
    "registry",
    "rng",
    "run_epoch",
    "save",
    "scatter",
    "synchronize",
    "train_step",
    "value_and_grad",
]
