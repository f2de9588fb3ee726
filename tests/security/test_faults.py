"""Issue 12, points 9, 10 and 12: formula-safe exports, bounded reads, and one sentence for
each failure. Each test replays the break of the issue through the CLI or the service."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfcare_ops import reports
from selfcare_ops.cli import main
from selfcare_ops.exports import FORMULA_STARTS
from selfcare_ops.organisations import create_organisation
from selfcare_ops.widgets import BulkInvitationDashboard
from selfcare_ops.widgets.onboarding import OnboardingDashboard

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
    assert "Traceback" not in result.output and "unexpected" not in result.stderr
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
