"""Output every command shares: a reader that went away (``| head -1``) ends it quietly.

Kept apart from :mod:`.common` (which needs pandas) so that the command group itself loads
nothing heavy: ``selfcare-ops --help`` only needs click.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

import click

#: Streams whose reader went away (``selfcare-ops users list C0001 | head -1``): written no more.
_closed_streams: set[str] = set()


def reset_output() -> None:
    """Forget closed streams (each invocation starts with open ones; tests run many in one
    process)."""
    _closed_streams.clear()


def _discard(stream_name: str) -> None:
    """Send what is left of a closed stream to the null device, so neither later writes nor
    the interpreter's final flush fail (Python would print "Exception ignored" at exit)."""
    _closed_streams.add(stream_name)
    stream = getattr(sys, stream_name)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (tests' captured output): the flag alone stops further writes


def echo(message: Any = None, *, nl: bool = True, err: bool = False) -> None:
    """``click.echo`` for every command: a closed output pipe ends the output quietly.

    A reader that stops early (``| head -1``) is not an error, and it must not interrupt work
    the command goes on doing (a confirmed send, a transaction about to commit): the remaining
    output is dropped and the command finishes with its own exit status.
    """
    stream_name = "stderr" if err else "stdout"
    if stream_name in _closed_streams:
        return
    try:
        click.echo(message, nl=nl, err=err)
    except BrokenPipeError:
        _discard(stream_name)


def terminal_columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` gives it (``COLUMNS``, else
    standard output's terminal, else 80), without importing :mod:`shutil` and the compression
    modules it loads: the help's formatter would, for the one number."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def discard_output() -> None:
    """Standard output is closed: write nothing more to it, quietly."""
    _discard("stdout")
