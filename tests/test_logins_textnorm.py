"""Folding and login generation, with property-based tests."""

import string

from hypothesis import given
from hypothesis import strategies as st

from selfcare_ops.accounts.logins import login_stem, make_login
from selfcare_ops.support.textnorm import fold, like_pattern


def test_fold_examples():
    assert fold("Virginie  Télécom") == "virginie telecom"
    assert fold("ŒUVRE Straße") == "oeuvre strasse"
    assert fold(None) == ""


def test_login_examples_from_the_seed():
    assert make_login("Jean-Pierre", "Bubu", "virginietelecom.sewan.eu", set()) == (
        "jbubu@virginietelecom.sewan.eu"
    )
    assert login_stem("Cédric", "D'Artagnan-Écu") == "cdartagnanecu"
    taken = {"jbubu@x.fr", "jbubu2@x.fr"}
    assert make_login("Jules", "Bubu", "x.fr", taken) == "jbubu3@x.fr"
    assert make_login("", "", None, set()) == "user"


def test_like_pattern_escapes_wildcards():
    assert like_pattern("50%_off") == "%50\\%\\_off%"


@given(st.text(max_size=40), st.text(max_size=40))
def test_logins_are_always_plain_ascii(first, last):
    login = make_login(first, last, "client.example", set())
    local = login.split("@")[0]
    assert local and set(local) <= set(string.ascii_lowercase + string.digits)
    assert login.endswith("@client.example")


@given(st.text(max_size=60))
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_path_matches_the_unicode_path(text):
    import re
    import unicodedata

    slow = "".join(
        c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)
    )
    assert fold(text) == re.sub(r"\s+", " ", slow).strip()


def test_fold_lowers_what_decomposition_reveals():
    assert fold("ᴬᴮ") == "ab"


def test_fold_treats_every_ascii_whitespace_as_a_space() -> None:
    """The ASCII fast path collapses and strips the same characters as the general path
    (tabs, line breaks, form feeds and the information separators 0x1C-0x1F)."""
    spaces = "".join(chr(code) for code in range(128) if chr(code).isspace())
    assert set(spaces) == set(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")
    for char in spaces:
        assert fold(f"{char}Jean{char}{char}MARTIN{char}") == "jean martin"
        assert fold(f"Jean{char}é") == fold("Jean é") == "jean e"  # the non-ASCII path agrees
