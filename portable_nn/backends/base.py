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

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from ..errors import BackendUnavailableError, DeviceError, NamespaceError

__all__ = ["FLOAT_DTYPES", "MINIMUM_API_VERSION", "BackendAdapter", "host_array", "host_copy", "parse_index"]

FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
#: The oldest array API standard portable_nn runs on (``__array_namespace_info__`` and ``clip`` are 2023.12).
MINIMUM_API_VERSION = "2023.12"


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


def host_array(array: Any, dtype: str) -> np.ndarray:
    """``array`` as a C-ordered host NumPy array of dtype ``dtype`` (a name NumPy knows), copied only if needed.

    >>> host_array([1, 2], "float32")
    array([1., 2.], dtype=float32)
    """
    return np.asarray(array, dtype=dtype, order="C")  # not ascontiguousarray: it makes 0-D arrays 1-D


class BackendAdapter:
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
        :mod:`portable_nn.backends.fast_paths`, so the adapters are the one registry of backend knowledge.
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

    # ----------------------------------------------------------------- devices

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

    # ----------------------------------------------------------------- host transfer

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
        return host_copy(x, self)

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
