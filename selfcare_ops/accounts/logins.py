"""Selfcare logins: first-name initial + last name, folded, at the client's login domain.

``jbubu@virginietelecom.sewan.eu`` for Jean-Pierre Bubu. Collisions get a numeric suffix (2, 3,
...) before the ``@``; the same person gets the same login on a re-import because callers look
existing users up before asking for a new login.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from functools import lru_cache

from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.support.textnorm import fold

_NOT_LOGIN = re.compile(r"[^a-z0-9]")
#: A login typed by a person: lower case letters, digits, ``._+-`` and an optional ``@domain``.
LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+\-]*(?:@[a-z0-9][a-z0-9.\-]*\.[a-z]{2,})?\Z")
MAX_LOGIN_LENGTH = 254


def clean_login(raw: str) -> str:
    """A login given by a person (``users create --login``, ``users edit --login``), checked
    and lower-cased; one sentence when it cannot be one."""
    value = (raw or "").strip().lower()
    if len(value) > MAX_LOGIN_LENGTH:
        raise ValidationError(
            _("A login has at most {limit} characters; this one has {count}.").format(
                limit=MAX_LOGIN_LENGTH, count=len(value)
            ),
            field="login",
            limit=MAX_LOGIN_LENGTH,
            actual=len(value),
        )
    if not LOGIN_PATTERN.match(value):
        raise ValidationError(
            _(
                "'{login}' is not a valid login: use letters, digits, '.', '_', '+', '-' and an "
                "optional @domain, like jbubu@virginietelecom.sewan.eu."
            ).format(login=raw.strip()),
            field="login",
            actual=raw,
        )
    return value


@lru_cache(maxsize=65536)  # imports repeat the same names thousands of times
def login_stem(first_name: str, last_name: str) -> str:
    """'Jean-Pierre', "D'Artagnan-Écu" -> 'jdartagnanecu' (never empty)."""
    first = _NOT_LOGIN.sub("", fold(first_name))
    last = _NOT_LOGIN.sub("", fold(last_name))
    stem = (first[:1] + last) or first or "user"
    return stem[:60]


def make_login(
    first_name: str,
    last_name: str,
    domain: str | None,
    taken: Container[str] | Callable[[str], bool],
    *,
    hints: dict[tuple[str, str], int] | None = None,
) -> str:
    """The first free login for this person: stem@domain, then stem2@domain, stem3@domain...

    ``hints`` (optional, kept by the caller between calls) remembers per stem the number last
    returned, so the 1,000th Jean Martin of an import does not try jmartin..jmartin999 again.
    Only pass it with a ``taken`` that never frees a login (a set that only grows): every
    number below the hint was taken when tried, so it still is and the result is the same.
    """
    is_taken = taken if callable(taken) else taken.__contains__
    stem = login_stem(first_name, last_name)
    suffix = f"@{domain.lower()}" if domain else ""
    key = (stem, suffix)
    number = hints.get(key, 1) if hints is not None else 1
    while True:
        candidate = f"{stem}{number if number > 1 else ''}{suffix}"
        if not is_taken(candidate):
            if hints is not None:
                hints[key] = number
            return candidate
        number += 1
