"""The onboarding dashboard: upload a French-Excel CSV, read the plan, apply, download."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from selfcare_ops.store.models import User
from selfcare_ops.widgets.onboarding import OnboardingDashboard

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it

CSV_FR = (
    "Nom;Prénom;Adresse e-mail;Téléphone;Fonction;Couleur préférée\r\n"
    "Lemaître;Hélène;helene.lemaitre@virginie.example;01 45 67 89 10;Comptable;bleu\r\n"
    "Garçon;François;pas-une-adresse;;;vert\r\n"
    "Bubu;Jean-Pierre;jp.bubu@virginie.example;06 12 34 56 78;Chef de projet;rouge\r\n"
).encode("cp1252")


def _upload(board: OnboardingDashboard, content: bytes, name: str = "utilisateurs.csv") -> None:
    """Set the FileUpload value the way ipywidgets 8 does: a tuple of dicts with bytes."""
    board.upload.value = (
        {
            "name": name,
            "type": "text/csv",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 3, 1, tzinfo=UTC),
        },
    )


def _users(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def _link_bytes(html_value: str) -> bytes:
    match = re.search(r'href="data:text/csv;base64,([^"]+)"', html_value)
    assert match, html_value
    return base64.b64decode(match.group(1))


def test_upload_plans_then_apply_with_progress(session_factory, tree):
    before = _users(session_factory)
    board = OnboardingDashboard(session_factory, tree.system)
    assert board.apply_button.disabled
    board.client.value = "CA"
    _upload(board, CSV_FR)
    assert board.feedback.kind != "error", board.feedback.text
    # the plan: counts, the rejected line with its reason, the update with its changes
    assert "cp1252" in board.file_info.value or "1252" in board.file_info.value
    assert "Couleur préférée" in board.file_info.value  # unknown column reported
    counts = board.plan.counts
    assert (counts["rows"], counts["create"], counts["update"], counts["reject"]) == (3, 1, 1, 1)
    assert "Garçon" in board.rejected.value and "Ligne" in board.rejected.value
    assert "phone → +33612345678" in board.changes.value
    assert "Télécharger le plan" in board.plan_download.value
    assert _users(session_factory) == before  # planning writes nothing
    assert board.apply_button.description == "Appliquer (2 lignes)"

    board.apply_button.click()
    assert board.progress.bar.bar_style == "success"
    assert board.progress.bar.value == board.progress.bar.max
    assert board.apply_feedback.kind == "warning"  # one line rejected, reported, not fatal
    assert "1 ligne rejetée" in board.apply_feedback.text
    # the file was analysed again: nothing left to apply, the result stays on show
    assert board.apply_button.disabled and board.apply_button.description == "Rien à appliquer"
    assert "créé" in board.outcome.value
    assert _users(session_factory) == before + 1
    with session_factory() as session:
        bubu = session.scalars(select(User).where(User.last_name == "Bubu")).one()
        helene = session.scalars(select(User).where(User.last_name == "Lemaître")).one()
        helene_client = helene.client.ref
    assert bubu.phone == "+33612345678" and bubu.function == "Chef de projet"
    assert helene_client == "CA" and helene.status == "not_invited"

    report = _link_bytes(board.report_download.value)
    assert report.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for French Excel
    text = report.decode("utf-8-sig")
    assert "Garçon" in text and ";" in text.splitlines()[0]

    # the same file analysed again changes nothing
    board.plan_button.click()
    assert board.plan.counts["unchanged"] == 2 and board.plan.counts["create"] == 0
    assert board.apply_button.disabled


def test_invite_option_queues_invitations(session_factory, tree):
    board = OnboardingDashboard(session_factory, tree.system)
    board.client.value = "CA"
    board.invite.value = True
    _upload(board, CSV_FR)
    assert board.plan.counts["invite"] >= 1
    board.apply_button.click()
    with session_factory() as session:
        helene = session.scalars(select(User).where(User.last_name == "Lemaître")).one()
    assert helene.status == "invited"


def test_strict_mode_refuses_a_file_with_rejected_lines(session_factory, tree):
    board = OnboardingDashboard(session_factory, tree.system)
    board.client.value = "CA"
    board.strict.value = True
    _upload(board, CSV_FR)
    assert board.apply_button.disabled
    assert board.apply_feedback.kind == "warning"
    assert "tout ou rien" in board.apply_feedback.text


def test_unreadable_files_and_scope_are_readable_errors(session_factory, tree):
    board = OnboardingDashboard(session_factory, tree.system)
    board.plan_button.click()
    assert board.feedback.kind == "error" and "CSV" in board.feedback.text
    _upload(board, b"", "vide.csv")
    assert board.feedback.kind == "error" and "est vide" in board.feedback.text
    _upload(board, bytes(range(256)) * 8, "binaire.csv")
    assert board.feedback.kind == "error" and "Traceback" not in board.feedback.value

    outsider = OnboardingDashboard(session_factory, tree.partner_b_admin)
    outsider.client.value = "CA"
    _upload(outsider, CSV_FR)
    assert outsider.feedback.kind == "error"
    assert "hors de son périmètre" in outsider.feedback.text
    assert outsider.apply_button.disabled
