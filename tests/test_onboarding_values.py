"""The reader, the header map and the cell validators, without a database; property tests show no
input makes them raise anything but the toolkit's documented errors."""

from __future__ import annotations

import codecs
import io

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfcare_ops.errors import ImportFileError, SelfcareError
from selfcare_ops.onboarding import (
    build_plan,
    field_for,
    neutralise,
    read_rows,
    reading,
    sniff_separator,
)
from selfcare_ops.onboarding import values as v
from selfcare_ops.onboarding.headers import FIELDS, template_headers
from selfcare_ops.onboarding.normalise import NORMALISERS, normalise_row
from selfcare_ops.onboarding.reading import RawRow
from selfcare_ops.onboarding.template import template_text


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


LABELS = {name: labels[0] for name, labels in FIELDS.items()}


def consume(source) -> list[RawRow]:
    rows = list(source.rows)
    for row in rows:
        normalise_row(row, LABELS)
    return rows


# --- reader ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_read_or_refused_with_import_error(data: bytes) -> None:
    try:
        consume(read_rows(data))
    except ImportFileError as exc:
        assert str(exc).endswith(".")


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["", "oui", "x", "06 12 34 56 78", "a@b.fr", '"', "\r\n", ";", ","]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(CELL, min_size=0, max_size=8), max_size=8),
    sep=st.sampled_from([";", ",", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_table_reads_and_validates_without_crashing(rows, sep, encoding, newline) -> None:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator=newline)
    writer.writerow(["Nom", "Prénom", "Adresse e-mail", "Téléphone", "Gérer les droits", "Rôle"])
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding, errors="replace")
    try:
        parsed = consume(read_rows(data))
    except ImportFileError as exc:
        assert str(exc).endswith(".")
        return
    # An unquoted bare CR is a line break for the reader (old Mac files): each written row
    # yields at most one line per line-break character in its cells, plus one.
    breaks = sum(1 + sum(cell.count("\r") + cell.count("\n") for cell in row) for row in rows)
    assert len(parsed) <= breaks


def test_crlf_quotes_and_line_numbers() -> None:
    data = b'Nom;Pr\xe9nom;Fonction\r\n"A;B";"x\r\ny";z\r\n\r\nC;D;E\r\n'
    source = read_rows(data)
    rows = list(source.rows)
    assert source.encoding == "cp1252" and source.separator == ";"
    assert [r.line for r in rows] == [2, 5]
    assert rows[0].values == {"last_name": "A;B", "first_name": "x\r\ny", "function": "z"}
    assert rows[1].values == {"last_name": "C", "first_name": "D", "function": "E"}


def _mixed(main: str, odd: str, odd_lines: set[int]) -> bytes:
    """A French file whose lines ``odd_lines`` (2 is the first row) are in another encoding."""
    lines = [
        "Nom;Prénom;Fonction",
        "Martin;Hélène;Comptable",
        "Müller;François;Directeur",
        "Lefèvre;Chloé;Chargée",
        "Noël;Loïc;Technicien",
    ]
    return b"".join(
        f"{line}\r\n".encode(odd if number in odd_lines else main)
        for number, line in enumerate(lines, start=1)
    )


@pytest.mark.parametrize(
    ("main", "odd", "shown", "others"),
    [("cp1252", "utf-8", "UTF-8", "cp1252"), ("utf-8", "cp1252", "cp1252", "UTF-8")],
)
def test_mixed_encodings_name_the_odd_line_both_ways(main, odd, shown, others) -> None:
    source = read_rows(_mixed(main, odd, {4}))
    rows = list(source.rows)
    assert [r.values["last_name"] for r in rows] == ["Martin", "Müller", "Lefèvre", "Noël"]
    assert [r.values["first_name"] for r in rows] == ["Hélène", "François", "Chloé", "Loïc"]
    assert source.encoding == "mixed utf-8/cp1252"
    assert source.warnings == [
        f"The file mixes encodings: line 4 was read as {shown}, the others as {others}."
    ]
    assert [r.line for r in rows if r.note] == [4]
    assert rows[2].note.startswith(f"encoding: this line is {shown}, unlike the rest of the file")


def test_mixed_encodings_note_a_quoted_field_spanning_an_odd_line() -> None:
    data = (
        "Nom;Prénom;Fonction\r\n".encode("cp1252")
        + 'Lefèvre;Chloé;"Chargée\r\n'.encode("cp1252")
        + 'de clientèle"\r\n'.encode()
        + "Noël;Loïc;Technicien\r\n".encode("cp1252")
    )
    rows = list(read_rows(data).rows)
    assert rows[0].values["function"] == "Chargée\r\nde clientèle"
    assert rows[0].note is not None and rows[0].note.startswith("encoding: line 3 is UTF-8")
    assert rows[1].note is None


