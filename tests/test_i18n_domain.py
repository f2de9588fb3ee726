"""One language at a time in the domain's words (issue 14, point 5): a CSV import with bad
lines (its output, its JSON and its report), the contrast warning, bulk invitation plans,
module changes, supervision banners and charts read entirely in French with
``SELFCARE_OPS_LANG=fr`` and entirely in English with ``en``; plurals for 0, 1 and 2.

Each language has marker words that would betray the other one in a text meant to be read in
one language only; the data of the file itself (its French column names, the names of people)
is taken out before the check.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfcare_ops import i18n
from selfcare_ops.accounts.supervision import SupervisionBanner
from selfcare_ops.branding.colors import parse_color, readability_warnings
from selfcare_ops.branding.values import remaining_label
from selfcare_ops.cli import main
from selfcare_ops.errors import ValidationError
from selfcare_ops.invitations import bulk
from selfcare_ops.onboarding.reasons import Reason
from selfcare_ops.store.models import utcnow

#: Words that must not appear in a text of the other language.
ENGLISH = ("line", "column", "rejected", "created", "missing", "report", "reason", "is not",
           "would", "rows", "outcome", "unchanged", "contrast", "colour", "invitation to send",
           "left out", "already", "no email")  # fmt: skip
FRENCH = ("ligne", "colonne", "rejet", "créé", "manquant", "rapport", "motif", "n'est pas",
          "simulation", "inchangé", "contraste", "couleur", "à envoyer", "écarté", "déjà",
          "aucune adresse")  # fmt: skip
OTHER = {"fr": ENGLISH, "en": FRENCH}
OWN = {"fr": FRENCH, "en": ENGLISH}

#: A file with two good lines and three bad ones (no email, a bad civility, a bad phone, a
#: missing first name, a duplicate).
BAD_LINES = (
    "Nom;Prénom;Adresse e-mail;Civilité;Téléphone\r\n"
    "Cli;Anne;anne.cli@virginie.example;Mme;\r\n"
    "Cli;Bruno;;M.;\r\n"
    "Cli;;pas-un-email;Docteur;12345\r\n"
    "Cli;Anne2;anne.cli@virginie.example;;\r\n"
)
#: What the file brings, not what the toolkit says: removed before looking for markers.
DATA = ("Adresse e-mail", "Prénom", "Civilité", "Téléphone", "pas-un-email", "Docteur")


@pytest.fixture
def language(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Choose the language as the README says (the environment), undone after the test."""

    def speak(code: str) -> None:
        monkeypatch.setenv("SELFCARE_OPS_LANG", code)
        i18n.set_language(None)

    yield speak
    i18n.set_language(None)


