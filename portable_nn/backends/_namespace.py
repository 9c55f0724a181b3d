"""The core of :class:`~portable_nn.backends.base.BackendAdapter`: its class attributes and its namespace."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any, ClassVar

from ..errors import BackendUnavailableError

#: The oldest array API standard portable_nn runs on (``__array_namespace_info__`` and ``clip`` are 2023.12).
MINIMUM_API_VERSION = "2023.12"


class _AdapterNamespace:
    """Class attributes of :class:`~portable_nn.backends.base.BackendAdapter` and how it finds its namespace."""

    name: ClassVar[str]
    package: ClassVar[str]
    namespace_module: ClassVar[str]
    module_names: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ()
    gpu_capable: ClassVar[bool] = False
    lazy: ClassVar[bool] = False
    dlpack_module: ClassVar[str | None] = None
    home_device: ClassVar[str] = "cpu"
    fast_paths: ClassVar[dict[str, str]] = {}
    tier: ClassVar[str] = "registered"

    def __init__(self) -> None:
        self._xp: ModuleType | None = None
        self._dtypes: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ----------------------------------------------------------------- namespace

    def is_namespace(self, module: ModuleType) -> bool:
        """Whether ``module`` is this backend's namespace (array-api-compat's ``is_<backend>_namespace``).

        Parameters
        ----------
        module : module
            A namespace module (raw or wrapped by array-api-compat).

        Returns
        -------
        bool
            True when ``module`` is this backend's namespace.

        Raises
        ------
        NotImplementedError
            Always, here: every adapter overrides it.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.is_namespace(adapter.namespace())
        True
        """
        raise NotImplementedError

    def recognises(self, module: ModuleType) -> bool:
        """Whether ``module`` (raw or wrapped namespace, or one of ``module_names``) stands for this backend.

        Parameters
        ----------
        module : module
            A module, e.g. ``numpy``, ``array_api_compat.numpy`` or ``jax.numpy``.

        Returns
        -------
        bool
            True when ``module`` stands for this backend.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> import numpy as np
        >>> adapter.recognises(np), adapter.recognises(adapter.namespace())
        (True, True)
        """
        return module.__name__ in self.module_names or self.is_namespace(module)

    def installed(self) -> bool:
        """Whether the backend's package is importable here (without importing it).

        Returns
        -------
        bool
            True when the package is found (or its namespace was already imported).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.installed()
        True
        """
        return self._xp is not None or importlib.util.find_spec(self.package.split(".")[0]) is not None

    def namespace(self) -> ModuleType:
        """The compliant namespace module, imported once.

        Returns
        -------
        module
            The array-API-compliant namespace (``namespace_module``).

        Raises
        ------
        BackendUnavailableError
            The backend's package or its namespace cannot be imported.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.namespace().__name__
        'array_api_compat.numpy'
        """
        if self._xp is None:
            try:
                importlib.import_module(self.package)
                self._xp = importlib.import_module(self.namespace_module)
            except ImportError as exc:
                raise BackendUnavailableError(f"backend {self.name!r} is not installed ({exc})") from exc
        return self._xp

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (``"cupy is not installed"``), or None when it can be imported.

        Returns
        -------
        str or None
            The reason, or None when the namespace imports.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.unavailable_reason() is None
        True
        """
        if not self.installed():
            return f"{self.name} is not installed"
        try:
            self.namespace()
        except BackendUnavailableError as exc:
            return f"{self.name} is not installed ({exc.__cause__})"
        return None

    @staticmethod
    def module(name: str) -> ModuleType:
        """A backend's own (unwrapped) module, e.g. ``torch`` or ``jax.numpy``.

        Taken from ``sys.modules`` once imported: no import machinery, which ``torch.compile`` cannot
        trace.

        Parameters
        ----------
        name : str
            The module's dotted name.

        Returns
        -------
        module
            The module, imported if it was not yet.

        Examples
        --------
        >>> from portable_nn.backends import BackendAdapter
        >>> BackendAdapter.module("numpy").__name__
        'numpy'
        """
        found = sys.modules.get(name)
        return found if found is not None else importlib.import_module(name)