def test_clean_files_are_decoded_in_one_go(monkeypatch) -> None:
    """Only mixed files pay for the pass that finds the file's main encoding."""

    def refuse(binary):  # type: ignore[no-untyped-def]
        raise AssertionError("a clean file was read line by line")

    monkeypatch.setattr(reading, "_main_encoding", refuse)
    for data, encoding in (
        (_mixed("cp1252", "cp1252", set()), "cp1252"),
        (_mixed("utf-8", "utf-8", set()), "utf-8"),
        (codecs.BOM_UTF8 + _mixed("utf-8", "utf-8", set()), "utf-8-sig"),
    ):
        source = read_rows(data)
        assert [r.note for r in source.rows] == [None] * 4
        assert (source.encoding, source.warnings) == (encoding, [])


def test_separator_sniffing_ignores_quoted_separators() -> None:
    assert sniff_separator('"Nom, complet";Prénom;Email\n') == ";"
    assert sniff_separator("Nom,Prénom,Email\n") == ","
    assert sniff_separator("Nom\tPrénom\n") == "\t"
    assert sniff_separator("Nom\n") == ";"


def test_file_objects_and_missing_paths(tmp_path) -> None:
    source = read_rows(io.BytesIO(codecs.BOM_UTF8 + "Nom;Prénom\nA;B\n".encode()))
    assert source.encoding == "utf-8-sig"
    assert [r.values for r in source.rows] == [{"last_name": "A", "first_name": "B"}]
    text_source = read_rows(io.StringIO("Last name,First name\nA,B\n"))
    assert text_source.separator == ","
    with pytest.raises(ImportFileError, match="cannot be read"):
        read_rows(tmp_path / "missing.csv")
    with pytest.raises(ImportFileError, match="give a path"):
        read_rows(42)


# --- headers -----------------------------------------------------------------------------------


def _variants(label: str) -> list[str]:
    plain = label.translate(str.maketrans("éèêëàâîïôûüçÉ", "eeeeaaiiouucE"))
    return [label, label.upper(), label.lower(), f"  {label}  ", plain, plain.replace(" ", "_")]


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_header_aliases_any_case_accent_or_spacing(name: str) -> None:
    french, english, others = FIELDS[name]
    for label in (french, english, *others):
        for variant in _variants(label):
            assert field_for(variant) == name, variant


def test_issue_aliases() -> None:
    expected = {
        "Nom": "last_name",
        "Last name": "last_name",
        "Prénom": "first_name",
        "First name": "first_name",
        "Adresse e-mail": "email",
        "E-mail": "email",
        "Email": "email",
        "Mail": "email",
        "Téléphone": "phone",
        "Phone": "phone",
        "Mobile": "mobile",
        "Identifiant": "login",
        "Login": "login",
        "Civilité": "civility",
        "Title": "civility",
        "Fonction": "function",
        "Job title": "function",
        "Sous-compte": "sub_account",
        "Sub-account": "sub_account",
        "Rôle": "role",
        "Role": "role",
        "Langue": "language",
        "Language": "language",
        "Client": "client",
        "Référence client": "client",
        "Client ref": "client",
    }
    assert {header: field_for(header) for header in expected} == expected
    assert field_for("Commentaire") is None


def test_template_headers_read_back() -> None:
    for lang in ("fr", "en"):
        source = read_rows(template_text(lang).encode("utf-8-sig"))
        assert source.header.unknown == []
        assert set(source.header.labels) == set(FIELDS)
        assert template_headers(lang)[1] in ("Nom", "Last name")
    with pytest.raises(ImportFileError):
        template_headers("de")


# --- cells -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("oui", True),
        ("NON", False),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("Vrai", True),
        ("faux", False),
        ("TRUE", True),
        ("false", False),
        ("x", True),
        ("X", True),
        ("", False),
    ],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert v.boolean(raw) is expected


