"""The one CSV writer for everything a person downloads or exports (CLI, jobs, dashboards).

Files open as is in French Excel: ``;`` and UTF-8 with a BOM by default. Every text cell and
header starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a ``'`` in
front, so that no cell runs as a formula (CSV injection): an email such as
``=cmd|'/Ccalc'!A0@evil.example`` is a valid address that users and imports accept, so the
guard belongs where the file is written, not where the value comes in. Whole frames go through
:func:`write_csv` / :func:`csv_bytes`; streamed rows (imports of millions of lines) through
:class:`CsvWriter`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

#: What a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with a quote; others as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and headers are neutralised (numbers untouched:
    ``-3`` stays a number)."""
    safe = frame.copy()
    types = pd.api.types
    for position in range(safe.shape[1]):
        values = safe.iloc[:, position]
        if not (types.is_numeric_dtype(values) or types.is_datetime64_any_dtype(values)):
            safe.isetitem(position, values.astype(object).map(neutralise))
    safe.columns = [neutralise(str(column)) for column in safe.columns]
    return safe


def _to_csv(frame: pd.DataFrame, target: str | Path | IO[str], sep: str) -> None:
    safe_frame(frame).to_csv(target, sep=sep, index=False, quoting=csv.QUOTE_MINIMAL)


def write_csv(
    frame: pd.DataFrame, path: str | Path, *, sep: str = ";", encoding: str = "utf-8-sig"
) -> Path:
    """Write ``frame`` to ``path`` (folders created), formulas neutralised; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding=encoding, newline="") as handle:
        _to_csv(frame, handle, sep)
    return target


def csv_bytes(frame: pd.DataFrame, *, sep: str = ";", encoding: str = "utf-8-sig") -> bytes:
    """``frame`` as the bytes of a CSV download (dashboards), formulas neutralised."""
    buffer = io.StringIO()
    _to_csv(frame, buffer, sep)
    return buffer.getvalue().encode(encoding)


class CsvWriter:
    """Rows written as they come, header first, every cell neutralised.

    ``handle`` is an open text file (``newline=""``); the caller owns it.
    """

    def __init__(self, handle: IO[str], header: Sequence[str], *, sep: str = ";") -> None:
        self._writer = csv.writer(handle, delimiter=sep, lineterminator="\r\n")
        self._writer.writerow([neutralise(name) for name in header])

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows([neutralise(cell) for cell in row] for row in rows)
