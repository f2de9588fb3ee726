"""The import report as CSV: every input line with its outcome, safe to open in a spreadsheet.

``;`` and UTF-8 with BOM by default so French Excel opens it as columns with its accents;
cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return are prefixed with ``'``
so that no cell runs as a formula (CSV injection): the rows go through the toolkit's one
export writer (:mod:`selfcare_ops.exports`).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..errors import ImportFileError
from ..exports import CsvWriter, neutralise
from .apply import REPORT_COLUMNS, ImportReport, planned_report_rows
from .plan import Plan, frame_records

__all__ = ["ReportWriter", "neutralise", "report_frame", "write_report"]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


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
            raise ImportFileError(f"The report separator must be one character, not {sep!r}.")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportFileError(f"The report encoding {encoding!r} is not known.") from None
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle: IO[str] = self.path.open(
                "w", encoding=encoding, errors="replace", newline=""
            )
        except OSError as exc:
            raise ImportFileError(
                f"The report {self.path} cannot be written: {exc.strerror}."
            ) from exc
        self._writer = CsvWriter(self._handle, REPORT_COLUMNS, sep=sep)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        self._writer.write([_cell(row.get(name)) for name in REPORT_COLUMNS] for row in rows)

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
