"""pydata/sparse: every array is sparse (COO); host transfer densifies explicitly with ``todense()``.

The standard's routes do not reach the host: no DLPack, and ``__array__`` refuses to densify.
Parameters and gradients are COO arrays holding every entry; operations the namespace lacks
(or refuses on sparse arrays) raise its own errors.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["SparseAdapter"]


class SparseAdapter(BackendAdapter):
    """pydata/sparse (third-party tier); one device, ``"cpu"``.

    Examples
    --------
    >>> adapter = SparseAdapter()
    >>> adapter.to_host(adapter.from_host(np.eye(2), "cpu"))
    array([[1., 0.],
           [0., 1.]])
    """

    name = "sparse"
    package = "sparse"
    namespace_module = "sparse"
    tier = "third-party"

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_pydata_sparse_namespace(module))

    def to_host(self, x: Any) -> np.ndarray:
        return np.array(x.todense())
