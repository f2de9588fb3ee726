"""The command line speaks one language at a time (issue 14): the same commands run with
SELFCARE_OPS_LANG=fr and =en read wholly in that language, errors included, and counts take
the plural each language gives them (French puts 0 and 1 in the singular).

The marker words are words of the other language that a half-converted command would betray.
The bulk plan's reasons and its "N invitations à envoyer" line belong to the onboarding side
of the conversion: the invitation commands are checked here on their own lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from babel.dates import format_date
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops import i18n
from selfcare_ops.cli import common, main
from selfcare_ops.errors import NotFoundError, PageOutOfRangeError
from selfcare_ops.store.models import OutboundMessage, utcnow

JP = "jbubu@virginietelecom.sewan.eu"
ALICE = "adupont@virginietelecom.sewan.eu"
NBSP = "\u00a0"

#: Words that must not appear in the output of the other language.
ENGLISH_WORDS = [
    "Error",
    "No client",
    "is known",
    "users",
    "not invited",
    "deactivated",
    "first_name",
    "already active",
    "Left out",
    "Send",
    "Pass --yes",
    "invitations expired",
]
FRENCH_WORDS = [
    "Erreur",
    "introuvable",
    "utilisateur",
    "non invité",
    "désactivé",
    "prénom",
    "déjà actif",
    "Écartés",
    "Envoyer",
    "Ajoutez",
    "expirée",
]


@contextmanager
def i18n_language(language: str) -> Iterator[None]:
    """Speak ``language`` inside the block, then back to the environment's."""
    i18n.set_language(language)
    try:
        yield
    finally:
        i18n.set_language(None)


