"""Issue 12, points 9, 10 and 12: formula-safe exports, bounded reads, and one sentence for
each failure. Each test replays the break of the issue through the CLI or the service."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import Pool

from selfcare_ops import reports
from selfcare_ops.cli import main
from selfcare_ops.config import get_settings
from selfcare_ops.errors import ImageError, ImportFileError
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail import transports
from selfcare_ops.organisations import create_organisation
from selfcare_ops.store.models import Invitation, OutboundMessage, User, utcnow
from selfcare_ops.support import files
from selfcare_ops.support.exports import FORMULA_STARTS
from selfcare_ops.widgets import BulkInvitationDashboard
from selfcare_ops.widgets.onboarding import OnboardingDashboard


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


JP = "jbubu@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
HOSTILE_EMAIL = "=cmd|'/Ccalc'!A0@evil.example"
HOSTILE_NAME = '=HYPERLINK("http://evil.example","clic")'


def run(db_url: str, *args: str, actor: str | None = None, env: dict[str, str] | None = None):
    environment = {"SELFCARE_OPS_DATABASE_URL": db_url, **(env or {})}
    if actor:
        environment["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def one_sentence(result) -> str:
    """The error line of a failed command: exit 1, one line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "Error: unexpected" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- point 9: every export is formula-safe ----------------------------------------------------


def _cells(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text), delimiter=";") for cell in row]


def _link_bytes(html_value: str) -> bytes:
    match = re.search(r'href="data:text/csv;base64,([^"]+)"', html_value)
    assert match, html_value
    return base64.b64decode(match.group(1))


@pytest.fixture
def hostile(db_url, session_factory, tree, tmp_path) -> Path:
    """A client named like a formula, and people whose email and names are formulas, entered
    the ways the issue used (``users create``, a CSV import). Returns the CSV file."""
    with session_factory.begin() as session:
        create_organisation(
            session,
            tree.system,
            kind="client",
            parent_ref="PA",
            ref="EVIL",
            name=HOSTILE_NAME,
            login_domain="evil.example",
        )
    created = run(
        db_url,
        "users",
        "create",
        "CA",
        "--first-name",
        "@SUM(1)",
        "--last-name",
        "-2+3",
        "--email",
        HOSTILE_EMAIL,
        "--draft",
    )
    assert created.exit_code == 0, created.output
    source = tmp_path / "hostile.csv"
    source.write_bytes(
        "Nom;Prénom;Adresse e-mail\r\n+Evil;=Bad;=1+1@evil2.example\r\n".encode("cp1252")
    )
    return source


def _assert_inert(name: str, data: bytes, marker: str) -> None:
    cells = _cells(data)
    live = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert not live, f"{name}: {live}"
    assert any(cell.startswith("'") and marker in cell for cell in cells), f"{name}: {cells}"


def test_every_export_path_neutralises_formulas(db_url, session_factory, tree, hostile, tmp_path):
    exports: dict[str, tuple[bytes, str]] = {}

    # The break of the issue: the bulk-invitation plan download of the dashboard.
    board = BulkInvitationDashboard(session_factory, tree.system)
    board.client.value = "CA"
    exports["bulk plan download"] = (_link_bytes(board.plan_download.value), HOSTILE_EMAIL)

    report = tmp_path / "import.csv"
    imported = run(
        db_url, "import", "users", str(hostile), "--client", "CA", "--report", str(report)
    )
    assert imported.exit_code == 0, imported.output
    exports["import report"] = (report.read_bytes(), "=1+1@evil2.example")

    onboarding = OnboardingDashboard(session_factory, tree.system)
    onboarding.client.value = "CA"
    content = hostile.read_bytes().replace(b"evil2", b"evil3")
    onboarding.upload.value = (
        {
            "name": "hostile.csv",
            "type": "text/csv",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 3, 1, tzinfo=UTC),
        },
    )
    exports["onboarding plan download"] = (
        _link_bytes(onboarding.plan_download.value),
        "=1+1@evil3.example",
    )

    audit_csv = tmp_path / "audit.csv"
    assert run(db_url, "branding", "audit", "--csv", str(audit_csv)).exit_code == 0
    exports["branding audit"] = (audit_csv.read_bytes(), HOSTILE_NAME)

    modules_csv = tmp_path / "modules.csv"
    planned = run(db_url, "modules", "set-many", "contacts", "off", "--csv", str(modules_csv))
    assert planned.exit_code == 0, planned.output
    exports["modules plan"] = (modules_csv.read_bytes(), HOSTILE_NAME)

    with session_factory() as session:
        tables = reports.export_report(reports.adoption_report(session, tree.system), tmp_path)
    exports["adoption report"] = (tables["funnel_clients"].read_bytes(), HOSTILE_NAME)

    for name, (data, marker) in exports.items():
        _assert_inert(name, data, marker)


# --- point 10: bounded reads ------------------------------------------------------------------


