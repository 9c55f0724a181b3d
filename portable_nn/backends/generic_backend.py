"""The generic adapter: any array API namespace, with nothing but the standard's answers.

A namespace no adapter recognises still works: ``array_api_compat.array_namespace`` accepts its
arrays, or they carry ``__array_namespace__``. Devices come from ``__array_namespace_info__()``,
host transfer tries DLPack, DLPack to the CPU, ``to_device`` to a CPU device and ``__array__`` in
turn (a NamespaceError naming each attempt when none works), and laziness is what
``array_api_compat.is_lazy_array`` says of the namespace's arrays. A package that needs more (fast
paths, a materialize hook, its own host transfer or device names) registers an adapter:
:func:`portable_nn.backends.register`.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .base import BackendAdapter

__all__ = ["GenericAdapter", "looks_like_namespace"]

_OBJECT_REPR = re.compile(r"^<.* at 0x[0-9a-fA-F]+>$")


def looks_like_namespace(module: Any) -> bool:
    """Whether ``module`` has what portable_nn calls on an array namespace (``asarray``, ``__array_namespace_info__``).

    >>> import array_api_strict
    >>> looks_like_namespace(array_api_strict), looks_like_namespace(re)
    (True, False)
    """
    return callable(getattr(module, "asarray", None)) and callable(getattr(module, "__array_namespace_info__", None))


class GenericAdapter(BackendAdapter):
    """An adapter built from a namespace module alone; its name is the module's (``"marray.numpy"``).

    Parameters
    ----------
    xp : module
        The array API namespace (what ``array_api_compat.array_namespace`` returns for its arrays).
    name : str, optional
        The backend's name; the module's ``__name__`` by default.

    Examples
    --------
    >>> import array_api_strict
    >>> adapter = GenericAdapter(array_api_strict, name="strict-generic")
    >>> adapter.name, adapter.tier, adapter.lazy
    ('strict-generic', 'generic', False)
    >>> adapter.to_host(array_api_strict.asarray([1.0, 2.0]))
    array([1., 2.])
    """

    tier = "generic"

    def __init__(self, xp: ModuleType | None = None, *, name: str | None = None) -> None:
        super().__init__()
        if xp is None:  # a subclass that names its namespace in class attributes
            return
        module_name = str(getattr(xp, "__name__", type(xp).__name__))
        self._xp = xp
        # Instance attributes: each generic adapter stands for its own namespace.
        self.name = name or module_name  # type: ignore[misc]
        self.package = module_name  # type: ignore[misc]
        self.namespace_module = module_name  # type: ignore[misc]
        self.lazy = _namespace_is_lazy(xp)  # type: ignore[misc]

    def is_namespace(self, module: ModuleType) -> bool:
        same = self._xp is not None and module is self._xp
        return same or getattr(module, "__name__", None) == self.namespace_module

    def has_values(self, x: Any) -> bool:
        """Eager namespaces: True; lazy ones (``array_api_compat.is_lazy_array``): False, nothing is read back."""
        return not self.lazy

    def device_str(self, device: Any) -> str:
        """``str(device)``, or ``"<name>:<index>"`` where that is an object's default repr (``<Device at 0x..>``)."""
        text = str(device)
        if not _OBJECT_REPR.match(text):
            return text
        devices = self.native_devices()
        index = next((i for i, d in enumerate(devices) if d == device), 0)
        return f"{self.name}:{index}"

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        """``xp.asarray(host, device=device)``; where ``asarray`` refuses a NumPy array, ``xp.from_dlpack``."""
        xp = self.namespace()
        try:
            return xp.asarray(host, device=device)
        except (TypeError, ValueError):
            if not callable(getattr(xp, "from_dlpack", None)):
                raise
            return self.move(xp.from_dlpack(host), device)


def _namespace_is_lazy(xp: ModuleType) -> bool:
    """``array_api_compat.is_lazy_array`` of a one-element array of ``xp`` (False when none can be built)."""
    try:
        probe = xp.asarray([0.0])
    except Exception:
        return False
    return bool(array_api_compat.is_lazy_array(probe))
