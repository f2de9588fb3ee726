"""Drive a dashboard grid the way the browser does: a click on a row sends its selection."""

from __future__ import annotations

from selfcare_ops.widgets.grid import PageGrid


def click_row(grid: PageGrid, key: str) -> None:
    """Click the row of ``key``: the front end sends the row as the grid's ``selections``."""
    row = grid.row_of(key)
    grid.grid.selections = [{"r1": row, "c1": 0, "r2": row, "c2": len(grid.columns) - 1}]


def keys(grid: PageGrid) -> list[str]:
    """The keys of the rows on show, top to bottom."""
    return [str(k) for k in grid.rows[grid.key]] if not grid.rows.empty else []


def shown(grid: PageGrid) -> str:
    """Every header and cell the grid sends to the browser, as one text to search."""
    data = grid.grid.data
    cells = [str(c) for c in data.columns]
    cells += [str(v) for v in data.to_numpy().ravel()]
    return " | ".join(cells)