def _specials(tmp_path: Path) -> dict[str, str]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"/dev/zero": "a device", str(fifo): "a pipe", "/dev/stdin": ""}


@pytest.mark.parametrize("kind", ["logo", "banner"])
def test_check_image_reads_only_regular_files(tmp_path, kind):
    for path, what in _specials(tmp_path).items():
        result = CliRunner().invoke(main, ["branding", "check-image", path, "--kind", kind])
        assert result.exit_code == 1, (path, result.output)
        assert "not a regular file" in result.output and path in result.output
        assert what in result.output


def test_branding_set_logo_from_stdin_or_a_device_is_refused(db_url, tree, tmp_path):
    for path in ("/dev/stdin", "/dev/zero"):
        line = one_sentence(run(db_url, "branding", "set", "CA", "--logo", path))
        assert line.startswith(f"Error: The logo file {path} is ") and "not a regular file" in line


def test_image_reads_stop_at_the_limit_even_past_the_size_check(tmp_path, monkeypatch):
    """A file that grows after it was opened is still read only up to the limit plus one."""
    from selfcare_ops.branding import images

    monkeypatch.setattr(images, "UPLOAD_MAX_BYTES", 1000)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\x00" * 2000)
    with pytest.raises(ImageError, match="files above 0.00 MB \\(1,000 bytes\\) are not read"):
        images.read_upload(big, "logo")
    read: list[int] = []
    real_open = files.open_regular_file

    def grows(*args, **kwargs):  # the size check saw 10 bytes, then the file grew
        handle, _size = real_open(*args, **{**kwargs, "limit": None})
        original = handle.read
        handle.read = lambda n=-1: (read.append(n), original(n))[1]  # type: ignore[method-assign]
        return handle, 10

    monkeypatch.setattr(files, "open_regular_file", grows)
    with pytest.raises(ImageError, match="larger than that"):
        images.read_upload(big, "logo")
    assert read == [1001]


def test_import_reads_only_regular_files(db_url, tree, tmp_path):
    for path, what in _specials(tmp_path).items():
        line = one_sentence(run(db_url, "import", "users", path, "--client", "CA", "--dry-run"))
        assert f"The file {path} is {what}" in line and "not a regular file" in line


def test_a_folder_is_refused_by_both_readers(tmp_path):
    from selfcare_ops.branding.images import read_upload
    from selfcare_ops.onboarding import read_rows

    with pytest.raises(ImageError, match=f"The banner image file {tmp_path} is a folder"):
        read_upload(tmp_path, "banner")
    with pytest.raises(ImportFileError, match=f"The file {tmp_path} is a folder"):
        read_rows(tmp_path)


# --- point 12: UTF-16 as the README says ------------------------------------------------------

UTF16_TEXT = (
    "Nom;Prénom;Adresse e-mail\r\nCli;Anne;anne.cli@x.example\r\nZèbre;Élodie;e@x.example\r\n"
)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_with_or_without_bom_are_read(
    db_url, session_factory, tree, tmp_path, encoding
):
    source = tmp_path / "utf16.csv"
    source.write_bytes(UTF16_TEXT.encode(encoding))
    result = run(db_url, "import", "users", str(source), "--client", "CA", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["create"] == 2
    with session_factory() as session:
        names = set(session.scalars(select(User.first_name).where(User.last_name == "Zèbre")))
    assert names == {"Élodie"}


def test_an_unpaired_utf16_surrogate_is_refused_naming_its_line(db_url, tree, tmp_path):
    damaged = UTF16_TEXT.encode("utf-16").replace(
        "Zèbre".encode("utf-16-le"), b"\x00\xd8" + "èbre".encode("utf-16-le")
    )
    source = tmp_path / "damaged.csv"
    source.write_bytes(damaged)
    line = one_sentence(run(db_url, "import", "users", str(source), "--client", "CA"))
    assert "cannot be decoded at line 3" in line and "unpaired surrogate" in line


# --- point 12: one sentence for each failure --------------------------------------------------

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def _server_url(**changes: str) -> str:
    base = os.environ.get("SELFCARE_OPS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SELFCARE_OPS_TEST_POSTGRES_URL is not set: PostgreSQL cases skipped")
    return make_url(base).set(**changes).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["clients", "list"], ["db", "upgrade"]])
def test_a_missing_postgresql_database_says_how_to_create_it(command):
    url = _server_url(database="selfcare_ops_no_such_database")
    line = one_sentence(run(url, *command))
    assert "The PostgreSQL database selfcare_ops_no_such_database does not exist" in line
    assert "`createdb selfcare_ops_no_such_database`" in line
    assert "is not initialised" not in line  # `db upgrade` answers the same: no loop


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["clients", "list"], ["db", "upgrade"]])
def test_a_missing_postgresql_role_says_how_to_create_it(command):
    url = _server_url(username="selfcare_ops_no_such_role")
    line = one_sentence(run(url, *command))
    assert "The PostgreSQL role selfcare_ops_no_such_role does not exist" in line
    assert 'CREATE ROLE "selfcare_ops_no_such_role" LOGIN;' in line


