"""Reading a checkpoint's tensors and metadata as they are: ``load_state`` (a state dict) and ``load_metadata``.

Any safetensors file reads (a whole model, a state dict, a file the ``safetensors`` package
wrote); the header is validated against the file before a tensor is read.
"""

from __future__ import annotations

from typing import Any

from .._backend import convert, from_host, resolve_device, resolve_namespace
from ..typing import Array
from ._arguments import PathLike, checked_file_dtype, checked_path
from ._safetensors_format import INTEGER_CODE, NAMES, open_regular, read_header, read_tensors

__all__ = ["load_metadata", "load_state"]


def load_state(path: PathLike, *, xp: Any = "numpy", device: Any = None, dtype: Any = None) -> dict[str, Array]:
    """Name -> array of every tensor in a safetensors file, on ``xp``/``device``; for ``load_state_dict``.

    ``dtype`` None keeps each tensor's file dtype; a given ``dtype`` is an explicit cast.

    Parameters
    ----------
    path : str or os.PathLike
        A regular safetensors file (a whole model, a state dict, or any file the ``safetensors`` package wrote).
    xp : str, namespace or array
        Backend of the arrays: a name (``"numpy"``, the default; ``"torch"``, ...), a namespace, or an array
        whose namespace to use.
    device : str, device or None
        ``"cpu"``, ``"cuda:N"``, a native device, or None for the backend's default.
    dtype : str, dtype or None
        None (default) keeps each tensor's dtype; a floating dtype (``"float32"``, ...) casts them all.

    Returns
    -------
    dict of str to array
        Every tensor of the file by name, each with its shape in the file (optimizer buffers included, as
        ``optimizer/<parameter>/<buffer>``).

    Raises
    ------
    ArgumentTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The file is not valid safetensors (nothing is returned).
    DTypeError
        The backend has no dtype for a tensor of the file and ``dtype`` is None, or ``dtype`` is not a
        floating dtype of the backend.
    UnknownBackendError
        ``xp`` names no backend.
    BackendUnavailableError
        ``xp`` names a backend that is not installed.
    DeviceError
        ``device`` is not one of the backend's devices.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
    >>> pnn.save(pnn.Linear(3, 2, seed=0).state_dict(), path)
    >>> state = pnn.load_state(path, dtype="float64")
    >>> sorted((name, tuple(array.shape), str(array.dtype)) for name, array in state.items())
    [('bias', (2,), 'float64'), ('weight', (2, 3), 'float64')]
    >>> model = pnn.Linear(3, 2, dtype="float64")
    >>> model.load_state_dict(state)
    """
    path = checked_path(path)
    with open_regular(path) as fh:
        header = read_header(path, fh)
        target_xp = resolve_namespace(xp)
        target_device = resolve_device(target_xp, device)
        chosen = {
            name: dtype if dtype is not None else checked_file_dtype(path, target_xp, NAMES[entry.code])
            for name, entry in header.entries.items()
            if entry.code != INTEGER_CODE
        }
        return {  # integer tensors (a model's counters) come back as the backend's default integer dtype
            name: (
                convert(host, target_xp, target_device, chosen[name])
                if name in chosen
                else from_host(host, target_xp, target_device, target_xp.asarray(0, device=target_device).dtype)
            )
            for name, _, host in read_tensors(path, fh, header, header.entries)
        }


def load_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (the header is validated against the file; no tensor is read).

    Parameters
    ----------
    path : str or os.PathLike
        A regular safetensors file.

    Returns
    -------
    dict of str to str
        The user's ``metadata`` given to :func:`save` and portable_nn's own entries (``portable_nn.class``,
        ``portable_nn.config``, ``portable_nn.version``, ...); empty for a file without ``__metadata__``.

    Raises
    ------
    ArgumentTypeError
        ``path`` is not a ``str`` or ``os.PathLike``.
    SerializationError
        The header is not valid safetensors or does not match the file's size.

    Examples
    --------
    >>> import tempfile, os, portable_nn as pnn
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> pnn.save(pnn.Linear(3, 2, seed=0), path, metadata={"run": "demo"})
    >>> metadata = pnn.load_metadata(path)
    >>> metadata["run"], metadata["portable_nn.class"]
    ('demo', 'Linear')
    """
    path = checked_path(path)
    with open_regular(path) as fh:
        return read_header(path, fh).metadata
