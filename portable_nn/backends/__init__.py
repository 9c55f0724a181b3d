"""Backend adapters: everything portable_nn knows about each array namespace.

One module per backend, each a :class:`BackendAdapter` built on array-api-compat's helpers: the built-in
ones (NumPy, PyTorch, CuPy, JAX, array-api-strict, Dask: :data:`ADAPTERS`), the bundled third-party tier
(marray, ndonnx, pydata/sparse, cubed: :data:`THIRD_PARTY`), those a package registers (:func:`register`,
or the ``portable_nn.backends`` entry-point group), and for any other array API namespace the
:class:`GenericAdapter`. The rest of the library goes through the facade :mod:`portable_nn._backend`,
never through a backend's name.

>>> from portable_nn.backends import get_adapter
>>> get_adapter("numpy").device_str("cpu")
'cpu'
"""

from __future__ import annotations

from .base import FLOAT_DTYPES, BackendAdapter
from .generic_backend import GenericAdapter
from .registry import (
    ADAPTERS,
    BACKENDS,
    ENTRY_POINT_GROUP,
    THIRD_PARTY,
    adapter_for_array,
    adapter_for_namespace,
    all_adapters,
    get_adapter,
    register,
)

__all__ = [
    "ADAPTERS",
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "FLOAT_DTYPES",
    "THIRD_PARTY",
    "BackendAdapter",
    "GenericAdapter",
    "adapter_for_array",
    "adapter_for_namespace",
    "all_adapters",
    "get_adapter",
    "register",
]
