"""Array helpers for library authors: a host NumPy copy, the backend of an array, placing an array on a model.

A library built on portable_nn (a scikit-learn estimator, a data loader, a metrics package) takes
arrays from its callers in whatever namespace and on whatever device they live. These three public
helpers answer the questions such code asks, with portable_nn's typed errors and never a silent
conversion:

- :func:`to_numpy`: a host NumPy copy of any supported array (for reporting, file I/O, oracles);
- :func:`backend_of`: the portable backend name of an array, a namespace or a backend name;
- :func:`place_on`: a caller's array on a model's backend, device and dtype, refused with a typed
  error unless the conversion is asked for.

They are re-exported at the top level (``pnn.to_numpy``, ``pnn.backend_of``, ``pnn.place_on``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .._backend import (
    backend_name,
    convert,
    device_of,
    device_str,
    dtype_name,
    namespace_of,
    resolve_device,
    resolve_dtype,
    resolve_namespace,
    to_host,
)
from ..errors import ArgumentTypeError, DeviceError, DTypeError, NamespaceError

__all__ = ["backend_of", "place_on", "plain_storage", "to_numpy"]


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of array ``x`` from any supported backend and device.

    The copy never shares memory with ``x`` (a caller may mutate either). bfloat16 comes back as
    float32 (NumPy has no bfloat16); Dask arrays are computed; torch tensors that require grad are
    detached.

    Parameters
    ----------
    x : array
        An array of any supported backend (NumPy, torch, CuPy, JAX, array-api-strict, Dask), on any device.

    Returns
    -------
    numpy.ndarray
        The values, same shape, on the host.

    Raises
    ------
    NamespaceError
        ``x`` is not an array of a supported backend (a list, a scalar, a masked array).

    Examples
    --------
    >>> import portable_nn as pnn
    >>> import torch
    >>> pnn.to_numpy(torch.arange(3.0))
    array([0., 1., 2.], dtype=float32)
    """
    namespace_of(x)  # the typed error for lists, scalars and refused types
    host = to_host(x)
    return np.array(host, copy=True) if _shares_memory(host, x) else np.asarray(host)


def _shares_memory(host: np.ndarray, x: Any) -> bool:
    return isinstance(x, np.ndarray) and np.may_share_memory(host, x)


def backend_of(obj: Any) -> str:
    """The portable backend name (``"numpy"``, ``"torch"``, ``"jax"``...) of an array, a namespace or a name.

    Parameters
    ----------
    obj : array, module or str
        An array of a supported backend; a namespace module, raw (``torch``) or array-API compliant
        (``array_api_compat.torch``); a backend name or alias (``"np"``, ``"jnp"``).

    Returns
    -------
    str
        The canonical name, as ``pnn.Linear(..., xp=name)`` accepts it.

    Raises
    ------
    NamespaceError
        ``obj`` is an object that is not an array of a supported backend.
    UnknownBackendError
        ``obj`` is a module or name portable_nn does not know.

    Examples
    --------
    >>> import numpy as np
    >>> import portable_nn as pnn
    >>> pnn.backend_of(np.zeros(2)), pnn.backend_of(np), pnn.backend_of("jnp")
    ('numpy', 'numpy', 'jax')
    """
    if isinstance(obj, str | ModuleType):
        return backend_name(resolve_namespace(obj))
    return backend_name(namespace_of(obj))


