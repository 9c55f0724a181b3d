"""JAX's persistent compilation cache for a block of work (the command line's ``--compilation-cache DIR``).

JAX compiles every ``jax.jit`` program and every eager operation on a new shape with XLA; the
persistent cache stores the compiled executables in a directory, so a later process with the
same programs, shapes and JAX version loads them instead of compiling. JAX's defaults cache only
programs that took at least a second to compile; here every one is cached (most of a small
model's compilations take 10-100 ms each).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax

__all__ = ["compilation_cache"]

#: The settings changed inside :func:`compilation_cache` (restored afterwards).
_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


@contextmanager
def compilation_cache(path: str) -> Iterator[None]:
    """Inside: XLA compilations are looked up in, and written to, the directory ``path`` (created if missing).

    Every compiled program is cached, whatever its compile time or size. JAX decides once per
    process whether a cache is in use (at its first compilation); the decision is reset on entry
    and on exit, so a process that compiled before uses the cache inside, and not after. The
    previous settings come back on exit.
    """
    from jax.experimental.compilation_cache import compilation_cache as cache

    os.makedirs(path, exist_ok=True)
    update: Callable[[str, Any], None] = jax.config.update  # untyped in jax: typed here
    before = {name: getattr(jax.config, name) for name in _SETTINGS}
    update("jax_compilation_cache_dir", os.path.abspath(path))
    update("jax_persistent_cache_min_compile_time_secs", 0.0)
    update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size threshold, no override
    cache.reset_cache()
    try:
        yield
    finally:
        for name, value in before.items():
            update(name, value)
        cache.reset_cache()
