"""Phone numbers as stored: E.164 (``+33612345678``), national numbers read as French.

One normaliser for every writer of ``users.phone`` and ``users.mobile`` (profile, users edit,
users create), so that search and SMS see one form.
"""

from __future__ import annotations

import phonenumbers

from .errors import ValidationError

PHONE_REGION = "FR"
_MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


def normalise_phone(text: str, *, field_name: str = "phone", mobile: bool = False) -> str:
    """A phone number in E.164; national numbers are read as French.

    With ``mobile=True`` a fixed line is refused, since SMS notices go to this number.
    """
    raw = str(text).strip()
    try:
        number = phonenumbers.parse(raw, PHONE_REGION)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(
            f"The {field_name} number {raw!r} is not a phone number ({error}).",
            field=field_name,
            actual=raw,
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            f"The {field_name} number {raw!r} is not a valid number: write it like "
            "06 12 34 56 78 or +33 6 12 34 56 78.",
            field=field_name,
            actual=raw,
        )
    if mobile and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValidationError(
            f"The mobile number {raw!r} is not a mobile number (it cannot receive SMS); "
            "put it in the phone field instead.",
            field=field_name,
            actual=raw,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


__all__ = ["PHONE_REGION", "normalise_phone"]
