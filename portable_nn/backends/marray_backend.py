"""marray: masked arrays over NumPy (``marray.masked_namespace(numpy)``); the standard's answers suffice.

This adapter only builds the namespace (marray makes its namespaces at run time, so no module
name can be imported); devices, dtypes and host transfer (DLPack, which exports the data without
the mask) are the :class:`~portable_nn.backends.generic_backend.GenericAdapter`'s.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import BackendUnavailableError
from .generic_backend import GenericAdapter

__all__ = ["MarrayAdapter"]


class MarrayAdapter(GenericAdapter):
    """marray over NumPy, as ``"marray"`` (third-party tier).

    Examples
    --------
    >>> MarrayAdapter().namespace().__name__
    'marray.numpy'
    """

    name = "marray"
    package = "marray"
    namespace_module = "marray.numpy"
    tier = "third-party"

    def namespace(self) -> ModuleType:
        if self._xp is None:
            try:
                marray = self.module("marray")
            except ImportError as exc:
                raise BackendUnavailableError(f"backend {self.name!r} is not installed ({exc})") from exc
            self._xp = marray.masked_namespace(self.module("numpy"))
        return self._xp
