"""The import report as CSV: every input line with its outcome, safe to open in a spreadsheet.

Written for the people who read it, in the current language: the headers, the outcome, the
action, yes/no and the changed fields are words of the catalogs, while ``reason_code`` keeps
the stable code of each rejected line (see :mod:`.reasons`) for whoever filters the sheet.

``;`` and UTF-8 with BOM by default so French Excel opens it as columns with its accents;
cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return are prefixed with ``'``
so that no cell runs as a formula (CSV injection): the rows go through the toolkit's one
export writer (:mod:`selfcare_ops.support.exports`).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from selfcare_ops.errors import ImportFileError
from selfcare_ops.i18n import _, current_language
from selfcare_ops.onboarding.apply import REPORT_COLUMNS, ImportReport, planned_report_rows
from selfcare_ops.onboarding.headers import FIELDS
from selfcare_ops.onboarding.plan import Plan, frame_records
from selfcare_ops.support.exports import CsvWriter, neutralise

__all__ = ["ReportWriter", "neutralise", "report_frame", "report_headers", "write_report"]


def report_headers() -> list[str]:
    """The report's column headers in the current language (same order as REPORT_COLUMNS)."""
    headers = {
        "line": _("Line"),
        "client": _("Client"),
        "action": _("Action"),
        "outcome": _("Outcome"),
        "login": _("Login"),
        "last_name": _("Last name"),
        "first_name": _("First name"),
        "email": _("Email"),
        "changes": _("Changes"),
        "reason": _("Reason"),
        "reason_code": _("Reason code"),
        "invite": _("Invitation"),
        "notes": _("Notes"),
        "user_id": _("User id"),
    }
    return [headers[name] for name in REPORT_COLUMNS]


def _words() -> dict[str, str]:
    """The report's cell words (actions and outcomes are codes in the rows)."""
    return {
        "create": _("create"),
        "update": _("update"),
        "unchanged": _("unchanged"),
        "reject": _("reject"),
        "created": _("created"),
        "updated": _("updated"),
        "rejected": _("rejected"),
        "would be created": _("would be created"),
        "would be updated": _("would be updated"),
        "not applied": _("not applied"),
    }


_WORD_CELLS = (REPORT_COLUMNS.index("action"), REPORT_COLUMNS.index("outcome"))
_CHANGES = REPORT_COLUMNS.index("changes")
_INVITE = REPORT_COLUMNS.index("invite")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value


def _changes(changes: Any, language_column: int) -> str:
    """Changed fields (the plan's tuple of field names) named as the template names its
    columns in the current language."""
    if not isinstance(changes, (tuple, list)) or not changes:
        return ""
    return ", ".join(FIELDS[name][language_column] if name in FIELDS else name for name in changes)


def report_frame(report: ImportReport | Plan | pd.DataFrame) -> pd.DataFrame:
    """The report rows as a DataFrame, whatever was given (a plan reads as a dry run)."""
    if isinstance(report, ImportReport):
        return report.frame
    if isinstance(report, Plan):
        return pd.DataFrame(planned_report_rows(report.records()), columns=REPORT_COLUMNS)
    return report


class ReportWriter:
    """Writes report rows as they come (streaming imports), header first."""

    def __init__(self, path: str | Path, *, sep: str = ";", encoding: str = "utf-8-sig") -> None:
        if len(sep) != 1:
            raise ImportFileError(
                _("The report separator must be one character, not {separator}.").format(
                    separator=repr(sep)
                )
            )
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFileError(
                _("The report encoding {encoding} is not known.").format(encoding=repr(encoding))
            ) from None
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle: IO[str] = self.path.open(
                "w", encoding=encoding, errors="replace", newline=""
            )
        except OSError as exc:
            raise ImportFileError(
                _("The report {path} cannot be written: {problem}.").format(
                    path=self.path, problem=exc.strerror
                )
            ) from exc
        self._writer = CsvWriter(self._handle, report_headers(), sep=sep)
        self._words = _words()
        self._yes_no = {True: _("yes"), False: _("no")}
        self._language_column = 0 if current_language() == "fr" else 1

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._writer.write(self._cells(row) for row in rows)

    def _cells(self, row: dict[str, Any]) -> list[Any]:
        cells = [_cell(row.get(name)) for name in REPORT_COLUMNS]
        for index in _WORD_CELLS:
            cells[index] = self._words.get(cells[index], cells[index])
        cells[_CHANGES] = _changes(cells[_CHANGES], self._language_column)
        cells[_INVITE] = self._yes_no[bool(cells[_INVITE])]
        return cells

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_report(
    report: ImportReport | Plan | pd.DataFrame,
    path: str | Path,
    *,
    sep: str = ";",
    encoding: str = "utf-8-sig",
) -> Path:
    """Write the report CSV; returns its path."""
    frame = report_frame(report)
    records = frame_records(frame)
    with ReportWriter(path, sep=sep, encoding=encoding) as writer:
        writer.write(records)
    if isinstance(report, ImportReport):
        report.report_path = str(path)
    return Path(path)
