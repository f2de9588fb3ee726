"""Pause Python's cyclic garbage collector around bulk work that builds many objects.

A 100,000-line import builds a few hundred thousand dictionaries and strings that all live
until its batch is written. The collector, triggered by allocations, walks every one of them
again and again while none is garbage yet: measured with ``bench/onboarding.py``, that was a
seventh of the import's CPU. Reference counting still frees everything as usual; cycles made
meanwhile are collected once the collector is back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block (nested blocks and a caller's own pause kept)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
