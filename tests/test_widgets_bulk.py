"""The bulk-invitation dashboard: plan, left-out users with reasons, confirm, deliver."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from grid_support import click_row
from sqlalchemy import func, select, update

from selfcare_ops.accounts.users import NewUser
from selfcare_ops.invitations import service as invitations
from selfcare_ops.store.models import Invitation, OutboundMessage, User, utcnow
from selfcare_ops.widgets import BulkInvitationDashboard, DirectoryDashboard
from selfcare_ops.widgets.bulk import reason_label

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


def _deliver(board: BulkInvitationDashboard) -> None:
    """Click "Distribuer…", then confirm: nothing leaves before the confirmation."""
    board.deliver_button.click()
    assert board.deliver_confirmation.pending, board.deliver_feedback.text
    board.deliver_confirmation.confirm_button.click()


def _invitations(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Invitation)) or 0


def test_client_plan_shows_count_and_reasons(session_factory, tree):
    board = BulkInvitationDashboard(session_factory, tree.system)
    assert board.confirm_button.disabled  # nothing planned yet
    board.client.value = "CA"
    # Bubu and Duduche have an email and were never invited; alice and marc are active,
    # Pichon has no email, Convenant is deactivated.
    assert "2 invitations à envoyer" in board.summary.value
    left_out = board.left_out.value
    assert "pas d&#x27;adresse e-mail" in left_out
    assert "déjà actif" in left_out and "désactivé" in left_out
    assert "Télécharger le plan" in board.plan_download.value
    assert board.confirm_button.description == "Confirmer l'envoi (2)"
    assert _invitations(session_factory) == 0  # planning sends nothing

    board.confirm_button.click()
    assert board.send_feedback.kind == "success", board.send_feedback.text
    assert "2 invitations envoyées" in board.outcome_html.value
    assert board.progress.bar.value == board.progress.bar.max
    assert board.progress.label.value == "2 / 2"
    assert _invitations(session_factory) == 2
    with session_factory() as session:
        statuses = dict(session.execute(select(User.last_name, User.status)).all())
    assert statuses["Bubu"] == statuses["Duduche"] == "invited"
    assert statuses["Pichon"] == "not_invited"

    # the plan was made again: nothing left to send, the button off, the result kept
    assert "0 invitation à envoyer" in board.summary.value
    assert board.confirm_button.disabled
    assert board.confirm_button.description == "Rien à envoyer"
    # a second click (a double click's) does nothing and leaves the first one's result
    board.confirm_button.click()
    assert board.confirm_button.runs == 1
    assert "2 invitations envoyées" in board.outcome_html.value
    assert board.progress.label.value == "2 / 2"
    assert _invitations(session_factory) == 2
    # and a fresh plan leaves the invited users out as recently invited
    board.plan_button.click()
    assert "0 invitation à envoyer" in board.summary.value
    assert "invité il y a moins de 3 jours" in board.left_out.value
    assert board.confirm_button.disabled


def test_dataframe_source(session_factory, tree):
    users = pd.DataFrame({"login": [tree.client_a_users[2], tree.client_a_users[3], "nobody@x"]})
    board = BulkInvitationDashboard(session_factory, tree.system, users=users)
    assert "tableau de 3 lignes" in board.source.value
    assert "1 invitation à envoyer" in board.summary.value
    assert "utilisateur inconnu" in board.left_out.value
    board.confirm_button.click()
    assert _invitations(session_factory) == 1


def test_out_of_scope_and_unknown_client_are_readable(session_factory, tree):
    board = BulkInvitationDashboard(session_factory, tree.partner_b_admin)
    board.client.value = "CA"
    assert board.feedback.kind == "error"
    assert "hors de son périmètre" in board.feedback.text
    assert board.confirm_button.disabled
    board.client.value = "NOPE"
    assert board.feedback.kind == "error" and "NOPE" in board.feedback.text
    assert board.summary.value == ""  # no plan of another client left on show
    # a DataFrame naming users out of scope plans them as left out, sends nothing
    board.use_users(pd.DataFrame({"login": [tree.client_a_users[2]]}))
    assert "0 invitation à envoyer" in board.summary.value
    assert "hors périmètre" in board.left_out.value


def test_bad_dataframe_is_a_readable_error(session_factory, tree):
    board = BulkInvitationDashboard(session_factory, tree.system)
    board.use_users(pd.DataFrame({"nom": ["Bubu"]}))
    assert board.feedback.kind == "error"
    assert "'login'" in board.feedback.text


def test_reason_labels_add_what_to_do_else_keep_the_plans_sentence():
    assert reason_label("deactivated", "désactivé").startswith("désactivé (à réactiver")
    assert reason_label("invited_recently", "invité il y a moins de 7 jours") == (
        "invité il y a moins de 7 jours"
    )
    assert reason_label("already_active", None) == ""


class _Mailbox:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch) -> Iterator[_Mailbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SELFCARE_OPS_MAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_PORT", str(port))
    try:
        yield mailbox
    finally:
        controller.stop()


def test_directory_pick_then_send_then_deliver_over_smtp(session_factory, tree, smtp):
    directory = DirectoryDashboard(session_factory, tree.system)
    directory.search.value = "virginie"
    click_row(directory.clients_grid, "CA")
    board = BulkInvitationDashboard(session_factory, tree.system)
    board.follow_client(directory.client_ref)
    assert board.client.value == "CA"
    assert "2 invitations à envoyer" in board.summary.value
    assert board.deliver_button.disabled
    board.confirm_button.click()
    assert board.deliver_button.description == "Distribuer les 2 messages de ce client"
    _deliver(board)
    assert board.deliver_feedback.kind == "success", board.deliver_feedback.text
    assert "2 messages distribués" in board.delivery_html.value
    assert board.deliver_button.disabled  # nothing of this client waits any more
    assert sorted(smtp.recipients) == ["jp.bubu@virginie.example", "v.duduche@virginie.example"]
    with session_factory() as session:
        assert set(session.scalars(select(OutboundMessage.status))) == {"sent"}


def test_delivery_failure_is_reported_not_raised(session_factory, tree, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SELFCARE_OPS_MAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SELFCARE_OPS_SMTP_PORT", str(port))
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    board.confirm_button.click()
    _deliver(board)
    assert board.deliver_feedback.kind in ("warning", "error")
    assert "Traceback" not in board.deliver_feedback.value
    with session_factory() as session:  # nothing lost: the messages wait for the next run
        assert "sent" not in set(session.scalars(select(OutboundMessage.status)))


def test_delivery_counts_mails_whose_link_no_longer_works(session_factory, tree, smtp):
    """Links that expired while waiting are not mailed, and the dashboard says so."""
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    board.confirm_button.click()
    with session_factory.begin() as session:
        session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
    _deliver(board)
    assert "0 message distribué" in board.delivery_html.value
    assert "2 annulés (lien révoqué, remplacé ou expiré)" in board.delivery_html.value
    assert smtp.recipients == []
    with session_factory() as session:
        assert set(session.scalars(select(OutboundMessage.status))) == {"cancelled"}


def test_a_draft_is_left_out_with_its_reason(session_factory, tree):
    with session_factory.begin() as session:
        invitations.add_user(
            session,
            tree.system,
            "CA",
            NewUser("Denise", "Brouillon", email="denise@virginie.example"),
            draft=True,
        )
    board = BulkInvitationDashboard(session_factory, tree.system, client_ref="CA")
    assert "2 invitations à envoyer" in board.summary.value
    assert "brouillon créé sans activation" in board.left_out.value
