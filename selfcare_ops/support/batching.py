"""Cutting work into pieces: the one :func:`chunks` every batch loop and ``IN (...)`` list uses.

Pieces keep statements within the databases' limits (SQLite allows 32,766 bound parameters
per statement) and transactions to a size that commits in reasonable time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (the last may be shorter); a list
    gives lists. Nothing for an empty sequence; a size below 1 is a programming error."""
    if size < 1:
        raise ValueError(f"chunks of {size} items cannot hold anything")
    for start in range(0, len(items), size):
        yield items[start : start + size]
