"""The words of the jobs' history lines: a run's status and its duration, in the current
language (the status stays a stable code in the database and in JSON)."""

from __future__ import annotations

from babel.numbers import format_decimal

from selfcare_ops.i18n import _, current_language


def run_status_words(status: str) -> str:
    """'succeeded', 'réussi': a run's status code as a word."""
    words = {
        "running": _("running"),
        "succeeded": _("succeeded"),
        "failed": _("failed"),
    }
    return words.get(status, status)


def seconds(duration: float) -> str:
    """A duration in seconds with one decimal, written the current language's way (2,5)."""
    return format_decimal(round(duration, 1), format="0.0", locale=current_language())
