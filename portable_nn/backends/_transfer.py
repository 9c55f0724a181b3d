"""Host and DLPack transfer of :class:`~portable_nn.backends.base.BackendAdapter` and the host copy behind it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import NamespaceError
from ._devices import _AdapterDevices

if TYPE_CHECKING:
    from .base import BackendAdapter


class _AdapterTransfer(_AdapterDevices):
    """Host and DLPack transfer of :class:`~portable_nn.backends.base.BackendAdapter`."""

    def from_host(self, host: np.ndarray, device: Any) -> Any:
        """Host NumPy array ``host`` (already of the target dtype) as an array of this backend on ``device``.

        Parameters
        ----------
        host : numpy.ndarray
            The values, any shape, of the target dtype.
        device : object
            The native target device.

        Returns
        -------
        array
            An array of this backend with ``host``'s shape, dtype and values.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> import numpy as np
        >>> adapter.from_host(np.ones(2, dtype="float32"), "cpu").dtype
        dtype('float32')
        """
        return self.namespace().asarray(host, device=device)

    def to_host(self, x: Any) -> np.ndarray:
        """A NumPy copy of array ``x`` (bfloat16 comes back as float32), by the standard's means.

        Tried in order: DLPack (``numpy.from_dlpack``), DLPack asked for a CPU copy
        (``device="cpu"``), the array moved to a CPU device of its namespace (``to_device``) then
        DLPack, and last ``__array__`` (outside the standard; an ``object`` result is refused). A
        NamespaceError naming each attempt when none works: such a namespace needs an adapter
        with its own ``to_host`` (see :func:`portable_nn.backends.register`).

        Parameters
        ----------
        x : array
            An array of this backend, any shape.

        Returns
        -------
        numpy.ndarray
            A copy with ``x``'s shape and values.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.to_host(adapter.namespace().ones(2))
        array([1., 1.])
        """
        return host_copy(x, cast("BackendAdapter", self))  # only BackendAdapter derives from this part

    def detach(self, x: Any) -> Any:
        """``x`` without autograd history, ready for DLPack export (torch's ``requires_grad`` tensors).

        Parameters
        ----------
        x : array
            An array of this backend.

        Returns
        -------
        array
            ``x`` itself here; torch: ``x.detach()``.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> x = adapter.namespace().ones(2)
        >>> adapter.detach(x) is x
        True
        """
        return x

    def from_dlpack(self, x: Any) -> Any | None:
        """``x`` (any backend) imported zero-copy into this backend, or None where DLPack cannot.

        Parameters
        ----------
        x : array
            An array of any backend that exports DLPack.

        Returns
        -------
        array or None
            An array of this backend sharing ``x``'s memory, or None.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> import numpy as np
        >>> adapter.from_dlpack(np.ones(2)).tolist()
        [1.0, 1.0]
        """
        if self.dlpack_module is None:
            return None
        try:
            return self.module(self.dlpack_module).from_dlpack(x)
        except (BufferError, RuntimeError, TypeError, ValueError, AttributeError):
            return None  # e.g. CUDA -> NumPy, bfloat16 -> NumPy, a read-only NumPy buffer


def _cpu_devices(adapter: BackendAdapter) -> list[Any]:
    """The devices of ``adapter`` whose name says CPU (``"cpu"``, ``CPU_DEVICE``, ``TFRT_CPU_0``)."""
    try:
        devices = adapter.native_devices()
    except Exception:  # a namespace without __array_namespace_info__: nothing to move to
        return []
    return [d for d in devices if "cpu" in str(d).lower() or "cpu" in adapter.device_str(d).lower()]


def _numeric(host: Any, route: str) -> np.ndarray:
    array = np.array(host)  # a copy: the source may be a view of memory its owner keeps changing
    if array.dtype == object:
        raise TypeError(f"{route} gave an object array, not numbers")
    return array


def host_copy(x: Any, adapter: BackendAdapter) -> np.ndarray:
    """A NumPy copy of ``x`` through DLPack, DLPack to the CPU, ``to_device`` to a CPU device, then ``__array__``.

    >>> import numpy as np
    >>> from portable_nn.backends import get_adapter
    >>> host_copy(np.ones(2), get_adapter("numpy"))
    array([1., 1.])
    """
    attempts: list[str] = []

    def via_dlpack(array: Any, **kwargs: Any) -> np.ndarray:
        return _numeric(np.from_dlpack(array, **kwargs), "DLPack")

    def moved(cpu: Any) -> np.ndarray:
        return via_dlpack(x.to_device(cpu))

    routes: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("DLPack", functools.partial(via_dlpack, x)),
        ("DLPack to the CPU", functools.partial(via_dlpack, x, device="cpu")),
    ]
    for cpu in _cpu_devices(adapter):
        routes.append((f"to_device({adapter.device_str(cpu)!r}) then DLPack", functools.partial(moved, cpu)))
    if hasattr(type(x), "__array__"):
        routes.append(("__array__", functools.partial(_numeric, x, "__array__")))
    for route, attempt in routes:
        try:
            return attempt()
        except Exception as exc:  # each library fails in its own way: BufferError, TypeError, RuntimeError...
            attempts.append(f"{route}: {type(exc).__name__}: {exc}")
    if not hasattr(type(x), "__array__"):
        attempts.append("__array__: not defined")
    kind = type(x)
    raise NamespaceError(
        f"cannot copy a {kind.__module__}.{kind.__qualname__} ({adapter.name}) to the host: "
        + "; ".join(attempts)
        + ". Register an adapter with its own to_host (portable_nn.backends.register)"
    )
