"""Selfcare logins: first-name initial + last name, folded, at the client's login domain.

``jbubu@virginietelecom.sewan.eu`` for Jean-Pierre Bubu. Collisions get a numeric suffix (2, 3,
...) before the ``@``; the same person gets the same login on a re-import because callers look
existing users up before asking for a new login.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container

from .textnorm import fold

_NOT_LOGIN = re.compile(r"[^a-z0-9]")


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
) -> str:
    """The first free login for this person: stem@domain, then stem2@domain, stem3@domain..."""
    is_taken = taken if callable(taken) else taken.__contains__
    stem = login_stem(first_name, last_name)
    suffix = f"@{domain.lower()}" if domain else ""
    number = 1
    while True:
        candidate = f"{stem}{number if number > 1 else ''}{suffix}"
        if not is_taken(candidate):
            return candidate
        number += 1
