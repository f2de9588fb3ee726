"""The onboarding fast paths give exactly what the plain functions give (property tests)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from selfcare_ops.accounts.logins import make_login
from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.errors import ImportFileError
from selfcare_ops.mail.outbox import json_strings
from selfcare_ops.onboarding import reading
from selfcare_ops.support.textnorm import fold

NAME = st.text(max_size=12) | st.sampled_from(
    [
        "Σ",
        "ΟΔΟΣ",
        "ß",
        "¨",
        " ",
        "\u00a0",
        "ᴬ",
        "Éric",
        "ﬁ",
        "İ",
        "\u2003",
        "",
        "A\u0301",
        "Lefèvre",
    ]
)
ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=10)


@settings(max_examples=500, deadline=None)
@given(NAME, NAME, ASCII | NAME, st.none() | ASCII | NAME)
def test_derived_columns_fold_names_once_and_give_the_plain_fold(first, last, login, email):
    derived = derived_columns(first, last, login, email)
    assert derived["search_text"] == fold(f"{first} {last} {login} {email or ''}")[:700]
    assert derived["sort_name"] == fold(f"{last} {first}")[:210]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Jean", "Jacques", "Émilie", ""]),
            st.sampled_from(["Martin", "Mârtin", ""]),
        ),
        max_size=40,
    ),
    st.sets(
        st.sampled_from(["jmartin", "jmartin3", "emartin2", "martin", "jmartin@x.fr"]), max_size=4
    ),
    st.sampled_from([None, "x.fr", "X.FR"]),
)
def test_login_hints_give_the_same_logins(people, existing, domain) -> None:
    """With a taken set that only grows, hints change the work, never the logins."""
    plain, hinted = set(existing), set(existing)
    hints: dict[tuple[str, str], int] = {}
    for first, last in people:
        login = make_login(first, last, domain, plain)
        assert make_login(first, last, domain, hinted, hints=hints) == login
        plain.add(login)
        hinted.add(login)
    assert plain == hinted


def test_hints_skip_taken_numbers() -> None:
    taken = {"jmartin", "jmartin2"}
    hints: dict[tuple[str, str], int] = {}
    assert make_login("Jean", "Martin", None, taken, hints=hints) == "jmartin3"
    assert hints == {("jmartin", ""): 3}
    taken.add("jmartin3")
    assert make_login("Jean", "Martin", None, taken, hints=hints) == "jmartin4"


# Bytes a customer file may hold: ASCII (separators, quotes, line breaks included), cp1252
# letters, the five bytes cp1252 leaves undefined, and UTF-8 sequences.
FILE_PIECES = st.sampled_from(
    [b"a", b"Z", b";", b",", b'"', b" ", b"\r\n", b"\n", b"\r", b"1"]
    + [bytes([code]) for code in (0xE9, 0xC9, 0x80, 0x9C, 0xA0, 0xFF, 0xC3, 0xA9, 0x81, 0x9D)]
    + ["é".encode(), "€".encode(), "Ö".encode()]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FILE_PIECES, max_size=60))
def test_single_byte_files_read_as_the_line_by_line_fallback(pieces) -> None:
    """Decoding a whole file as cp1252 gives the rows and label the per-line fallback gives."""
    data = b"Nom;Pr\xe9nom;Mail\r\n" + b"".join(pieces)

    def read(force_fallback: bool) -> tuple[list[tuple[int, dict[str, str], str | None]], str]:
        original = reading._detect

        def detect(head: bytes, blocks):  # type: ignore[no-untyped-def]
            encoding, digest, breaks = original(head, blocks)
            return ("fallback" if encoding == "cp1252" else encoding), digest, breaks

        reading._detect = detect if force_fallback else original
        try:
            source = reading.read_rows(data)
            rows = [(row.line, row.values, row.problem) for row in source]
            return rows, source.encoding
        except ImportFileError as error:
            return [(0, {"error": str(error)}, None)], ""
        finally:
            reading._detect = original

    assert read(force_fallback=False) == read(force_fallback=True)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=6))
def test_person_json_is_json_dumps(values) -> None:
    """The outbox's per-person values are written as json.dumps would write them."""
    assert json_strings(values) == json.dumps(values)
    assert json.loads(json_strings(values)) == values


def test_tokens_drawn_together_are_as_random_and_as_shaped_as_one_by_one() -> None:
    """A batch's tokens come from one read of the random source: each is still 256 bits in
    URL-safe base64 (43 characters, what new_token gives), all different; message-key
    suffixes are hex of the size asked."""
    import base64

    from selfcare_ops.support.tokens import new_token, new_tokens, random_hex

    tokens = new_tokens(2000)
    assert len(tokens) == 2000 and len(set(tokens)) == 2000
    single = new_token()
    assert {len(token) for token in tokens} == {len(single)} == {43}
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert set("".join(tokens)) <= alphabet
    assert {len(base64.urlsafe_b64decode(token + "=")) for token in tokens} == {32}
    keys = random_hex(500, 8)
    assert len(set(keys)) == 500 and all(len(key) == 16 and int(key, 16) >= 0 for key in keys)
    assert new_tokens(0) == [] and random_hex(0, 8) == []
