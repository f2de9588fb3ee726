"""The invitation form: every field checked, each refusal one sentence in the page's language.

The same rules as :func:`selfcare_ops.invitations.acceptance.accept` (which checks again before
writing): the page shows every problem at once, next to its field, and keeps what was typed
except the passwords.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from selfcare_ops.accounts.passwords import MAX_LENGTH, MIN_LENGTH, password_problems
from selfcare_ops.errors import PhoneNumberError, ValidationError
from selfcare_ops.invitations.acceptance import normalise_civility
from selfcare_ops.support.phones import normalise_phone

FIELDS = ("civility", "phone", "password", "confirmation")


@dataclass
class FormResult:
    """What was typed (passwords left out), the clean values and the errors by field."""

    values: dict[str, str]
    clean: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _password_sentence(problem: str, _: Callable[[str], str], length: int) -> str:
    """One rule broken, in the page's language (the rules' own sentences are English)."""
    if "at least" in problem and "characters" in problem:
        return _("At least {n} characters: this one has {actual}.").format(
            n=MIN_LENGTH, actual=length
        )
    if "at most" in problem:
        return _("At most {n} characters: this one has {actual}.").format(
            n=MAX_LENGTH, actual=length
        )
    if "space" in problem:
        return _("No space at the start or the end.")
    if "login" in problem:
        return _("It must not be or contain your login.")
    if "email" in problem:
        return _("It must not be or contain your email address.")
    if "repeated" in problem:
        return _("It must not be one character repeated.")
    if "mix" in problem:
        return _("Mix at least two kinds of characters (lower case, upper case, digits, symbols).")
    return _("This password is too common: choose another one.")


def check_form(
    form: Mapping[str, str],
    _: Callable[[str], str],
    *,
    login: str | None,
    email: str | None,
) -> FormResult:
    civility = (form.get("civility") or "").strip()
    phone = (form.get("phone") or "").strip()
    password = form.get("password") or ""
    confirmation = form.get("confirmation") or ""
    result = FormResult(values={"civility": civility, "phone": phone})
    if not civility:
        result.errors["civility"] = _("Choose your civility.")
    else:
        try:
            result.clean["civility"] = normalise_civility(civility)
            result.values["civility"] = result.clean["civility"]
        except ValidationError:
            result.errors["civility"] = _("Choose your civility.")
    if not phone:
        result.errors["phone"] = _("Give your phone number, for example 06 12 34 56 78.")
    else:
        try:
            result.clean["phone"] = normalise_phone(phone)
        except PhoneNumberError as error:
            result.errors["phone"] = (
                _("This number does not exist: write it like 06 12 34 56 78 or +33 6 12 34 56 78.")
                if error.readable
                else _("This is not a phone number: write it like 06 12 34 56 78.")
            )
    if not password:
        result.errors["password"] = _("Choose a password.")
    else:
        problems = password_problems(password, login=login, email=email)
        if problems:
            result.errors["password"] = " ".join(
                _password_sentence(p, _, len(password)) for p in problems
            )
        else:
            result.clean["password"] = password
    if not confirmation:
        result.errors["confirmation"] = _("Type the password again.")
    elif password and confirmation != password:
        result.errors["confirmation"] = _("The two passwords differ.")
    return result
