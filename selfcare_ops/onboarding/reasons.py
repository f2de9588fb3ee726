"""Why a CSV line is rejected: a sentence for people and a stable code for programs.

A :class:`Reason` is the translated sentence itself (a ``str``, so the planner joins, tests
and reports read it as before) that also carries its ``code``. The report and the JSON give
both: ``reason`` in the analyst's language, ``reason_code`` that never changes with it.

Codes: ``bad_row`` (the CSV line itself: an unclosed quote, extra cells), ``invalid_value``
(a cell that cannot be read: civility, role, language, yes/no, length), ``invalid_email``,
``invalid_phone``, ``invalid_login``, ``cannot_clear``, ``missing_value``, ``missing_client``,
``unknown_client``, ``out_of_scope``, ``ambiguous_role``, ``duplicate_in_file``,
``email_taken``, ``other_client``, ``another_person``, ``unknown_sub_account``,
``not_allowed`` (the actor may not grant that role, sub-account or right) and
``last_administrator``.
"""

from __future__ import annotations

from collections.abc import Iterable

from selfcare_ops.i18n import _

#: The code of a sentence made before codes existed (never expected: every site gives one).
UNCODED = "invalid_row"


class Reason(str):
    """A reject sentence in the current language, with its stable :attr:`code`."""

    code: str

    def __new__(cls, code: str, text: str) -> Reason:
        made = super().__new__(cls, text)
        made.code = code
        return made


def at_cell(code: str, line: int, column: str, problem: str) -> Reason:
    """``problem`` located at ``line`` and ``column`` (the column as the file names it)."""
    return Reason(
        code,
        _("line {line}, column {column}: {problem}").format(
            line=line, column=repr(column), problem=problem
        ),
    )


def at_line(code: str, line: int, problem: str) -> Reason:
    """``problem`` located at ``line``."""
    return Reason(code, _("line {line}: {problem}").format(line=line, problem=problem))


def code_of(reason: str) -> str:
    return getattr(reason, "code", UNCODED)


def codes(reasons: Iterable[str]) -> str:
    """The codes of ``reasons`` in their order, joined as the sentences are (`` | ``)."""
    return " | ".join(code_of(reason) for reason in reasons)
