"""Atomic file replacement: a crash leaves the old file or the new one, never a half-written one or a stray temp.

On Linux the bytes go to an anonymous ``O_TMPFILE`` in the target's folder (it has no name, so
a crash leaves nothing), which is fsynced, linked under a temporary name and renamed over the
target at once. Elsewhere a named temporary file ``.<name>.<16 hex>.tmp`` is used; a crash
between its creation and the rename can leave it, and the next save of the same path removes
such leftovers. Saves into one folder hold an exclusive ``flock`` on it (where available), so a
leftover is never a concurrent save's live file.

A symbolic link is followed (the target file is replaced, the link stays); the replaced file's
permission bits are kept (``0600`` stays ``0600``); anything but a regular file (a folder, a FIFO,
a device) is refused up front with a ``SerializationError``. ``OSError``\\ s name the user's path,
never the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import SerializationError

__all__ = ["check_target", "write_atomic"]

PathLike = str | os.PathLike[str]

_NAME_MAX = 255


def check_target(path: PathLike) -> tuple[Path, int | None]:
    """``(real path to write, permission bits to keep or None for a new file)``; refuses non-regular targets."""
    user = os.fspath(path)
    target = Path(os.path.realpath(user)) if os.path.islink(user) else Path(user)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if target.name in ("", ".", ".."):
            raise SerializationError(f"cannot save to {user}: it names a directory") from None
        return target, None
    except OSError as exc:
        raise _naming(exc, user) from None
    if stat.S_ISDIR(info.st_mode):
        raise SerializationError(f"cannot save to {user}: it is a directory (give a file name inside it)")
    if not stat.S_ISREG(info.st_mode):
        raise SerializationError(f"cannot save to {user}: it is not a regular file (a FIFO, socket or device)")
    return target, stat.S_IMODE(info.st_mode)


def _temp_prefix(name: str) -> str:
    """``.<name>.`` shortened so that ``.<name>.<16 hex>.tmp`` fits in NAME_MAX bytes."""
    room = _NAME_MAX - len(".") - len(".0123456789abcdef.tmp")
    encoded = name.encode("utf-8", "surrogateescape")[:room]
    return "." + encoded.decode("utf-8", "ignore") + "."


def _clean_stale(directory: Path, prefix: str) -> None:
    pattern = re.compile(re.escape(prefix) + r"[0-9a-f]{16}\.tmp")
    for entry in os.listdir(directory):
        if pattern.fullmatch(entry):
            with contextlib.suppress(OSError):
                os.unlink(directory / entry)


def _open_anonymous(directory: Path) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``directory``, or None where the OS or file system has none."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:
        return None


def _lock(directory: Path) -> int | None:
    """A descriptor of ``directory`` holding an exclusive ``flock``, or None where folders cannot be locked."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
    except OSError:  # some network file systems
        os.close(dir_fd)
        return None
    return dir_fd


def write_atomic(path: PathLike, chunks: Iterable[bytes]) -> None:
    """Replace ``path`` by the concatenated ``chunks`` atomically (see the module docstring)."""
    user = os.fspath(path)
    target, mode = check_target(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(2, "No such directory", user)
    dir_fd = _lock(directory)
    try:
        prefix = _temp_prefix(target.name)
        if dir_fd is not None:  # with the lock held, a leftover is no concurrent save's live file
            _clean_stale(directory, prefix)
        _write_and_replace(user, target, directory / f"{prefix}{secrets.token_hex(8)}.tmp", mode, chunks)
        if dir_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)  # the rename itself is durable
    finally:
        if dir_fd is not None:
            os.close(dir_fd)  # closing releases the flock


def _write_and_replace(user: str, target: Path, temp: Path, mode: int | None, chunks: Iterable[bytes]) -> None:
    fd = _open_anonymous(target.parent)
    named = fd is None
    linked = False
    try:
        if fd is None:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb", closefd=False) as fh:
            for chunk in chunks:
                fh.write(chunk)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        os.fsync(fd)
        if not named:
            _link_anonymous(fd, temp)
        linked = True
        if named:
            os.close(fd)  # Windows cannot rename an open file
            fd = None
        os.replace(temp, target)
        linked = False
    except OSError as exc:
        _discard(temp, named or linked)
        raise _naming(exc, user) from None
    except BaseException:
        _discard(temp, named or linked)
        raise
    finally:
        if fd is not None:
            os.close(fd)


def _link_anonymous(fd: int, temp: Path) -> None:
    """Give the ``O_TMPFILE`` file ``fd`` the name ``temp`` (linkat with AT_SYMLINK_FOLLOW: it needs a dir_fd)."""
    dir_fd = os.open(temp.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(f"/proc/self/fd/{fd}", temp.name, dst_dir_fd=dir_fd, follow_symlinks=True)
    finally:
        os.close(dir_fd)


def _discard(temp: Path, exists: bool) -> None:
    if exists:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _naming(exc: OSError, user: str) -> OSError:
    """The same kind of ``OSError``, naming the user's path instead of a temporary name."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, user)
