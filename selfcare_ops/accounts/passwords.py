"""Password policy and hashing for the accounts created through an invitation.

The policy follows current advice (length first, no composition puzzle) with a few cheap
guards against the obvious: a password of at least 12 characters, not the login or the email,
not a single character class, not one repeated character, not a well-known password. Hashes
are argon2id (argon2-cffi's defaults).
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _

MIN_LENGTH = 12
MAX_LENGTH = 128
_COMMON = frozenset(
    {
        "motdepasse123",
        "motdepasse1234",
        "password1234",
        "password12345",
        "azertyuiop123",
        "azertyuiop1234",
        "qwertyuiop123",
        "123456789abc",
        "abc123456789",
        "bonjour123456",
        "soleil123456",
        "selfcare1234",
        "changeme1234",
        "administrateur",
        "administrator",
    }
)
_hasher = PasswordHasher()


def _classes(password: str) -> set[str]:
    found = set()
    for ch in password:
        if ch.isdigit():
            found.add("digit")
        elif ch.isalpha():
            found.add("upper" if ch.isupper() else "lower")
        else:
            found.add("other")
    return found


def password_problems(
    password: str, *, login: str | None = None, email: str | None = None
) -> list[str]:
    """Every rule the password breaks, each as a sentence; empty when it is acceptable."""
    problems: list[str] = []
    password = unicodedata.normalize("NFC", password)
    if len(password) < MIN_LENGTH:
        problems.append(
            _("The password must have at least {limit} characters; it has {count}.").format(
                limit=MIN_LENGTH, count=len(password)
            )
        )
    if len(password) > MAX_LENGTH:
        problems.append(
            _("The password must have at most {limit} characters; it has {count}.").format(
                limit=MAX_LENGTH, count=len(password)
            )
        )
    if password and password.strip() != password:
        problems.append(_("The password must not start or end with a space."))
    lowered = password.lower()
    contains = {
        "login": _("The password must not be or contain your login."),
        "email address": _("The password must not be or contain your email address."),
    }
    for label, value in (("login", login), ("email address", email)):
        if not value:
            continue
        value = value.lower()
        local = value.split("@", 1)[0]
        if lowered in (value, local) or (len(local) >= 4 and local in lowered):
            problems.append(contains[label])
    if password and len(set(password)) == 1:
        problems.append(_("The password must not be one character repeated."))
    elif password and len(_classes(password)) == 1:
        problems.append(
            _(
                "The password must mix at least two kinds of characters "
                "(lower case, upper case, digits, symbols)."
            )
        )
    if lowered in _COMMON:
        problems.append(_("The password is too common: choose another one."))
    return problems


def check_password(password: str, *, login: str | None = None, email: str | None = None) -> None:
    """Raise :class:`ValidationError` listing every broken rule."""
    problems = password_problems(password, login=login, email=email)
    if problems:
        raise ValidationError(" ".join(problems), field="password", limit=MIN_LENGTH)


def hash_password(password: str) -> str:
    """An argon2id hash of the NFC form of the password."""
    return _hasher.hash(unicodedata.normalize("NFC", password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for a malformed hash)."""
    try:
        return _hasher.verify(password_hash, unicodedata.normalize("NFC", password))
    except (VerificationError, InvalidHashError):
        return False
