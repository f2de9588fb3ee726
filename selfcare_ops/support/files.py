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
from selfcare_ops.i18n import _, current_language

#: Builds the error raised with a sentence; ``limit`` and ``actual`` are given for sizes.
ErrorFactory = Callable[..., SelfcareError]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return _("a folder")
    if stat.S_ISFIFO(mode):
        return _("a pipe")
    if stat.S_ISSOCK(mode):
        return _("a socket")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _("a device")
    return _("a special file")


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
        raise error(
            _("{what} {path} cannot be read: {problem}.").format(
                what=what, path=shown, problem=exc.strerror or exc
            )
        ) from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise error(
                _(
                    "{what} {path} is {kind}, not a regular file: save the content to a file and "
                    "give its path."
                ).format(what=what, path=shown, kind=kind)
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
    if size is None:
        text = _("{what} {path} is larger than that; files above {limit} are not read.")
    else:
        text = _("{what} {path} weighs {size}; files above {limit} are not read.")
    return text.format(what=what, path=shown, size=size_text(size or 0), limit=size_text(limit))


def size_text(size: int) -> str:
    """'1.50 MB (1,572,864 bytes)' in the current language ('1,50 Mo (1 572 864 octets)')."""
    megabytes, count = f"{size / (1024 * 1024):.2f}", f"{size:,}"
    if current_language() == "fr":
        megabytes, count = megabytes.replace(".", ","), count.replace(",", "\u202f")
    return _("{megabytes} MB ({bytes} bytes)").format(megabytes=megabytes, bytes=count)


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