@pytest.mark.parametrize("command", [["clients", "list"], ["db", "upgrade"]])
def test_a_file_that_is_not_sqlite_is_named(tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("Ceci n'est pas une base de données.\n" * 200, encoding="utf-8")
    line = one_sentence(run(f"sqlite:///{notes}", *command))
    assert f"The file {notes} is not a SQLite database" in line


@pytest.mark.parametrize(
    "command",
    [["clients", "list", "--search"], ["users", "list", "CA", "--search"]],
    ids=["clients", "users"],
)
def test_a_search_text_over_the_limit_names_the_limit(db_url, tree, command):
    line = one_sentence(run(db_url, *command, "a" * 50_001))
    assert line == (
        "Error: The search text has 50,001 characters; at most 200 are searched: give part of "
        "a name, login or email."
    )
    assert run(db_url, *command, "é" * 200).exit_code == 0


def test_a_dropped_table_says_the_schema_is_damaged(db_url, engine, tree):
    # Renamed away and back (a DROP would break the other tests sharing the PostgreSQL schema).
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE audit_events RENAME TO audit_events_away")
    try:
        line = one_sentence(run(db_url, "audit", "list"))
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE audit_events_away RENAME TO audit_events")
    assert line.startswith(
        "Error: The database schema is damaged: the table audit_events is missing"
    )
    assert "restore the database from a backup" in line


@pytest.mark.parametrize("days", ["100000000", "0", "-1", "30.5", "0.041", "sept", "nan"])
def test_invitation_ttl_out_of_bounds_is_one_sentence(db_url, tree, days):
    line = one_sentence(
        run(db_url, "invite", "user", JP, env={"SELFCARE_OPS_INVITATION_TTL_DAYS": days})
    )
    assert line == (
        "Error: SELFCARE_OPS_INVITATION_TTL_DAYS must be a number of days from 0.0417 "
        f"(one hour) to 30, such as 7 or 0.5, not {days!r}."
    )


@pytest.mark.parametrize(("days", "hours"), [("0.5", 12), ("1/24", None), ("30", 720)])
def test_invitation_ttl_takes_fractional_days(db_url, session_factory, tree, days, hours):
    result = run(db_url, "invite", "user", JP, env={"SELFCARE_OPS_INVITATION_TTL_DAYS": days})
    if hours is None:  # a fraction is written as a decimal number
        assert result.exit_code == 1 and "not '1/24'" in result.stderr
        return
    assert result.exit_code == 0, result.output
    with session_factory() as session:
        invitation = session.scalar(select(Invitation))
        assert invitation.expires_at - invitation.created_at == timedelta(hours=hours)


@pytest.mark.parametrize("db_url", POSTGRES_ONLY, indirect=True)
def test_a_connection_lost_during_mail_deliver_is_one_sentence_and_loses_nothing(
    db_url, engine, session_factory, tree, tmp_path, monkeypatch
):
    with session_factory.begin() as session:
        for login in (JP, VERO):
            invitations.invite_user(session, tree.system, login)
    pids: list[int] = []

    def remember(dbapi_connection, _record) -> None:  # every connection this process opens
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
        cursor.close()

    killer = engine.connect()
    killer_pid = killer.scalar(text("SELECT pg_backend_pid()"))
    real_send = transports.MaildirTransport.send

    def send_then_kill(self, mail, **kwargs):  # the server drops the deliverer mid-run
        real_send(self, mail, **kwargs)
        for pid in pids:
            if pid != killer_pid:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.commit()

    monkeypatch.setattr(transports.MaildirTransport, "send", send_then_kill)
    # pytest's own log capture would hide what logging's last-resort handler prints.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    maildir = tmp_path / "outbox"
    event.listen(Pool, "connect", remember)
    try:
        result = run(db_url, "mail", "deliver", env={"SELFCARE_OPS_MAILDIR": str(maildir)})
    finally:
        event.remove(Pool, "connect", remember)
        killer.close()
    line = one_sentence(result)
    assert line.startswith("Error: The database connection was lost while delivering mail (")
    assert "nothing is lost" in line
    monkeypatch.setattr(transports.MaildirTransport, "send", real_send)
    later = utcnow() + timedelta(minutes=6)  # after the lease, the next run takes them back
    settings = get_settings()
    settings = replace(settings, maildir=maildir)
    invitations.deliver_and_redact(session_factory, settings, actor=tree.system, now=later)
    with session_factory() as session:
        statuses = session.scalars(select(OutboundMessage.status)).all()
    assert sorted(statuses) == ["sent", "sent"]
    delivered = [p.read_text() for p in (maildir / "new").iterdir()]
    for address in ("jp.bubu@virginie.example", "v.duduche@virginie.example"):
        assert any(address in message for message in delivered)
