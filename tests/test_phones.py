"""One phone normaliser (``selfcare_ops.support.phones``) behind the profile, ``users create|edit``,
the invitee's acceptance and CSV onboarding: same stored form, each caller's refusal kept."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfcare_ops.accounts import profile
from selfcare_ops.errors import PhoneNumberError, ValidationError
from selfcare_ops.invitations import acceptance
from selfcare_ops.onboarding import values
from selfcare_ops.support.phones import normalise_phone


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


SAMPLES = [
    ("06 12 34 56 78", "+33612345678"),
    ("+33 (0)1 23 45 67 89", "+33123456789"),
    ("0033 1.23.45.67.89", "+33123456789"),
    ("01-23-45-67-89", "+33123456789"),
    ("08 00 00 00 00", "+33800000000"),
    ("+44 20 7946 0958", "+442079460958"),
    ("  07 56 00 00 01 ", "+33756000001"),
]


@pytest.mark.parametrize(("raw", "expected"), SAMPLES)
def test_every_caller_stores_the_same_form(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected
    assert acceptance.normalise_phone(raw) == expected
    assert profile.normalise_phone(raw) == expected
    assert values.phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "readable", "sentence", "cell"),
    [
        ("pas un numéro", False, "cannot be read", "'pas un numéro' is not a phone number"),
        ("12", True, "is not a valid number", "'12' is not a valid phone number"),
        ("06 90 12 34 56", True, "is not a valid number", "is not a valid phone number"),
    ],
)
def test_each_caller_keeps_its_refusal(raw: str, readable: bool, sentence: str, cell: str) -> None:
    with pytest.raises(PhoneNumberError) as caught:
        normalise_phone(raw)
    assert caught.value.readable is readable and caught.value.field == "phone"
    assert sentence in str(caught.value) and "06 12 34 56 78" in str(caught.value)
    with pytest.raises(ValidationError, match=sentence):  # the acceptance page's sentence
        acceptance.normalise_phone(raw)
    with pytest.raises(values.CellError, match=cell):  # a CSV cell's reason, line added later
        values.phone(raw)


def test_a_mobile_is_checked_in_full() -> None:
    assert normalise_phone("07 56 00 00 01", field_name="mobile", mobile=True) == "+33756000001"
    with pytest.raises(PhoneNumberError, match="not a mobile number") as caught:
        normalise_phone("01 23 45 67 89", field_name="mobile", mobile=True)
    assert caught.value.field == "mobile"


@settings(max_examples=600, deadline=None)
@given(
    national=st.from_regex(r"[1-9][0-9]{8}", fullmatch=True),
    style=st.sampled_from(["0{}", "+33{}", "0033{}", "+33 {}", "0{} ", "0{}."]),
)
def test_the_fast_path_agrees_with_phonenumbers(national: str, style: str) -> None:
    number = phonenumbers.parse(f"+33{national}", None)
    expected = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number)
        else None
    )
    spaced = " ".join(national[i : i + 2] for i in range(1, 9, 2))
    raw = style.format(national if "{} " not in style else f"{national[0]} {spaced}")
    try:
        got = normalise_phone(raw)
    except PhoneNumberError:
        got = None
    assert got == expected


def test_the_ascii_shortcut_drops_exactly_what_the_expression_drops():
    """``_fast`` deletes separators with ``str.translate`` for ASCII text: the same set."""
    from selfcare_ops.support.phones import _ASCII_PUNCTUATION, _PUNCTUATION

    for code in range(128):
        char = chr(code)
        assert (char.translate(_ASCII_PUNCTUATION) == "") == bool(_PUNCTUATION.fullmatch(char))
