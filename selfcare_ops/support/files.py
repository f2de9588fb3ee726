"""Reading a file a person names, with bounds: only regular files, sizes checked on the open file.

A path such as ``/dev/zero``, ``/dev/stdin``, a FIFO or a folder passes a ``stat()`` size check
with size 0 and then reads without end (or blocks); so the file is opened without blocking,
checked with ``fstat`` (``S_ISREG``) and its size *after* opening, and reading stops at the
limit plus one byte whatever the file claims.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from selfcare_ops.errors import SelfcareError

#: Builds the error raised with a sentence; ``limit`` and ``actual`` are given for sizes.
ErrorFactory = Callable[..., SelfcareError]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def open_regular_file(
    path: str | Path, what: str, error: ErrorFactory, *, limit: int | None = None
) -> tuple[BinaryIO, int]:
    """``(binary handle, size)`` of ``path`` if it is a regular file of at most ``limit`` bytes.

    ``what`` names the file in sentences ("The logo file"); ``error`` builds the exception
    raised with a sentence. Opening never blocks (``O_NONBLOCK``: a FIFO without writer).
    """
    shown = str(path)
    try:
        descriptor = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{what} {shown} cannot be read: {exc.strerror or exc}.") from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise error(
                f"{what} {shown} is {kind}, not a regular file: save the content to a file "
                "and give its path."
            )
        if limit is not None and info.st_size > limit:
            raise error(too_big(what, shown, info.st_size, limit), limit=limit, actual=info.st_size)
        os.set_blocking(descriptor, True)
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    return handle, info.st_size


def too_big(what: str, shown: str, size: int | None, limit: int) -> str:
    """The sentence for a file over its limit (``size`` None: it grew while being read)."""
    weighs = f"weighs {_mb(size)}" if size is not None else "is larger than that"
    return f"{what} {shown} {weighs}; files above {_mb(limit)} are not read."


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.2f} MB ({size:,} bytes)"


def read_regular_file(path: str | Path, what: str, error: ErrorFactory, *, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never reads more than
    ``limit + 1`` bytes, even if the file grows after the size check."""
    handle, _size = open_regular_file(path, what, error, limit=limit)
    with handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{what} {path} cannot be read: {exc.strerror or exc}.") from exc
    if len(data) > limit:
        raise error(too_big(what, str(path), None, limit), limit=limit, actual=len(data))
    return data
