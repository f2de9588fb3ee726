"""The onboarding fast paths give exactly what the plain functions give (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from selfcare_ops.logins import make_login
from selfcare_ops.onboarding.apply import search_text
from selfcare_ops.users import derived_columns

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
def test_search_text_is_the_derived_column(first, last, login, email) -> None:
    expected = derived_columns(first, last, login, email)["search_text"]
    assert search_text(first, last, login, email) == expected


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
