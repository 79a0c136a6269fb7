"""Reading a user's data file safely: a regular file only (never a FIFO that would block, a folder,
a link that leads nowhere or in a loop), of a bounded size, with errors that name it as the caller
does (relative to ``--source``), never by its absolute path.

``UnreadableFile`` (a DataError) means the file cannot be read at all (permissions, not a file):
that is not a malformed file, so ``--skip-bad-files`` does not skip it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from pipeline.core.errors import DataError


class UnreadableFile(DataError):
    """The file exists (or its name does) but cannot be read as a file."""


def read_bytes(path: str | os.PathLike, name: str, max_bytes: int, limit_note: str = "") -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``; a bigger one is refused
    before it is read, with ``limit_note`` saying why the limit is what it is)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise UnreadableFile(f"{name}: {_reason(path, error)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
            raise UnreadableFile(f"{name}: not a regular file but {kind}; it cannot be read")
        if info.st_size > max_bytes:
            raise DataError(f"{name}: {info.st_size / 1e6:,.1f} MB, more than the {max_bytes / 1e6:,.0f} MB "
                            f"read from one file{limit_note}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:                      # it grew while being read
            raise DataError(f"{name}: more than the {max_bytes / 1e6:,.0f} MB read from one file{limit_note}")
        return b"".join(chunks)
    except OSError as error:
        raise UnreadableFile(f"{name}: {_reason(path, error)}") from None
    finally:
        os.close(fd)


def _reason(path: Path, error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "cannot read (a link that leads nowhere)" if path.is_symlink() else "cannot read (no such file)"
    if error.errno == errno.ELOOP:
        return "cannot read (a link loop: the link leads back to itself)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "cannot read (permission denied)"
    return f"cannot read ({error.strerror or error})"
