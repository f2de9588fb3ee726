"""Phone numbers as stored: E.164 (``+33612345678``), national numbers read as French.

The one normaliser for every writer of ``users.phone`` and ``users.mobile``: profile,
``users create|edit``, the invitee's acceptance page and CSV onboarding (which words its own
refusal from :class:`~selfcare_ops.errors.PhoneNumberError`), so that search and SMS see one
form. Common French shapes take a cheap exact path (an import has 100,000 of them); everything
else goes through phonenumbers (a property test checks that both agree).
"""

from __future__ import annotations

import re

import phonenumbers

from selfcare_ops.errors import PhoneNumberError

PHONE_REGION = "FR"
_MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)
_EXAMPLE = "write it like 06 12 34 56 78 or +33 6 12 34 56 78"
_PUNCTUATION = re.compile(r"[\s.\-/()\u00a0]")
#: The same characters for ASCII text (``\s`` there: space, \t\n\r\f\v and \x1c-\x1f),
#: deleted by ``str.translate``, several times cheaper than the regular expression.
_ASCII_PUNCTUATION = dict.fromkeys(map(ord, " \t\n\r\f\v\x1c\x1d\x1e\x1f.-/()"))
_FRENCH_NATIONAL = re.compile(r"(?:\+33|0033|0)([1-9]\d{8})\Z")
_FRENCH_PREFIXES: dict[str, bool] = {}


def _french_prefix_valid(prefix: str) -> bool:
    """Validity of French numbers starting with these 3 digits (not 8: see :func:`_fast`).

    phonenumbers' French patterns for geographic (1-5, 9) and mobile (6, 7) numbers decide on
    the first three digits of the 9-digit national number, so one full check per prefix (at
    most 800) covers them all; the tests compare this against the full check.
    """
    valid = _FRENCH_PREFIXES.get(prefix)
    if valid is None:
        number = phonenumbers.parse(f"+33{prefix}000000", None)
        valid = _FRENCH_PREFIXES[prefix] = phonenumbers.is_valid_number(number)
    return valid


def _fast(raw: str) -> str | None:
    """E.164 of a common French shape, ``""`` for an invalid one, None when unsure."""
    bare = raw.translate(_ASCII_PUNCTUATION) if raw.isascii() else _PUNCTUATION.sub("", raw)
    match = _FRENCH_NATIONAL.match(bare)
    if match is None or match.group(1)[0] == "8":  # 08 numbers have finer rules: full check
        return None
    national = match.group(1)
    return f"+33{national}" if _french_prefix_valid(national[:3]) else ""


def normalise_phone(text: str, *, field_name: str = "phone", mobile: bool = False) -> str:
    """A phone number in E.164; national numbers are read as French.

    With ``mobile=True`` a fixed line is refused, since SMS notices go to this number.
    Raises :class:`~selfcare_ops.errors.PhoneNumberError`: ``readable`` is false when the text
    is not a phone number at all, true when it is one that does not exist.
    """
    raw = str(text).strip()
    fast = None if mobile else _fast(raw)
    if fast:
        return fast
    try:
        number = phonenumbers.parse(raw, PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise PhoneNumberError(
            f"The {field_name} number {raw!r} cannot be read: {_EXAMPLE}.",
            field=field_name,
            actual=raw,
            readable=False,
        ) from error
    if fast == "" or not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(
            f"The {field_name} number {raw!r} is not a valid number: {_EXAMPLE}.",
            field=field_name,
            actual=raw,
            readable=True,
        )
    if mobile and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise PhoneNumberError(
            f"The mobile number {raw!r} is not a mobile number (it cannot receive SMS); "
            "put it in the phone field instead.",
            field=field_name,
            actual=raw,
            readable=True,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


__all__ = ["PHONE_REGION", "normalise_phone"]
