"""Dates as a person reads them in the current language: "9 décembre 2026", "December 9, 2026"."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from babel.dates import format_date, format_datetime

from selfcare_ops.i18n import current_language


def _known(moment: Any) -> bool:
    return moment is not None and moment == moment  # NaT is not equal to itself


def long_date(moment: Any) -> str:
    """The day of ``moment`` written out in the current language ("?" when unknown)."""
    if not _known(moment):
        return "?"
    day = moment.date() if isinstance(moment, datetime) else moment
    assert isinstance(day, date)
    return format_date(day, format="long", locale=current_language())


def long_date_time(moment: Any) -> str:
    """The day and minute of ``moment`` (UTC) in the current language: "9 décembre 2026 à 14:05".

    A naive datetime is read as UTC, as the toolkit stores them.
    """
    if not _known(moment):
        return "?"
    pattern = "d MMMM y 'à' HH:mm" if current_language() == "fr" else "MMMM d, y 'at' HH:mm"
    written = format_datetime(moment, pattern, tzinfo=UTC, locale=current_language())
    return f"{written} UTC"
