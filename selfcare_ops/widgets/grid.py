"""One page of a database list in a clickable data grid (ipydatagrid).

The grid only ever holds the page the database returned. Clicking a row (or moving to it with
the arrow keys) picks its key. A sort asked from a column header is not done on the visible
page: it is handed to ``on_sort``, which reads the list again from the database in that order,
and the grid's own transform is dropped, so the rows shown are always the database's order and
a row number always means the same row. Columns the database cannot sort, and the grid's own
filters (which would see one page only), are refused with a sentence.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import ipywidgets as widgets
import pandas as pd
from ipydatagrid import DataGrid

from selfcare_ops.i18n import _
from selfcare_ops.widgets.common import Feedback

ROW_HEIGHT = 24
#: Rows shown before the grid scrolls inside itself.
VISIBLE_ROWS = 12


def sort_value(code: str, descending: bool) -> str:
    """A sort as one value, the way the sort drop-downs hold it: "name" or "-name"."""
    return f"-{code}" if descending else code


def parse_sort(value: str) -> tuple[str, bool]:
    """ "-name" → ("name", True)."""
    return (value[1:], True) if value.startswith("-") else (value, False)


def sort_dropdown(options: list[tuple[str, str]]) -> widgets.Dropdown:
    """The "Sort by" choice beside a grid: the database sorts the whole list (see PageGrid)."""
    return widgets.Dropdown(
        options=options,
        value="name",
        description=_("Sort by"),
        style={"description_width": "initial"},
        layout=widgets.Layout(width="230px"),
    )


class PageGrid(widgets.VBox):
    """A grid of one page, whose row click picks the row's ``key``.

    ``columns`` maps the page's column codes to their headers (already in the language of the
    page); ``sortable`` lists the codes the database sorts by. ``on_pick(key | None)`` runs when
    the picked row changes, ``on_sort(code, descending)`` when a header asks for a sort.
    ``widths`` gives columns their width in pixels (the canvas cuts longer texts with "…").
    """

    def __init__(
        self,
        key: str,
        columns: Mapping[str, str],
        *,
        sortable: tuple[str, ...],
        on_pick: Callable[[str | None], None],
        on_sort: Callable[[str, bool], None],
        feedback: Feedback,
        empty: str,
        widths: Mapping[str, int] | None = None,
    ) -> None:
        self.key = key
        self.columns = dict(columns)
        self.sortable = sortable
        self.on_pick = on_pick
        self.on_sort = on_sort
        self.feedback = feedback
        self.empty_text = empty
        #: The picked row's key; it stays picked when it leaves the page (another page or sort).
        self.value: str | None = None
        self.rows = pd.DataFrame(columns=list(self.columns))
        self._quiet = False
        self.grid = DataGrid(
            self._frame(self.rows),
            selection_mode="row",
            header_visibility="column",
            base_row_size=ROW_HEIGHT,
            base_column_header_size=ROW_HEIGHT + 4,
            column_widths={self.columns[code]: px for code, px in (widths or {}).items()},
            layout=widgets.Layout(height=self._height(0), width="100%"),
        )
        self.grid.add_class("selfcare-grid")
        self.grid.observe(self._on_selections, names="selections")
        self.grid.observe(self._on_transforms, names="_transforms")
        self.empty = widgets.HTML("")
        super().__init__([self.grid, self.empty])

    # --- what the database returned ---------------------------------------------------------

    def _frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        frame = rows[list(self.columns)].rename(columns=self.columns).reset_index(drop=True)
        return frame.astype(object).where(frame.notna(), "")

    @staticmethod
    def _height(count: int) -> str:
        return f"{(min(max(count, 1), VISIBLE_ROWS) + 1) * ROW_HEIGHT + 12}px"

    def show(self, rows: pd.DataFrame) -> None:
        """Show one page (its rows in the database's order) and highlight the picked row."""
        self.rows = rows.reset_index(drop=True)
        self._quiet = True
        try:
            self.grid.selections = []
            self.grid.data = self._frame(self.rows)
            self.grid.layout.height = self._height(len(self.rows))
            self._highlight()
        finally:
            self._quiet = False
        self.empty.value = (
            f'<p class="selfcare-empty"><i>{html.escape(self.empty_text)}</i></p>'
            if self.rows.empty
            else ""
        )

    def _highlight(self) -> None:
        keys = list(self.rows[self.key]) if not self.rows.empty else []
        if self.value in keys:
            index = keys.index(self.value)
            self.grid.selections = [
                {"r1": index, "c1": 0, "r2": index, "c2": len(self.columns) - 1}
            ]
        else:
            self.grid.selections = []

    def row_of(self, key: str) -> int:
        """The row number of ``key`` on this page (what a click on it sends)."""
        return list(self.rows[self.key]).index(key)

    # --- picking ---------------------------------------------------------------------------

    def pick(self, key: str | None, *, notify: bool = True) -> None:
        """Pick ``key`` as a click on its row would (it may lie on another page)."""
        changed = key != self.value
        self.value = key
        self._quiet = True
        try:
            self._highlight()
        finally:
            self._quiet = False
        if notify and changed:
            self.on_pick(key)

    def _on_selections(self, change: dict) -> None:
        if self._quiet:
            return
        selections = change["new"]
        if not selections:
            return  # a click outside the rows keeps the picked row, as a list box does
        row = int(selections[-1]["r1"])
        if 0 <= row < len(self.rows):
            key = str(self.rows.iloc[row][self.key])
            if key != self.value:
                self.value = key
                self.on_pick(key)

    # --- sorting ---------------------------------------------------------------------------

    def _on_transforms(self, change: dict) -> None:
        transforms = change["new"]
        if self._quiet or not transforms:
            return
        headers = {header: code for code, header in self.columns.items()}
        self._quiet = True
        try:
            self.grid._transforms = []  # the page keeps the database's order
        finally:
            self._quiet = False
        sorts = [t for t in transforms if t.get("type") == "sort"]
        if len(sorts) < len(transforms):
            self.feedback.error(
                _(
                    "The grid does not filter: it holds one page only. Use the search and "
                    "the filters above it, which look through the whole list."
                )
            )
            return
        code = headers.get(sorts[-1].get("column", ""))
        if code not in self.sortable:
            self.feedback.error(
                _("This column is not sorted; the whole list sorts by: {columns}.").format(
                    columns=", ".join(self.columns[c] for c in self.sortable)
                )
            )
            return
        self.on_sort(code, bool(sorts[-1].get("desc", False)))

    def click_header_sort(self, code: str, descending: bool = False) -> None:
        """What the header's sort menu sends for column ``code`` (tests and scripts)."""
        self.grid._transforms = [{"type": "sort", "column": self.columns[code], "desc": descending}]
