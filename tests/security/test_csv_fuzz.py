"""CSV onboarding fuzzed, with a fixed budget: whatever a customer's file holds, the import
answers with sentences, keeps the database consistent and writes a formula-safe report.

Files are built from the real vocabulary (French and English headers, roles, rights, the
``-`` that clears) mixed with hostile cells (formulas, quotes, separators, line breaks,
control characters, very long text) and written in the encodings customers use (UTF-8 with
or without BOM, cp1252, UTF-16) — sometimes broken on purpose. Each file is planned, applied
(with invitations, as a hostile manager would) and its report read back. Runs on SQLite and
PostgreSQL; the examples share one database, so later files update what earlier ones made.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, or_, select

from selfcare_ops.errors import SelfcareError
from selfcare_ops.onboarding import import_users
from selfcare_ops.store.models import ImportRun, Organisation, User, recount_users


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


#: Fixed budget per backend (a few seconds each): CI runs it on every change.
EXAMPLES = 200

#: Column names in each language, one per field (a file names each field once, or is refused).
FRENCH = [
    "Adresse e-mail", "Identifiant", "Rôle", "Sous-compte", "Civilité", "Téléphone", "Mobile",
    "Fonction", "Langue", "Passer des commandes", "Voir les factures", "Modifier des droits",
    "Colonne inconnue",
]  # fmt: skip
ENGLISH = ["Email", "Login", "Role", "Sub-account", "Phone", "Unknown"]
WORDS = [
    "Lefèvre", "Zoé", "Dupont", "Gestionnaire", "Manager", "Responsable de sous-compte",
    "Utilisateur", "Administrateur", "Siège", "Agence", "oui", "non", "-", "", "M.", "Mme",
    "fr", "en", "01 23 45 67 89", "06 12 34 56 78", "jean@virginie.example",
    "alice@virginie.example", "adupont@virginietelecom.sewan.eu", "=cmd|'/Ccalc'!A0",
    "+33 6", "@SUM(A1)", "-2+3", '"quoted; with sep"', "line\nbreak", "tab\there", "\x01\x1b[31m",
    "é" * 300, "🙂", "\ufeff", "Martin", "Petit", "Noé", "Inès",
]  # fmt: skip
#: Plausible values per column, so that many lines get through to the database.
GOOD = {
    "Nom": ["Martin", "Petit", "Lefèvre", "O'Brien", '=HYPERLINK("x")', "-Durand"],
    "Prénom": ["Noé", "Inès", "Zoé", "@Jean", "+Luc"],
    "Adresse e-mail": ["=cmd|'/Ccalc'!A0@evil.example", "-x@virginie.example", ""],
    "Identifiant": ["", "adupont@virginietelecom.sewan.eu", "new@virginietelecom.sewan.eu"],
    "Rôle": ["Utilisateur", "Manager", "Administrateur", "Gestionnaire", ""],
    "Sous-compte": ["Siège", "Agence", "", "-"],
    "Modifier des droits": ["oui", "non", "", "-"],
    "Passer des commandes": ["oui", "non", ""],
}
GOOD.update(
    {
        "Last name": GOOD["Nom"],
        "First name": GOOD["Prénom"],
        "Email": GOOD["Adresse e-mail"],
        "Login": GOOD["Identifiant"],
        "Role": ["User", "Manager", "Administrator", ""],
        "Sub-account": GOOD["Sous-compte"],
    }
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

cells = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(WORDS),
    st.text(max_size=40),
)


@st.composite
def customer_files(draw) -> bytes:
    """Mostly files an import can read (names present), with hostile cells; some broken."""
    french = draw(st.booleans())
    names = ["Nom", "Prénom"] if french else ["Last name", "First name"]
    required = draw(st.sampled_from([names, names, names, names[:1], []]))
    extra = draw(st.lists(st.sampled_from(FRENCH if french else ENGLISH), max_size=6, unique=True))
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # now and then a column named twice
        extra.append(draw(st.sampled_from(required + extra or names)))
    header = draw(st.permutations(required + extra)) if required or extra else ["Nom"]
    text = io.StringIO()
    writer = csv.writer(text, delimiter=draw(st.sampled_from([";", ";", ",", "\t"])))
    writer.writerow(header)
    width = len(header)
    for number in range(draw(st.integers(min_value=0, max_value=12))):
        row = [
            draw(st.sampled_from(GOOD[name]) | cells if name in GOOD else cells) for name in header
        ]
        row = [f"{cell}{number}" if cell.endswith("@evil.example") else cell for cell in row]
        size = draw(st.sampled_from([width, width, width, max(width - 1, 0), width + 1]))
        writer.writerow((row + [""])[:size])
    body = text.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "utf-16-le"]))
    data = body.encode(encoding, errors="replace")
    if draw(st.integers(min_value=0, max_value=4)) == 0 and len(data) > 4:  # a cut, stray bytes
        cut = draw(st.integers(min_value=1, max_value=len(data) - 1))
        data = data[:cut] + draw(st.binary(max_size=3)) + data[cut:]
    return data


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=customer_files(), invite=st.booleans(), who=st.sampled_from(["system", "manager"]))
def test_any_customer_file_gets_sentences_and_leaves_the_database_consistent(
    session_factory, tree, tmp_path: Path, data: bytes, invite: bool, who: str
) -> None:
    actor = tree.system if who == "system" else tree.manager_siege
    source = tmp_path / "drop.csv"
    source.write_bytes(data)
    report_path = tmp_path / "rapport.csv"
    try:
        report = import_users(
            session_factory,
            actor,
            source,
            client_ref="CA",
            invite=invite,
            report_path=report_path,
        )
    except SelfcareError as error:  # a refused file: one sentence naming what is wrong
        event(f"refused: {type(error).__name__}")
        message = str(error)
        assert message and "\n" not in message.strip() and "Traceback" not in message
        return
    # Rejected lines carry a reason; nothing else raised.
    frame = report.frame
    event(f"applied by {who}: created {'some' if report.counts.get('create') else 'none'}")
    rejected = frame[frame["outcome"] == "rejected"]
    assert rejected["reason"].fillna("").str.len().gt(0).all()
    # The report opens in a spreadsheet without running anything.
    written = report_path.read_text(encoding="utf-8-sig")
    for record in csv.reader(io.StringIO(written), delimiter=";"):
        for cell in record:
            assert not cell.startswith(FORMULA_START), cell
    with session_factory.begin() as session:
        # Per-client counts still agree with the users table (nothing half-written).
        assert recount_users(session.connection()) == {}
        # A manager's file never escapes their sub-account (nor makes an administrator).
        outside = session.scalar(
            select(func.count())
            .select_from(User)
            .join(ImportRun, ImportRun.id == User.import_run_id)
            .where(
                ImportRun.actor_label == tree.manager_siege.label,
                or_(
                    User.sub_account_id.is_distinct_from(tree.manager_siege.sub_account_id),
                    User.role == "administrator",
                ),
            )
        )
        assert outside == 0
        # The client keeps an active administrator, whatever the file said.
        admins = session.scalar(
            select(func.count())
            .select_from(User)
            .join(Organisation, Organisation.id == User.client_id)
            .where(Organisation.ref == "CA", User.role == "administrator", User.status == "active")
        )
        assert admins >= 1
        session.rollback()


def test_a_utf16_file_cut_in_the_middle_of_a_character_is_one_sentence(tmp_path: Path) -> None:
    """Found by the fuzzer: a BOM, then an odd number of bytes."""
    from selfcare_ops.errors import ImportFileError
    from selfcare_ops.onboarding.reading import read_rows

    source = tmp_path / "cut.csv"
    source.write_bytes(b"\xff\xfe" + "Nom;Prénom\r\nMartin;Zoé\r\n".encode("utf-16-le") + b"\x00")
    try:
        list(read_rows(source))
    except ImportFileError as error:
        assert "cannot be decoded at line 3" in str(error)
        assert "cut in the middle of a character" in str(error)
    else:
        raise AssertionError("a cut UTF-16 file was read without a word")