def run(db_url: str, language: str, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    env = {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_LANG": language}
    return CliRunner().invoke(main, list(args), env=env, input=input)


def betrayed(text: str, language: str) -> list[str]:
    """The other language's marker words found in ``text`` (whole words only)."""
    others = ENGLISH_WORDS if language == "fr" else FRENCH_WORDS
    return [w for w in others if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text)]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_an_unknown_client_is_refused_in_one_language(db_url, tree, language) -> None:
    result = run(db_url, language, "users", "list", "C9999")
    assert result.exit_code == 1
    expected = {
        "fr": f"Erreur{NBSP}: Le client «{NBSP}C9999{NBSP}» est introuvable.\n",
        "en": "Error: No client is known as 'C9999'.\n",
    }
    assert result.stderr == expected[language]
    assert not betrayed(result.output, language)


@pytest.mark.parametrize(
    ("posix", "expected"), [("fr_FR.UTF-8", "Erreur"), ("en_GB.UTF-8", "Error")]
)
def test_a_language_we_lack_is_one_sentence_in_the_fallback_language(db_url, posix, expected):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_LANG": "de", "LC_ALL": posix}
    result = CliRunner().invoke(main, ["users", "list", "C0001"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{expected}{NBSP if expected == 'Erreur' else ''}: ")
    assert "SELFCARE_OPS_LANG" in result.stderr and "'de'" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_listing_reads_in_one_language(db_url, tree, language) -> None:
    result = run(db_url, language, "users", "list", "CA")
    assert result.exit_code == 0, result.output
    if language == "fr":
        assert "prénom" in result.output and "non invité" in result.output
        assert "désactivé" in result.output and "6 utilisateurs" in result.output
    else:
        assert "first_name" in result.output and "not invited" in result.output
        assert "deactivated" in result.output and "6 users" in result.output
    assert not betrayed(result.output, language)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_refused_invitation_is_one_sentence_in_one_language(db_url, tree, language) -> None:
    result = run(db_url, language, "invite", "user", ALICE)
    assert result.exit_code == 1
    with i18n_language(language):
        today = format_date(utcnow().date(), "long", locale=language)
    expected = {
        "fr": f"Erreur{NBSP}: {ALICE} est déjà actif (depuis le {today}){NBSP}: il n'y a rien",
        "en": f"Error: {ALICE} is already active (since {today}): there is nothing",
    }
    assert result.stderr.startswith(expected[language])
    assert "Traceback" not in result.output and not betrayed(result.output, language)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_bulk_invitation_asks_in_one_language(db_url, tree, session_factory, language):
    """Without a terminal and without --yes the question is asked and refused, in words."""
    result = run(db_url, language, "invite", "client", "CA")
    assert result.exit_code == 2
    expected = {
        "fr": f"Envoyer 2 invitations{NBSP}? Ajoutez --yes pour confirmer sans terminal.",
        "en": "Send 2 invitations? Pass --yes to confirm without a terminal.",
    }
    assert expected[language] in result.stderr
    left_out = {"fr": f"Écartés{NBSP}: ", "en": "Left out: "}
    assert left_out[language] in result.stdout
    assert ("motif" if language == "fr" else "reason") in result.stdout
    assert not betrayed(result.stderr, language)  # the plan's reasons are the onboarding side's
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


@pytest.mark.parametrize(
    ("language", "answer", "sent"),
    [
        ("fr", "o\n", True),
        ("fr", "oui\n", True),
        ("fr", "non\n", False),
        ("en", "yes\n", True),
        ("en", "y\n", True),
        ("en", "\n", False),
        ("fr", "peut-être\nOui\n", True),
    ],
)
def test_the_question_takes_french_and_english_answers(
    db_url, tree, session_factory, monkeypatch, language, answer, sent
) -> None:
    monkeypatch.setattr(common, "_has_terminal", lambda: True)
    result = run(db_url, language, "invite", "client", "CA", input=answer)
    prompt = {"fr": f"Envoyer 2 invitations{NBSP}? [o/N]", "en": "Send 2 invitations? [y/N]"}
    assert prompt[language] in result.output
    with session_factory() as session:
        queued = session.scalar(select(func.count()).select_from(OutboundMessage))
    if sent:
        assert result.exit_code == 0, result.output
        assert queued == 2
        done = {"fr": "2 invitations envoyées.", "en": "2 invitations sent."}
        assert done[language] in result.output
    else:
        assert result.exit_code == 1 and queued == 0
        cancelled = {"fr": "Annulé", "en": "Cancelled"}
        assert cancelled[language] in result.output
    if "peut-être" in answer:  # neither yes nor no: asked again, in French
        assert "Répondez par oui ou par non" in result.output


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", ["0 invitation expirée.", "1 invitation expirée.", "2 invitations expirées."]),
        ("en", ["0 invitations expired.", "1 invitation expired.", "2 invitations expired."]),
    ],
)
def test_counts_take_each_language_plural_for_0_1_2(language, expected) -> None:
    with i18n_language(language):
        forms = [
            i18n.ngettext("{count} invitation expired.", "{count} invitations expired.", n).format(
                count=n
            )
            for n in (0, 1, 2)
        ]
        assert forms == expected
        one, two = str(PageOutOfRangeError(3, 1)), str(PageOutOfRangeError(3, 2))
    if language == "fr":
        assert one == two.replace("2", "1") == f"La page 3 n'existe pas{NBSP}: il y en a 1."
    else:
        assert one == "Page 3 does not exist: there is 1 page."
        assert two == "Page 3 does not exist: there are 2 pages."


def test_the_expiry_command_counts_in_french(db_url, tree) -> None:
    result = run(db_url, "fr", "invite", "expire")
    assert result.exit_code == 0 and result.output == "0 invitation expirée.\n"


@pytest.mark.parametrize(
    ("kind", "fr", "en"),
    [
        ("client", "Le client «{nb}X{nb}» est introuvable.", "No client is known as 'X'."),
        ("user", "L'utilisateur «{nb}X{nb}» est introuvable.", "No user is known as 'X'."),
        (
            "organisation",
            "L'organisation «{nb}X{nb}» est introuvable.",
            "No organisation is known as 'X'.",
        ),
    ],
)
def test_not_found_sentences_follow_the_gender_of_the_noun(kind, fr, en) -> None:
    with i18n_language("fr"):
        assert str(NotFoundError(kind, "X")) == fr.format(nb=NBSP)
    with i18n_language("en"):
        assert str(NotFoundError(kind, "X")) == en
        assert NotFoundError(kind, "X").kind == kind  # the code stays for programs


#: The functions that take what was attempted as an English phrase, and the argument's place.
ACTION_TAKERS = {
    "require_organisation": 2,
    "require_organisation_admin": 2,
    "require_user": 2,
    "require_operator": 1,
    "require_mail_delivery": 1,
    "require_rights_manager": 2,
    "require_client_administrator": 2,
    "get_visible_user": 3,
    "_visible_user": 3,
    "_locked_user": 3,
    "_changeable": 3,
    "_admin_target": 3,
    "_require_named_operator": 1,
    "admin_only": 2,
    "_client": 3,
}


def test_every_refusal_phrase_has_its_translation() -> None:
    """A service passing a phrase the table lacks would put English inside a French refusal."""
    import ast
    from pathlib import Path

    from selfcare_ops import access_words

    known = set(access_words._actions())
    missing = []
    for path in Path(i18n.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            place = ACTION_TAKERS.get(name or "")
            if place is None or len(node.args) <= place:
                continue
            phrase = node.args[place]
            if isinstance(phrase, ast.Constant) and isinstance(phrase.value, str):
                if phrase.value not in known:
                    missing.append(f"{path.name}: {phrase.value!r}")
    assert not missing, missing
