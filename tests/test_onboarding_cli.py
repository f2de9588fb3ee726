"""``selfcare-ops import users`` and ``import template`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops.cli import main
from selfcare_ops.store.models import OutboundMessage, User


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


GOOD = "Nom;Prénom;Adresse e-mail\r\nCli;Anne;anne.cli@virginie.example\r\nCli;Bruno;\r\n"
BAD = GOOD + "Cli;;pas-un-email\r\n"


def run(db_url: str, *args: str, actor: str | None = None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def write(tmp_path: Path, text: str, name: str = "users.csv", encoding: str = "cp1252") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def count_users(session_factory, last_name: str) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).where(User.last_name == last_name))


def test_import_json_then_reimport(db_url, session_factory, tree, tmp_path) -> None:
    source = write(tmp_path, GOOD)
    report = tmp_path / "report.csv"
    result = run(
        db_url,
        "import",
        "users",
        str(source),
        "--client",
        "CA",
        "--invite",
        "--json",
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("rows", "create", "update", "unchanged", "reject", "invite")} == {
        "rows": 2,
        "create": 2,
        "update": 0,
        "unchanged": 0,
        "reject": 0,
        "invite": 1,
    }
    assert data["report"] == str(report)
    assert report.read_bytes().startswith(b"\xef\xbb\xbfLine;Client;Action;Outcome")
    assert count_users(session_factory, "Cli") == 2
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 1

    again = json.loads(
        run(db_url, "import", "users", str(source), "--client", "CA", "--invite", "--json").stdout
    )
    assert (again["create"], again["unchanged"], again["invite"]) == (0, 2, 0)
    assert Path(again["report"]).exists()  # default report under the data directory


def test_rejected_rows_exit_1_and_report_written(db_url, session_factory, tree, tmp_path) -> None:
    source = write(tmp_path, BAD)
    report = tmp_path / "r.csv"
    result = run(
        db_url,
        "import",
        "users",
        str(source),
        "--client",
        "CA",
        "--report",
        str(report),
        "--sep",
        ",",
        "--encoding",
        "utf-8",
    )
    assert result.exit_code == 1
    assert "Rejected: line 4, column 'Adresse e-mail': 'pas-un-email'" in result.stdout
    assert "column 'Prénom': the first name is missing" in result.stdout
    assert "2 created" in result.stdout and "1 rejected" in result.stdout
    assert f"Report: {report}" in result.stdout
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Line,Client,Action,Outcome") and len(lines) == 4
    assert count_users(session_factory, "Cli") == 2


def test_dry_run_and_strict(db_url, session_factory, tree, tmp_path) -> None:
    source = write(tmp_path, BAD)
    dry = run(db_url, "import", "users", str(source), "--client", "CA", "--dry-run", "--json")
    assert dry.exit_code == 1
    assert json.loads(dry.stdout)["create"] == 2
    assert count_users(session_factory, "Cli") == 0
    strict = run(db_url, "import", "users", str(source), "--client", "CA", "--strict", "--json")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["create"] == 0
    assert count_users(session_factory, "Cli") == 0


def test_sub_accounts_and_scope_from_the_cli(db_url, session_factory, tree, tmp_path) -> None:
    source = write(tmp_path, "Nom;Prénom;Sous-compte\r\nCli;Anne;Agence\r\nCli;Bob;Siège\r\n")
    result = run(
        db_url,
        "import",
        "users",
        str(source),
        "--client",
        "CA",
        "--json",
        actor="marc@virginie.example",
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["create"], data["reject"]) == (1, 1)
    new = write(tmp_path, "Nom;Prénom;Sous-compte\r\nCli;Carl;Neuf\r\n", name="new.csv")
    created = run(db_url, "import", "users", str(new), "--client", "CA", "--create-sub-accounts")
    assert created.exit_code == 0, created.output


def test_errors_are_one_sentence(db_url, tree, tmp_path) -> None:
    source = write(tmp_path, GOOD)
    no_client = run(db_url, "import", "users", str(source))
    assert no_client.exit_code == 1
    assert no_client.stderr.startswith("Error: The file has no client column")
    outside = run(
        db_url, "import", "users", str(source), "--client", "CA", actor="admin@pb.example"
    )
    assert outside.exit_code == 1 and "outside their scope" in outside.stderr
    missing = run(db_url, "import", "users", str(tmp_path / "nope.csv"), "--client", "CA")
    assert missing.exit_code == 1 and "cannot be read" in missing.stderr
    empty = run(db_url, "import", "users", str(write(tmp_path, "", "e.csv")), "--client", "CA")
    assert empty.exit_code == 1 and "is empty" in empty.stderr
    assert "Traceback" not in no_client.output + outside.output + missing.output


def test_unknown_columns_and_warnings_are_shown(db_url, tree, tmp_path) -> None:
    source = tmp_path / "mixed.csv"
    source.write_bytes(
        "Nom;Prénom;Remarque\n".encode() + "Été;Anne;x\n".encode() + "Noël;Bob;y\n".encode("cp1252")
    )
    result = run(db_url, "import", "users", str(source), "--client", "CA")
    assert result.exit_code == 0
    assert "Columns not recognised (ignored): 'Remarque'." in result.stdout
    assert "Warning: The file mixes encodings: line 3 was read as cp1252" in result.stdout


def test_new_rejects_notes_and_warnings_are_shown(db_url, session_factory, tree, tmp_path) -> None:
    source = tmp_path / "corrections.csv"
    source.write_bytes(
        "Identifiant;Nom;Prénom;Adresse e-mail;Rôle\r\n".encode("cp1252")
        + "adupont;Dupont;Alice;alice.dupont@virginie.example;\r\n".encode("cp1252")
        + ";Lefèvre;Chloé;;\r\n".encode()
        + "jbubu;Martin;Paul;paul.martin@virginie.example;\r\n".encode("cp1252")
        + ";Noël;Loïc;;Responsable\r\n".encode("cp1252")
    )
    result = run(db_url, "import", "users", str(source), "--client", "CA")
    assert result.exit_code == 1
    out = result.stdout
    assert (
        "Warning: The file mixes encodings: line 3 was read as UTF-8, the others as cp1252." in out
    )
    assert "Rejected: line 4, column 'Identifiant': the login jbubu@" in out
    assert "Rejected: line 5, column 'Sous-compte': a manager (responsable de sous-compte)" in out
    assert "Note: line 3: encoding: this line is UTF-8" in out
    assert "4 rows: 1 created, 1 updated, 0 unchanged, 2 rejected, 0 invited." in out
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(User.last_name == "Lefèvre")) == 2


def test_template(tmp_path) -> None:
    runner = CliRunner()
    french = runner.invoke(main, ["import", "template"])
    assert french.exit_code == 0
    assert french.stdout.startswith("Civilité;Nom;Prénom;Adresse e-mail;Téléphone")
    english = runner.invoke(main, ["import", "template", "--lang", "en"])
    assert english.stdout.startswith("Title,Last name,First name,Email,Phone")
    out = tmp_path / "t" / "template.csv"
    written = runner.invoke(main, ["import", "template", "--out", str(out)])
    assert written.exit_code == 0 and out.read_bytes().startswith(b"\xef\xbb\xbfCivilit")
    bad = runner.invoke(main, ["import", "template", "--lang", "de"])
    assert bad.exit_code == 2
