"""Backend adapters: everything portable_nn knows about NumPy, PyTorch, CuPy, JAX, array-api-strict and Dask.

One module per backend, each a :class:`BackendAdapter` built on array-api-compat's helpers,
registered in one table (:data:`ADAPTERS` in :mod:`portable_nn.backends.registry`). The rest of the library goes
through the facade :mod:`portable_nn._backend`, never through a backend's name.

>>> from portable_nn.backends import get_adapter
>>> get_adapter("numpy").device_str("cpu")
'cpu'
"""

from __future__ import annotations

from .base import FLOAT_DTYPES, BackendAdapter
from .registry import ADAPTERS, BACKENDS, adapter_for_array, adapter_for_namespace, get_adapter

__all__ = [
    "ADAPTERS",
    "BACKENDS",
    "FLOAT_DTYPES",
    "BackendAdapter",
    "adapter_for_array",
    "adapter_for_namespace",
    "get_adapter",
]
