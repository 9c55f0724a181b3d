"""Devices of :class:`~portable_nn.backends.base.BackendAdapter`: listing, naming, placing, moving arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat

from ..errors import DeviceError, NamespaceError
from ._namespace import MINIMUM_API_VERSION, _AdapterNamespace


def parse_index(text: str, prefix: str) -> int:
    """The ``N`` of a device string ``"prefix:N"`` (0 for a bare ``"prefix"``); a DeviceError if not a number.

    >>> parse_index("cuda:1", "cuda")
    1
    """
    if text == prefix:
        return 0
    try:
        return int(text[len(prefix) + 1 :])
    except ValueError:
        raise DeviceError(f"cannot parse device string {text!r}; expected {prefix!r} or '{prefix}:N'") from None


class _AdapterDevices(_AdapterNamespace):
    """The devices of :class:`~portable_nn.backends.base.BackendAdapter` and the arrays it accepts on them."""

    def native_devices(self) -> list[Any]:
        """Every device of this backend usable here, as native objects (``__array_namespace_info__().devices()``).

        Returns
        -------
        list
            The backend's own device objects.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.native_devices()
        ['cpu']
        """
        return list(self.info().devices())

    def info(self) -> Any:
        """``__array_namespace_info__()`` of the namespace.

        Returns
        -------
        object
            The namespace's inspection object (``devices()``, ``dtypes()``, ``default_device()``...).

        Raises
        ------
        NamespaceError
            The namespace implements a standard older than 2023.12 (no ``__array_namespace_info__``).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> list(adapter.info().devices())
        ['cpu']
        """
        xp = self.namespace()
        try:
            return xp.__array_namespace_info__()
        except (AttributeError, RuntimeError):  # array-api-strict below 2023.12 raises RuntimeError
            version = getattr(xp, "__array_api_version__", "unknown")
            raise NamespaceError(
                f"{self.name} implements array API version {version}; portable_nn needs {MINIMUM_API_VERSION} "
                "or later (__array_namespace_info__ is missing)"
            ) from None

    def device_str(self, device: Any) -> str:
        """The portable string of a native device object.

        Parameters
        ----------
        device : object
            A native device of this backend.

        Returns
        -------
        str
            ``"cpu"``, ``"cuda:N"``... (here: ``str(device)``).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.device_str(adapter.default_device())
        'cpu'
        """
        return str(device)

    def available_devices(self) -> dict[str, Any]:
        """Portable device string -> native device, for every usable device.

        Returns
        -------
        dict of str to object
            One entry per device of :meth:`native_devices`.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.available_devices()
        {'cpu': 'cpu'}
        """
        return {self.device_str(d): d for d in self.native_devices()}

    def device_key(self, text: str) -> str:
        """A portable device string in the form :meth:`available_devices` lists (``"cuda"`` -> ``"cuda:0"``).

        Parameters
        ----------
        text : str
            A portable device string (``"cuda"``, ``"cpu:0"``, ``"CPU_DEVICE"``...).

        Returns
        -------
        str
            Its canonical form.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.device_key("cuda"), adapter.device_key("cpu:0")
        ('cuda:0', 'cpu')
        """
        if text == "cuda":
            return "cuda:0"
        if text == "CPU_DEVICE" or (text.startswith("cpu:") and parse_index(text, "cpu") == 0):
            return "cpu"
        return text

    def default_device(self) -> Any:
        """The device arrays land on when none is given (the first usable device).

        Returns
        -------
        object
            A native device.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.default_device()
        'cpu'
        """
        return next(iter(self.available_devices().values()))

    def is_traced_type(self, kind: type) -> bool:
        """Whether arrays of type ``kind`` are a compiler's stand-ins (JAX tracers): no values, only inside a trace.

        Parameters
        ----------
        kind : type
            An array type of this backend.

        Returns
        -------
        bool
            True for tracer types (False here).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> import numpy as np
        >>> adapter.is_traced_type(np.ndarray)
        False
        """
        return False

    def has_values(self, x: Any) -> bool:
        """Whether array ``x`` holds values portable_nn may read for a check (False: a symbolic or traced array).

        Value-dependent checks (the class range of a loss's targets) are skipped where this is False.

        Parameters
        ----------
        x : array
            An array of this backend.

        Returns
        -------
        bool
            True when its values can be read (always, here).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.has_values(adapter.namespace().ones(2))
        True
        """
        return True

    def refused_type(self, kind: type) -> str | None:
        """Why arrays of type ``kind`` (recognised as this backend's) are refused, or None to accept them.

        Parameters
        ----------
        kind : type
            An array type this backend recognises.

        Returns
        -------
        str or None
            The reason (named in the error raised), or None.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> import numpy as np
        >>> adapter.refused_type(np.ndarray) is None, adapter.refused_type(np.matrix) is None
        (True, False)
        """
        return None

    def accepts_device(self, device: Any) -> bool:
        """Whether a native device object not in :meth:`available_devices` is still valid (torch's ``mps``).

        Parameters
        ----------
        device : object
            A native device object.

        Returns
        -------
        bool
            True to accept it (False here).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.accepts_device("tpu")
        False
        """
        return False

    def device_getter(self) -> Callable[[Any], Any]:
        """A function array -> native device (``array_api_compat.device``; cached per array type by the facade).

        Returns
        -------
        callable
            ``getter(x) -> device``.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.device_getter()(adapter.namespace().ones(2))
        'cpu'
        """
        getter: Callable[[Any], Any] = array_api_compat.device
        return getter

    def move(self, x: Any, device: Any) -> Any:
        """Array ``x`` of this backend on native ``device`` (``array_api_compat.to_device``).

        Parameters
        ----------
        x : array
            An array of this backend.
        device : object
            The native target device.

        Returns
        -------
        array
            ``x`` on ``device`` (``x`` itself when already there, for some backends).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.move(adapter.namespace().ones(2), "cpu").tolist()
        [1.0, 1.0]
        """
        return array_api_compat.to_device(x, device)