def test_vocabularies_french_and_english() -> None:
    assert {v.civility(x) for x in ("M.", "Monsieur", "mr", "M")} == {"M."}
    assert {v.civility(x) for x in ("Mme", "madame", "Mrs", "Ms", "Mlle")} == {"Mme"}
    assert v.role("Administrateur") == v.role("admin") == "administrator"
    assert v.role("Gestionnaire") == v.role("Gestionnaire client") == "administrator"
    assert {
        v.role(x)
        for x in (
            "Responsable de sous-compte",
            "manager",
            "Responsable",
            "gestionnaire de sous compte",
        )
    } == {"manager"}
    assert v.role("utilisateur") == v.role("User") == "user"
    assert v.language("Français") == v.language("french") == v.language("fr-FR") == "fr"
    assert v.language("Anglais") == v.language("English") == "en"
    for bad, func in (("Dr", v.civility), ("chef", v.role), ("de", v.language), ("?", v.boolean)):
        with pytest.raises(v.CellError):
            func(bad)


def test_emails_and_phones() -> None:
    assert v.email("Jean.Dupont@Example.COM") == "Jean.Dupont@example.com"
    assert v.email("mailto:a@b.fr") == "a@b.fr"
    assert v.email("élise@exemple.fr") == "élise@exemple.fr"
    for bad in ("a@@b.fr", "a@b", "a..b@c.fr", "a@localhost", "a@x.local", "@b.fr"):
        with pytest.raises(v.CellError):
            v.email(bad)
    assert v.phone("06 12 34 56 78") == "+33612345678"
    assert v.phone("+33 (0)1 23 45 67 89") == "+33123456789"
    assert v.phone("0033 1.23.45.67.89") == "+33123456789"
    assert v.phone("+44 20 7946 0958") == "+442079460958"
    assert v.phone("08 00 00 00 00") == "+33800000000"
    for bad in ("12345", "06 90 12 34 56", "not a phone", "+33 6"):
        with pytest.raises(v.CellError):
            v.phone(bad)


LOCAL = st.from_regex(r"[A-Za-z0-9._+\-]{1,20}", fullmatch=True)
DOMAIN = st.from_regex(r"[a-z0-9\-]{1,12}(\.[a-z0-9\-]{1,8}){1,2}", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(local=LOCAL, domain=DOMAIN)
def test_email_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got = v.email(address)
    except v.CellError:
        got = None
    assert got == expected


@settings(max_examples=600, deadline=None)
@given(
    national=st.from_regex(r"[1-9][0-9]{8}", fullmatch=True),
    style=st.sampled_from(["0{}", "+33{}", "0033{}", "+33 {}", "0{} "]),
)
def test_phone_fast_path_agrees_with_phonenumbers(national: str, style: str) -> None:
    number = phonenumbers.parse(f"+33{national}", None)
    expected = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number)
        else None
    )
    spaced = " ".join(national[i : i + 2] for i in range(1, 9, 2))
    raw = style.format(national if "{} " not in style else f"{national[0]} {spaced}")
    try:
        got = v.phone(raw)
    except v.CellError:
        got = None
    assert got == expected


TEXT = st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(NORMALISERS)), raw=TEXT)
def test_normalisers_raise_only_cell_errors(name: str, raw: str) -> None:
    try:
        NORMALISERS[name](raw)
    except v.CellError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(cells=st.dictionaries(st.sampled_from(sorted(FIELDS)), TEXT), line=st.integers(2, 10**6))
def test_every_problem_names_line_and_column(cells, line: int) -> None:
    values, problems = normalise_row(RawRow(line, cells), LABELS)
    for problem in problems:
        assert problem.startswith(f"line {line}, column '")
    if not problems:
        assert values["last_name"] and values["first_name"]


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_neutralise_never_leaves_a_formula(text: str) -> None:
    out = neutralise(text)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    if not text.startswith(("=", "+", "-", "@", "\t", "\r")):
        assert out == text
    else:
        assert out == "'" + text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(st.lists(CELL, min_size=2, max_size=6), max_size=6))
def test_planning_any_table_raises_only_toolkit_errors(session_factory, tree, rows) -> None:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["Nom", "Prénom", "Email", "Sous-compte", "Rôle", "Identifiant"])
    writer.writerows(rows)
    with session_factory() as session:
        try:
            plan = build_plan(
                session, tree.manager_siege, buffer.getvalue().encode(), client_ref="CA"
            )
        except SelfcareError:
            return
    assert set(plan.frame["action"]) <= {"create", "update", "unchanged", "reject"}
    rejected = plan.frame[plan.frame["action"] == "reject"]
    assert all(str(reason).startswith("line ") for reason in rejected["reason"])


def test_progress_bar_draws_in_a_terminal(capsys) -> None:
    from selfcare_ops.onboarding import progress_bar

    with progress_bar("Import", total=4, disable=False) as progress:
        progress(2, 4)
        progress(4, 4)
    assert "4/4" in capsys.readouterr().err