def place_on(x: Any, model: Any, *, dtype: Any = None, move: bool = False) -> Any:
    """Array ``x`` checked (or, with ``move=True``, converted) to ``model``'s backend and device.

    ``model`` is anything with ``xp`` and ``device`` attributes: a :class:`~portable_nn.Module`
    (a layer or a ``Sequential`` with parameters). Floating ``x`` must have the model's dtype
    unless ``dtype`` is given (an explicit cast); integer and boolean arrays (class labels) keep
    their dtype unless ``dtype`` is given.

    Parameters
    ----------
    x : array
        The caller's array, of any supported backend.
    model : Module
        Where ``x`` must go: ``model.xp``, ``model.device`` (and ``model.dtype`` for floating ``x``).
    dtype : str or dtype, optional
        Cast to this dtype (a portable name such as ``"float32"``, or a native dtype of the model's backend).
    move : bool, default False
        Convert ``x`` from another backend or device (DLPack where possible, else a host round trip).
        Without it, another backend is a ``NamespaceError`` and another device a ``DeviceError``.

    Returns
    -------
    array
        ``x`` itself when it is already in place, else a new array of the model's backend on its device.

    Raises
    ------
    NamespaceError
        ``x`` is not an array, or (without ``move``) is of another backend.
    DeviceError
        Without ``move``, ``x`` is on another device.
    DTypeError
        Floating ``x`` of another dtype than the model's, and no ``dtype`` given.
    ArgumentTypeError
        ``model`` has no ``xp``/``device`` (e.g. a ``Sequential`` of activations only).

    Examples
    --------
    >>> import numpy as np
    >>> import portable_nn as pnn
    >>> model = pnn.Linear(3, 1, xp="torch", seed=0)
    >>> x = pnn.place_on(np.ones((2, 3), np.float32), model, move=True)
    >>> type(x).__module__, pnn.backend_of(x)
    ('torch', 'torch')
    """
    try:
        target_xp, target_device = model.xp, model.device
    except AttributeError:
        raise ArgumentTypeError(
            f"place_on: expected a placed model (with xp and device), got {type(model).__name__}"
        ) from None
    if not isinstance(target_xp, ModuleType):
        raise ArgumentTypeError(f"place_on: model.xp must be a namespace module, got {type(target_xp).__name__}")
    source_xp = namespace_of(x)
    target_name = backend_name(target_xp)
    if source_xp is not target_xp and not move:
        raise NamespaceError(
            f"expected a {target_name} array (the model's backend), got a {backend_name(source_xp)} array; "
            "pass move=True to convert it"
        )
    if source_xp is target_xp and device_of(x) != target_device and not move:
        raise DeviceError(
            f"expected an array on device {device_str(target_xp, target_device)!r} (the model's), got one on "
            f"{device_str(source_xp, device_of(x))!r}; pass move=True to move it"
        )
    floating = source_xp.isdtype(x.dtype, "real floating")
    if dtype is not None:
        wanted = _dtype(target_xp, dtype)
    elif floating:
        wanted = model.dtype
        if dtype_name(source_xp, x.dtype) != dtype_name(target_xp, wanted):
            raise DTypeError(
                f"expected dtype {dtype_name(target_xp, wanted)} (the model's), got {dtype_name(source_xp, x.dtype)}; "
                "portable_nn never casts silently: pass dtype= to cast"
            )
    else:
        wanted = None
    if source_xp is target_xp and device_of(x) == target_device and (wanted is None or x.dtype == wanted):
        return x
    if wanted is not None and source_xp.isdtype(x.dtype, "real floating") and _is_float(target_xp, wanted):
        return convert(x, target_xp, target_device, wanted)
    # integer/bool data (labels) or a cast across kinds: through the host, then cast on the target
    host = to_host(x)
    out = target_xp.asarray(host, device=resolve_device(target_xp, target_device))
    return out if wanted is None else target_xp.astype(out, wanted)


def _dtype(xp: ModuleType, dtype: Any) -> Any:
    if isinstance(dtype, str) and not _is_float_name(dtype):
        found = getattr(xp, dtype, None)
        if found is None:
            raise DTypeError(f"{backend_name(xp)} has no dtype {dtype!r}")
        return found
    if not isinstance(dtype, str):
        try:
            return resolve_dtype(xp, dtype)
        except DTypeError:
            return dtype  # a native non-floating dtype of the backend
    return resolve_dtype(xp, dtype)


def _is_float_name(name: str) -> bool:
    return name in ("float16", "bfloat16", "float32", "float64")


def _is_float(xp: ModuleType, dtype: Any) -> bool:
    return _is_float_name(dtype_name(xp, dtype))


def plain_storage(value: Any) -> Any:
    """``value`` as a plain ``numpy.ndarray`` when it is an ndarray subclass that is only storage (``np.memmap``).

    joblib gives memory-mapped arrays back; their operations are ndarray's, so a copy into a plain
    array is exact. Anything else is returned unchanged: other subclasses (masked arrays,
    ``np.matrix``) change what operations mean and meet the usual refusal.

    Parameters
    ----------
    value : any
        Typically a value of a state dict.

    Returns
    -------
    any
        A fresh plain ndarray for a memmap, else ``value`` itself.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> type(plain_storage(np.memmap(path, dtype="float32", mode="w+", shape=(2,)))).__name__
    'ndarray'
    """
    if isinstance(value, np.memmap):
        return np.array(value, copy=True, subok=False)
    return value
