"""Dashboards an analyst can trust (issue 16): a double click does the work once and shows its
own result, delivery is scoped to the client on show and confirmed, a plan follows its
options, the figures follow the database, feedback sits next to its action, and the
branding studio keeps the analyst's edits. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from grid_support import click_row
from PIL import Image
from sqlalchemy import func, select

from selfcare_ops.errors import AccessDeniedError, ValidationError
from selfcare_ops.invitations.client_outbox import deliver_client, queued_for_client
from selfcare_ops.store.models import AuditEvent, Invitation, Organisation, OutboundMessage, User
from selfcare_ops.widgets.app import Dashboard
from selfcare_ops.widgets.branding import BrandingStudio
from selfcare_ops.widgets.bulk import BulkInvitationDashboard
from selfcare_ops.widgets.common import ActionButton, Feedback
from selfcare_ops.widgets.onboarding import OnboardingDashboard

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it

CSV = (
    "Nom;Prénom;Adresse e-mail\r\n"
    "Lemaître;Hélène;helene.lemaitre@virginie.example\r\n"
    "Noël;Loïc;loic.noel@virginie.example\r\n"
).encode("cp1252")


def _file(content: bytes, name: str, mime: str) -> tuple[dict, ...]:
    return (
        {
            "name": name,
            "type": mime,
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 3, 1, tzinfo=UTC),
        },
    )


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def _count(session_factory, model, *where) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _messages_of(session_factory, ref: str) -> dict[str, int]:
    with session_factory() as session:
        org = session.scalar(select(Organisation.id).where(Organisation.ref == ref))
        mine = select(Invitation.message_id).where(Invitation.organisation_id == org)
        rows = session.execute(
            select(OutboundMessage.status, func.count())
            .where(OutboundMessage.id.in_(mine))
            .group_by(OutboundMessage.status)
        ).all()
    return {status: count for status, count in rows}


@pytest.fixture
def smtp_env(smtp_server, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_MAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_PORT", str(smtp_server.port))
    return smtp_server


# --- 1. safe double clicks -----------------------------------------------------------------


def test_an_action_button_is_off_while_its_work_runs_and_ignores_a_queued_click():
    feedback = Feedback()
    button = ActionButton(description="Envoyer")
    seen: list[bool] = []

    def work() -> None:
        seen.append(button.disabled)
        button.click()  # what a double click's second message does: arrives while it runs

    button.on_action(work, feedback)
    button.click()
    assert seen == [True] and button.runs == 1
    assert not button.disabled  # nothing said otherwise: usable again

    def fails() -> None:
        raise ValidationError("Choose a client first.")

    failing = ActionButton(description="Préparer")
    failing.on_action(fails, feedback)
    failing.click()
    assert feedback.kind == "error" and feedback.text == "Choose a client first."
    assert not failing.disabled  # an error never leaves the button dead


def test_double_click_on_apply_imports_once_and_keeps_the_true_result(session_factory, tree):
    board = OnboardingDashboard(session_factory, tree.system)
    board.client.value = "CA"
    board.upload.value = _file(CSV, "utilisateurs.csv", "text/csv")
    assert board.apply_button.description == "Appliquer (2 lignes)"
    before = _count(session_factory, User)
    board.apply_button.click()
    board.apply_button.click()  # the double click's second message
    assert board.apply_button.runs == 1
    assert _count(session_factory, User) == before + 2
    assert 'selfcare-count-create"' in board.outcome.value
    assert '<b style="font-size:18px">2</b> créés' in board.outcome.value
    assert board.apply_feedback.kind == "success", board.apply_feedback.text
    # the plan was made again: nothing left to apply
    assert board.plan.counts["create"] == 0 and board.plan.counts["unchanged"] == 2
    assert board.apply_button.disabled and board.apply_button.description == "Rien à appliquer"


# --- 2. scoped, confirmed delivery ---------------------------------------------------------


def test_delivery_from_a_client_sends_that_clients_mail_only(
    session_factory, tree, add_client, smtp_env
):

    add_client("CX", 3)
    other = BulkInvitationDashboard(session_factory, tree.system, client_ref="CX")
    other.confirm_button.click()
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    board.confirm_button.click()
    assert _messages_of(session_factory, "CX") == {"queued": 3}
    # the count before, in the label
    assert board.deliver_button.description == "Distribuer les 2 messages de ce client"
    board.deliver_button.click()
    assert board.deliver_confirmation.pending
    question = board.deliver_confirmation.question.value
    assert "les 2 messages de ce client (CA)" in question
    assert "autres clients restent" in question
    board.deliver_confirmation.cancel_button.click()  # changed their mind: nothing leaves
    assert _messages_of(session_factory, "CA") == {"queued": 2}
    assert smtp_env.messages == []

    board.deliver_button.click()
    board.deliver_confirmation.confirm_button.click()
    assert board.deliver_feedback.kind == "success", board.deliver_feedback.text
    assert "2 messages distribués" in board.delivery_html.value
    assert _messages_of(session_factory, "CA") == {"sent": 2}
    assert _messages_of(session_factory, "CX") == {"queued": 3}  # not another client's
    assert sorted(str(m["To"]) for m in smtp_env.messages) == [
        "jp.bubu@virginie.example",
        "v.duduche@virginie.example",
    ]
    assert board.deliver_button.disabled
    assert board.deliver_button.description == "Aucun message de ce client en attente"
    with session_factory() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "mail.deliver")).one()
        ca = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
    assert event.after["sent"] == 2 and event.after["organisation_ids"] == [ca]
    assert other.deliver_button.description == "Distribuer les 3 messages de ce client"


def test_client_delivery_checks_the_actors_scope(session_factory, tree, smtp_env):
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    board.confirm_button.click()
    with session_factory() as session:
        assert queued_for_client(session, tree.partner_a_admin, "CA") == 2
        with pytest.raises(AccessDeniedError, match="hors de son périmètre"):
            queued_for_client(session, tree.partner_b_admin, "CA")
        with pytest.raises(AccessDeniedError, match="file d.attente"):
            queued_for_client(session, tree.client_a_admin, "CA")
    with pytest.raises(AccessDeniedError, match="hors de son périmètre"):
        deliver_client(session_factory, actor=tree.partner_b_admin, client_ref="CA")
    assert _messages_of(session_factory, "CA") == {"queued": 2}
    assert smtp_env.messages == []
    # a client-side actor sees no delivery at all: their mail leaves with the scheduled run
    client_side = BulkInvitationDashboard(session_factory, tree.client_a_admin, client_ref="CA")
    assert client_side.delivery_box.layout.display == "none"


# --- 4. plans follow their options ---------------------------------------------------------


def test_changing_an_option_after_the_plan_invalidates_it(session_factory, tree):
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    assert board.confirm_button.description == "Confirmer l'envoi (2)"
    board.sub_account.value = "Agence"
    assert "Options changées" in board.stale.value
    assert board.confirm_button.disabled and board.plan is None
    board.confirm_button.click()
    assert _count(session_factory, Invitation) == 0
    board.plan_button.click()
    assert board.stale.value == ""
    assert board.confirm_button.description == "Confirmer l'envoi (1)"  # Duduche only

    onboarding = OnboardingDashboard(session_factory, tree.system)
    onboarding.client.value = "CA"
    onboarding.upload.value = _file(CSV, "utilisateurs.csv", "text/csv")
    assert onboarding.plan.counts["invite"] == 0
    onboarding.invite.value = True  # "Inviter les nouveaux utilisateurs" after the plan
    assert "Options changées" in onboarding.stale.value and onboarding.apply_button.disabled
    onboarding.plan_button.click()
    assert onboarding.plan.counts["invite"] == 2
    onboarding.apply_button.click()
    assert _count(session_factory, User, User.status == "invited") == 2


# --- 5. live counts ------------------------------------------------------------------------


def test_other_tabs_show_the_databases_figures_after_a_change(session_factory, tree):
    board = Dashboard(session_factory, tree.system)
    directory = board["directory"]
    directory.search.value = "virginie"
    click_row(directory.clients_grid, "CA")
    assert "3 non invités" in directory.counts_html.value
    board.select("bulk")
    bulk = board["bulk"]
    bulk.confirm_button.click()
    board.select("directory")
    assert "1 non invité" in directory.counts_html.value
    assert "2 invités" in directory.counts_html.value
    # and the other way: a deactivation in the directory re-plans the bulk tab
    click_row(directory.users_grid, tree.client_a_users[3])  # Pichon, no email
    directory.deactivate_button.click()
    directory.confirmation.confirm_button.click()
    assert directory.action_feedback.kind == "success", directory.action_feedback.text
    board.select("bulk")
    assert "désactivé" in bulk.left_out.value
    assert "2 invitations envoyées" in bulk.outcome_html.value  # the result stays on show


# --- 3 and 7. feedback next to the action, the branding studio -----------------------------


def test_a_refused_logo_keeps_the_other_edits_and_names_the_remedy(session_factory, tree):
    studio = BrandingStudio(session_factory, tree.system)
    studio.picker.choose("CA")
    studio.primary.text.value = "#003366"
    studio.logo_upload.value = _file(_png(1200, 400), "grand.png", "image/png")
    assert studio.logo_feedback.kind == "error"
    assert "Réduire à 600 px" in studio.logo_feedback.text
    assert "#003366" in studio.preview.value  # the colour edit is still there
    studio.save_button.click()
    assert studio.save_feedback.kind == "success", studio.save_feedback.text
    with session_factory() as session:
        from selfcare_ops.branding import resolve_branding

        ca = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
        effective = resolve_branding(session, ca)
    assert effective.primary_color.value == "#003366"
    assert effective.logo.source != "CA"  # the refused logo was never saved


def test_switching_organisation_with_unsaved_edits_asks_first(session_factory, tree):
    studio = BrandingStudio(session_factory, tree.system)
    studio.picker.choose("CA")
    assert 'class="sc-popup"' not in studio.preview.value  # no mock confirmation beside a real save
    assert studio.gradient.text.disabled  # no gradient: its end colour is off
    studio.gradient_on.value = True
    assert not studio.gradient.text.disabled
    studio.message.value = "Un message pas enregistré"
    studio.picker.choose("CB")
    assert studio.switch_confirmation.pending
    assert "ne sont pas enregistrées" in studio.switch_confirmation.question.value
    assert studio.ref == "CA"
    studio.switch_confirmation.cancel_button.click()
    assert studio.ref == "CA" and studio.picker.value == "CA"
    assert studio.message.value == "Un message pas enregistré"
    studio.picker.choose("CB")
    studio.switch_confirmation.confirm_button.click()
    assert studio.ref == "CB" and not studio.dirty


# --- 8. opens fast -------------------------------------------------------------------------


def test_only_the_directory_is_built_when_the_page_opens(session_factory, tree):
    board = Dashboard(session_factory, tree.system)
    assert set(board.boards) == {"directory"}
    assert "selfcare-loading" in board.tab.children[1].value
    board.select("branding")
    assert set(board.boards) == {"directory", "branding"}
    assert board.tab.children[3] is board.boards["branding"].widget


def test_importing_the_package_loads_no_dashboard_module():
    code = (
        "import sys, selfcare_ops.widgets as w; "
        "print(sorted(m for m in sys.modules if m.startswith('selfcare_ops.widgets.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- 6. paging: jump to a page, choose the page size ---------------------------------------


def test_the_client_list_jumps_to_a_page_and_changes_its_size(session_factory, tree):
    from selfcare_ops.widgets.directory import DirectoryDashboard

    board = DirectoryDashboard(session_factory, tree.system, client_page_size=1)
    assert board.clients_page_label.value == "Page 1 / 3" and board.clients_jump.max == 3
    board.clients_jump.value = 3  # straight to the last page, not ▶ twice
    assert board.clients_page_label.value == "Page 3 / 3"
    assert len(board.client_page.rows) == 1 and board.next_clients.disabled
    board.page_size.value = 10
    assert board.clients_page_label.value == "Page 1 / 1"
    assert len(board.client_page.rows) == 3 and board.clients_jump.value == 1
