"""What the checkpoint functions share: the reserved metadata names and the checks of a path and a file's dtype.

``portable_nn.`` prefixes portable_nn's own ``__metadata__`` entries (a user's keys may not use it);
``optimizer/`` prefixes the tensors of an optimizer's buffers (``optimizer/<parameter>/<buffer>``).
"""

from __future__ import annotations

import os
from typing import Any

from .._backend import supported_dtypes
from ..errors import ArgumentTypeError, DTypeError

PathLike = str | os.PathLike[str]

PREFIX = "portable_nn."
OPTIMIZER = "optimizer/"


def checked_path(path: Any) -> PathLike:
    """``path`` if it is a ``str`` or ``os.PathLike``; an ArgumentTypeError otherwise (never a raw TypeError)."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return path


def checked_file_dtype(path: PathLike, xp: Any, name: str) -> str:
    """``name``, a dtype of the file, if the backend ``xp`` has it; a DTypeError telling to pass ``dtype=`` if not."""
    if name not in supported_dtypes(xp):
        raise DTypeError(
            f"{path} holds {name} tensors but this backend has no {name}; "
            "pass dtype= to cast explicitly (dtype='float32' is lossless from bfloat16 and float16)"
        )
    return name
