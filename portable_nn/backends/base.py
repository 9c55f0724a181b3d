"""What a backend adapter knows: the interface every backend implements, with array-api-compat defaults.

One :class:`BackendAdapter` subclass per backend (``numpy_backend.py``, ``torch_backend.py``...)
holds everything backend-specific portable_nn needs: which modules it recognises, how to import
its namespace, its devices as portable strings, its floating dtypes, host transfer, DLPack
import, synchronization and the persist policy of lazy backends. The defaults below are the
array API standard's answers, built on ``array_api_compat`` (``device``, ``to_device``,
``__array_namespace_info__()``), so an adapter overrides only where its backend differs.
Adapters are registered once, in :mod:`portable_nn.backends.registry`.

Portable device strings are ``"cpu"``, ``"cpu:N"``, ``"cuda"``, ``"cuda:N"`` (plus a backend's
own names such as array-api-strict's ``"device1"``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ._devices import parse_index
from ._namespace import MINIMUM_API_VERSION
from ._transfer import _AdapterTransfer, host_copy

__all__ = ["FLOAT_DTYPES", "MINIMUM_API_VERSION", "BackendAdapter", "host_array", "host_copy", "parse_index"]

FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


def host_array(array: Any, dtype: str) -> np.ndarray:
    """``array`` as a C-ordered host NumPy array of dtype ``dtype`` (a name NumPy knows), copied only if needed.

    >>> host_array([1, 2], "float32")
    array([1., 2.], dtype=float32)
    """
    return np.asarray(array, dtype=dtype, order="C")  # not ascontiguousarray: it makes 0-D arrays 1-D


class BackendAdapter(_AdapterTransfer):
    """One array backend as portable_nn sees it; subclasses set the class attributes and override what differs.

    Attributes
    ----------
    name : str
        Canonical backend name (``"numpy"``, ``"torch"``...), as users pass it and reports print it.
    package : str
        Module whose import makes the backend available (``"dask.array"``).
    namespace_module : str
        Module of its array-API-compliant namespace (``"array_api_compat.torch"``).
    module_names : tuple of str
        Module names besides those ``recognises`` accepts that stand for this backend (e.g. ``"jax"``).
    aliases : tuple of str
        Other names users may pass (``"np"``, ``"jnp"``...).
    gpu_capable : bool
        Whether the backend can run on CUDA (test matrices list a skipped ``cuda`` entry without one).
    lazy : bool
        Whether arrays are graphs that run only when computed (Dask): see :meth:`materialize`.
    dlpack_module : str or None
        Module whose ``from_dlpack`` imports foreign arrays; None where arrays cannot go through
        DLPack either way (Dask).
    home_device : str
        The portable device a test matrix shows for this backend when it is not installed.
    fast_paths : dict of str to str
        This backend's fast-path modules in :mod:`portable_nn.backends`, by hook kind: ``"optimizers"``
        (multi-tensor updates), ``"ops"`` (fused primitives), ``"scatter"`` (row scatter-add), ``"step"``
        (a compiled training step and its abstract check), ``"eval"`` (a compiled evaluation), ``"cache"``
        (a persistent compilation cache). Empty: the generic array-API code everywhere. Looked up by
        ``portable_nn.backends.fast_paths``, so the adapters are the one registry of backend knowledge.
    tier : str
        How portable_nn tests it: ``"ci"`` (built in, the whole suite on every CI run), ``"gpu"`` (built in,
        tested where a GPU is present), ``"third-party"`` (bundled adapters of other packages' namespaces:
        a focused conformance subset, tests marked ``third_party``), ``"registered"`` (registered by a
        user or a package's entry point) or ``"generic"`` (no adapter: the standard's answers alone).

    Examples
    --------
    >>> from portable_nn.backends import get_adapter
    >>> adapter = get_adapter("numpy")
    >>> adapter.name, adapter.device_str(adapter.default_device())
    ('numpy', 'cpu')
    """

    # ----------------------------------------------------------------- dtypes

    def _dtype_object(self, xp: ModuleType, name: str) -> Any:
        """The floating dtype ``name`` of this backend, or None (override to look beyond the namespace)."""
        return getattr(xp, name, None)

    def dtype_table(self) -> dict[str, Any]:
        """Portable name -> dtype object, for every floating dtype of ``FLOAT_DTYPES`` the backend has.

        Returns
        -------
        dict of str to object
            Computed once, then cached.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> sorted(adapter.dtype_table())
        ['float16', 'float32', 'float64']
        """
        if self._dtypes is None:
            xp = self.namespace()
            found = {name: self._dtype_object(xp, name) for name in FLOAT_DTYPES}
            self._dtypes = {name: obj for name, obj in found.items() if obj is not None}
        return self._dtypes

    def supported_dtypes(self, device: Any = None) -> list[str]:
        """The floating dtype names usable on ``device`` (all the backend has when None).

        Narrowed by ``__array_namespace_info__().dtypes(device=...)`` (array-api-strict's
        ``no_float64``, JAX without x64); float16/bfloat16 are outside the standard and kept.

        Parameters
        ----------
        device : object or None
            A native device, or None for every dtype of :meth:`dtype_table`.

        Returns
        -------
        list of str
            Dtype names, e.g. ``["float16", "float32", "float64"]``.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.supported_dtypes(adapter.default_device())
        ['float16', 'float32', 'float64']
        """
        names = list(self.dtype_table())
        if device is not None:
            real = self.info().dtypes(device=device, kind="real floating")
            names = [n for n in names if n in real or n in ("float16", "bfloat16")]
        return names

    def missing_dtype_hint(self, name: str) -> str:
        """Text appended to 'has no <name>' errors (how to enable it), or ``""``.

        Parameters
        ----------
        name : str
            The missing dtype's name (``"float64"``...).

        Returns
        -------
        str
            The hint (JAX: enable x64), or ``""``.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.missing_dtype_hint("bfloat16")
        ''
        """
        return ""

    # ----------------------------------------------------------------- building arrays

    def zeros_like(self, xp: ModuleType, x: Any) -> Any:
        """Zeros of ``x``'s shape, dtype and placement (``xp.zeros_like``; JAX builds them on the host: no compile).

        Parameters
        ----------
        xp : module
            This backend's namespace.
        x : array
            The template array.

        Returns
        -------
        array
            Zeros shaped, typed and placed like ``x``.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> xp = adapter.namespace()
        >>> adapter.zeros_like(xp, xp.ones(2)).tolist()
        [0.0, 0.0]
        """
        return xp.zeros_like(x)

    def scalar(self, xp: ModuleType, value: Any, dtype: Any, device: Any) -> Any:
        """A 0-d array ``value`` of ``dtype`` on ``device`` (``xp.asarray``; JAX builds it on the host: no compile).

        Parameters
        ----------
        xp : module
            This backend's namespace.
        value : float or int
            The value.
        dtype : dtype
            A dtype object of ``xp``.
        device : object
            The native device.

        Returns
        -------
        array
            A 0-d array.

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> xp = adapter.namespace()
        >>> adapter.scalar(xp, 2.0, xp.float32, "cpu")
        array(2., dtype=float32)
        """
        return xp.asarray(value, dtype=dtype, device=device)

    # ----------------------------------------------------------------- execution

    def synchronize(self, device: Any = None, out: Any = None) -> None:
        """Block until the work queued on ``device`` (or behind ``out``) is done; eager CPU backends: nothing to do.

        Parameters
        ----------
        device : object or None
            A native device, or None for the backend's current one.
        out : array or None
            An array whose computation to wait for (backends that queue per array).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> adapter.synchronize("cpu")
        """
        return None

    def materialize(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arrays stored rather than pending (lazy backends); eager backends: the same objects.

        Parameters
        ----------
        arrays : tuple of array
            Arrays of this backend.

        Returns
        -------
        tuple of array
            The same values, computed and stored (Dask: persisted together).

        Examples
        --------
        >>> from portable_nn.backends import get_adapter
        >>> adapter = get_adapter("numpy")
        >>> x = adapter.namespace().ones(2)
        >>> adapter.materialize((x,))[0] is x
        True
        """
        return arrays
