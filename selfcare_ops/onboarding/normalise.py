"""One raw row to clean values plus the list of problems, each naming the line and the column.

Pure (no database): the same function serves the planner and the property tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from selfcare_ops.i18n import _
from selfcare_ops.onboarding import values as v
from selfcare_ops.onboarding.headers import FIELDS, REQUIRED_FIELDS, RIGHT_FIELDS
from selfcare_ops.onboarding.reading import RawRow
from selfcare_ops.onboarding.reasons import Reason, at_cell

_LOGIN = re.compile(r"[a-z0-9][a-z0-9._+\-]*(?:@[a-z0-9][a-z0-9.\-]*\.[a-z]{2,})?\Z")


def login(raw: str) -> str:
    """A login as given in a file: lower case, letters, digits, ``._+-`` and one ``@domain``."""
    value = raw.strip().lower()
    if len(value) > v.MAX_LENGTHS["login"]:
        raise v.CellError(
            _("the login is {length} characters long, at most {limit} are allowed").format(
                length=len(value), limit=v.MAX_LENGTHS["login"]
            ),
            "invalid_login",
        )
    if not _LOGIN.match(value):
        raise v.CellError(
            _(
                "{value} is not a valid login (letters, digits, '.', '_', '+', '-' and an "
                "optional @domain)"
            ).format(value=repr(raw.strip())),
            "invalid_login",
        )
    return value


def _text(field: str) -> Callable[[str], str]:
    def clean(raw: str) -> str:
        return v.text(raw, field)

    return clean


NORMALISERS: dict[str, Callable[[str], Any]] = {
    "civility": v.civility,
    "last_name": _text("last_name"),
    "first_name": _text("first_name"),
    "email": v.email,
    "phone": v.phone,
    "mobile": v.phone,
    "login": login,
    "function": _text("function"),
    "sub_account": _text("sub_account"),
    "role": v.role,
    "language": v.language,
    "services": _text("services"),
    "client": _text("client"),
    **dict.fromkeys(RIGHT_FIELDS, v.boolean),
}

#: Fields whose values repeat across a file (names, functions, vocabularies): each distinct
#: cell is cleaned once. Emails, phones and logins are nearly all distinct: not remembered.
_REPEATING = frozenset(NORMALISERS) - {"email", "phone", "mobile", "login"}
_MEMO_LIMIT = 50_000
_memo: dict[str, dict[str, Any]] = {name: {} for name in _REPEATING}


def _remember(memo: dict[str, Any], cell: str, value: Any) -> Any:
    """Keep ``value`` as the clean form of ``cell`` (the memo is emptied when full)."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[cell] = value
    return value


#: Fields a cell holding :data:`~.values.CLEAR_MARKER` empties on update (rights: turned off).
CLEARABLE = frozenset(
    {"civility", "email", "phone", "mobile", "function", "language", "services", "sub_account"}
)


def _not_clearable(name: str) -> str:
    """Why ``name`` cannot be cleared, in the current language."""
    if name == "last_name":
        return _("every user has a last name")
    if name == "first_name":
        return _("every user has a first name")
    if name == "login":
        return _("every user has a login")
    if name == "role":
        return _(
            "every user has a role (administrateur, responsable de sous-compte or utilisateur)"
        )
    return _("every user belongs to a client")


def _missing(name: str) -> str:
    """A required cell left empty, in the current language."""
    if name == "last_name":
        return _("the last name is missing")
    return _("the first name is missing")


def normalise_row(raw: RawRow, labels: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(clean values of the filled cells, problems).

    An empty cell is left out, so that an update keeps the stored value (a new user gets the
    default: no right, no phone...). A cell holding exactly ``-`` gives ``None`` (a right:
    ``False``): the import clears that field. The required fields cannot be cleared.
    """
    values: dict[str, Any] = {}
    errors: list[str] = []
    refused: set[str] = set()  # the fields already named by a problem
    if raw.problem:
        errors.append(
            raw.problem if isinstance(raw.problem, Reason) else Reason("bad_row", raw.problem)
        )
    memos = _memo
    for name, cell in raw.values.items():
        cell = cell.strip()
        if not cell:
            continue
        memo = memos.get(name)
        if memo is not None and cell in memo:  # the common case, without a call
            values[name] = memo[cell]
            continue
        if cell == v.CLEAR_MARKER:  # never remembered: only reached on a memo miss
            if name in RIGHT_FIELDS:
                values[name] = False
            elif name in CLEARABLE:
                values[name] = None
            else:
                refused.add(name)
                errors.append(
                    at_cell(
                        "cannot_clear",
                        raw.line,
                        labels[name],
                        _(
                            "'-' clears a value, but {why}; leave the cell empty to keep the "
                            "stored one"
                        ).format(why=_not_clearable(name)),
                    )
                )
            continue
        try:
            value = NORMALISERS[name](cell)
        except v.CellError as exc:  # not remembered: rare
            refused.add(name)
            errors.append(at_cell(exc.code, raw.line, labels[name], str(exc)))
            continue
        values[name] = value if memo is None else _remember(memo, cell, value)
    for name in REQUIRED_FIELDS:
        if not values.get(name) and name not in refused:
            errors.append(at_cell("missing_value", raw.line, labels[name], _missing(name)))
    return values, errors


__all__ = ["FIELDS", "NORMALISERS", "login", "normalise_row"]
