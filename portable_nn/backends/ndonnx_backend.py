"""ndonnx: arrays that build an ONNX graph; constants carry their values, symbolic inputs do not.

What the standard does not give: host transfer (ndonnx exports no DLPack and has no
``__array__``: ``unwrap_numpy()`` reads a propagated value) and a device name (its one device
prints as an object). Arrays are lazy in array-api-compat's sense; a symbolic array (from
``ndonnx.argument``, used by :func:`portable_nn.export_onnx`) has no values, so portable_nn's
value-dependent checks are skipped on it (see :meth:`NdonnxAdapter.has_values`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ..errors import NamespaceError
from .base import BackendAdapter

__all__ = ["NdonnxAdapter"]


class NdonnxAdapter(BackendAdapter):
    """ndonnx (third-party tier); one device, ``"cpu"``.

    Examples
    --------
    >>> adapter = NdonnxAdapter()
    >>> adapter.to_host(adapter.namespace().asarray([1.0, 2.0]))
    array([1., 2.])
    """

    name = "ndonnx"
    package = "ndonnx"
    namespace_module = "ndonnx"
    tier = "third-party"
    lazy = True

    def is_namespace(self, module: ModuleType) -> bool:
        return bool(array_api_compat.is_ndonnx_namespace(module))

    def device_str(self, device: Any) -> str:
        return "cpu"

    def has_values(self, x: Any) -> bool:
        """Whether ``x`` carries a value (a constant, or computed from constants), not a symbolic input."""
        try:
            x.unwrap_numpy()
        except ValueError:
            return False
        return True

    def symbolic_input(self, shape: tuple[int | str, ...], dtype: Any) -> Any:
        """A symbolic array (an ONNX graph input) of ``shape`` (a str names a symbolic dimension) and ``dtype``."""
        return self.module("ndonnx").argument(shape=shape, dtype=dtype)

    def onnx_model(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
        """The ``onnx.ModelProto`` computing ``outputs`` from the symbolic ``inputs`` (``ndonnx.build``)."""
        return self.module("ndonnx").build(inputs, outputs)

    def to_host(self, x: Any) -> np.ndarray:
        try:
            return np.array(x.unwrap_numpy())
        except ValueError as exc:
            raise NamespaceError(
                f"cannot copy an ndonnx array to the host: it is symbolic (its value is known only when the ONNX "
                f"graph runs): {exc}"
            ) from None