def words_of_the_other(text: str, lang: str) -> list[str]:
    for data in DATA:
        text = text.replace(data, "")
    lowered = text.lower()
    return [w for w in OTHER[lang] if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", lowered)]


def run(db_url: str, lang: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_LANG": lang}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_csv_import_with_bad_lines_reads_in_one_language(
    db_url, tree, tmp_path: Path, lang: str, language
) -> None:
    language(lang)
    source = tmp_path / "users.csv"
    source.write_bytes(BAD_LINES.encode("cp1252"))
    report = tmp_path / "r.csv"
    result = run(db_url, lang, "import", "users", str(source), "--client", "CA", "--dry-run",
                 "--report", str(report))  # fmt: skip
    assert result.exit_code == 1
    out = result.stdout.replace(str(report), "")
    assert not words_of_the_other(out, lang), out
    assert any(w in out.lower() for w in OWN[lang])
    text = report.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    assert len(rows) == 5  # the header and the four lines
    reasons = " ".join(" ".join(r) for r in rows)
    assert not words_of_the_other(reasons, lang), reasons
    header = rows[0]
    assert header[:4] == (
        ["Ligne", "Client", "Action", "Résultat"]
        if lang == "fr"
        else ["Line", "Client", "Action", "Outcome"]
    )
    code_column = header.index("Code du motif" if lang == "fr" else "Reason code")
    assert [r[code_column] for r in rows[1:]] == [
        "",
        "",
        "invalid_email | invalid_value | invalid_phone | missing_value",
        "duplicate_in_file",
    ]


def test_the_json_of_an_import_gives_stable_codes_and_translated_reasons(
    db_url, tree, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes(BAD_LINES.encode("cp1252"))
    seen = {}
    for lang in ("fr", "en"):
        result = run(db_url, lang, "import", "users", str(source), "--client", "CA",
                     "--dry-run", "--json")  # fmt: skip
        seen[lang] = json.loads(result.stdout)["rejects"]
    assert [r["reason_code"] for r in seen["fr"]] == [r["reason_code"] for r in seen["en"]]
    assert [r["line"] for r in seen["en"]] == [4, 5]
    assert seen["en"][1]["reason"].startswith("line 5, column 'Adresse e-mail': ")
    assert seen["fr"][1]["reason"].startswith("ligne 5, colonne 'Adresse e-mail'\u00a0: ")


def test_an_unknown_client_in_a_file_is_rejected_with_its_code(db_url, tree, tmp_path) -> None:
    source = tmp_path / "users.csv"
    source.write_text("Nom;Prénom;Client\r\nCli;Anne;C9999\r\n", encoding="utf-8")
    result = run(db_url, "fr", "import", "users", str(source), "--dry-run", "--json")
    (reject,) = json.loads(result.stdout)["rejects"]
    assert reject["reason_code"] == "unknown_client"
    assert "aucun client" in reject["reason"] and "'C9999'" in reject["reason"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_contrast_warning_reads_in_one_language(db_url, tree, lang: str, language) -> None:
    language(lang)
    (warning,) = readability_warnings("#ffffff", None, "#777777")
    assert warning.code == "low_contrast"
    assert not words_of_the_other(warning.message, lang), warning.message
    assert "4.47:1" in warning.message and "#767676" in warning.message
    result = run(db_url, lang, "branding", "set", "CA", "--primary", "white", "--text", "#777")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "#777777" in line]
    assert warned
    for line in warned:
        assert not words_of_the_other(line.split(":", 1)[1], lang), line
    with pytest.raises(ValidationError) as refused:
        parse_color("bleu", field="primary_color")
    assert not words_of_the_other(str(refused.value), lang), str(refused.value)


def test_the_same_warning_changes_language_with_the_setting(language) -> None:
    """Warnings are cached per colour combination: the sentence is made when it is read."""
    language("fr")
    (warning,) = readability_warnings("#ffffff", None, "#777777")
    assert warning.message.startswith("La couleur du texte #777777")
    language("en")
    (again,) = readability_warnings("#ffffff", None, "#777777")
    assert again.message.startswith("The text colour #777777")


@pytest.mark.parametrize(
    ("lang", "counts", "expected"),
    [
        ("fr", (0, 0), "0 invitation à envoyer (0 utilisateur écarté)"),
        ("fr", (1, 1), "1 invitation à envoyer (1 utilisateur écarté)"),
        ("fr", (2, 2), "2 invitations à envoyer (2 utilisateurs écartés)"),
        ("en", (0, 0), "0 invitations to send (0 users left out)"),
        ("en", (1, 1), "1 invitation to send (1 user left out)"),
        ("en", (2, 2), "2 invitations to send (2 users left out)"),
    ],
)
def test_plan_message_plurals(lang: str, counts: tuple[int, int], expected: str, language) -> None:
    import pandas as pd

    language(lang)
    to_send, left_out = counts
    frame = pd.DataFrame({"action": ["invite"] * to_send + ["skip"] * left_out})
    plan = bulk.BulkPlan(frame=frame, planned_at=utcnow())
    assert bulk.plan_message(plan) == expected


@pytest.mark.parametrize(
    ("lang", "days", "expected"),
    [
        ("fr", 1, "invité il y a moins de 1 jour"),
        ("fr", 3, "invité il y a moins de 3 jours"),
        ("en", 1, "invited less than 1 day ago"),
        ("en", 3, "invited less than 3 days ago"),
    ],
)
def test_bulk_reasons_are_words_with_stable_codes(lang, days, expected, language) -> None:
    language(lang)
    assert bulk.reason_text(bulk.REASON_RECENT, days) == expected
    assert bulk.reason_text(bulk.REASON_ACTIVE) == ("déjà actif" if lang == "fr" else
                                                    "already active")  # fmt: skip
    assert bulk.reason_text(bulk.REASON_NO_EMAIL) == (
        "pas d'adresse e-mail" if lang == "fr" else "no email"
    )


@pytest.mark.parametrize(
    ("lang", "left", "expected"),
    [
        ("fr", 0, "0 caractère restant"),
        ("fr", 1, "1 caractère restant"),
        ("fr", 2, "2 caractères restants"),
        ("fr", -1, "1 caractère en trop"),
        ("fr", -2, "2 caractères en trop"),
        ("en", 0, "0 characters left"),
        ("en", 1, "1 character left"),
        ("en", 2, "2 characters left"),
        ("en", -2, "2 characters too many"),
    ],
)
def test_message_counter_plurals(lang: str, left: int, expected: str, language) -> None:
    language(lang)
    assert remaining_label("x" * (150 - left)) == expected


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_supervision_banner_and_reasons_read_in_one_language(lang: str, language) -> None:
    language(lang)
    banner = SupervisionBanner(1, "Support Sewan", "Vérification des droits", utcnow())
    assert not words_of_the_other(banner.text.replace("Vérification des droits", ""), lang)
    assert ("Session supervisée par" if lang == "fr" else "Session supervised by") in banner.text
    reason = Reason("missing_value", "x")
    assert reason.code == "missing_value" and reason == "x"


def test_charts_titles_follow_the_language(tmp_path: Path, language) -> None:
    import pandas as pd

    from selfcare_ops import charts

    language("fr")
    assert charts.status_label("not_invited") == "non invité"
    language("en")
    assert charts.status_label("not_invited") == "not invited"
    path = charts.failed_mails_chart(pd.DataFrame(), tmp_path / "empty.png")
    assert path.exists()
