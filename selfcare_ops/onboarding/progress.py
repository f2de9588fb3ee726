"""A progress bar for imports: a widget in JupyterLab, a text bar in a terminal (tqdm.auto)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from selfcare_ops.i18n import _


@contextmanager
def progress_bar(
    description: str, total: int | None = None, *, disable: bool | None = None
) -> Iterator[Callable[[int, int | None], None]]:
    """A ``progress(done, total)`` callback drawing a tqdm bar (off without a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit=" " + _("rows"), disable=disable, leave=False)

    def update(done: int, new_total: int | None = None) -> None:
        if new_total is not None and bar.total != new_total:
            bar.total = new_total
        bar.update(done - bar.n)
        bar.refresh()  # called per batch, not per row: always show the latest count

    try:
        yield update
    finally:
        bar.close()
