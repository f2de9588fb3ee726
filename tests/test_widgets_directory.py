"""The directory dashboard driven like an analyst would: type, click, pick, read."""

from __future__ import annotations

import pytest
from grid_support import click_row, keys, shown
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import system_actor
from selfcare_ops.demo import DEMO_CLIENT_REF, load_demo
from selfcare_ops.errors import ValidationError
from selfcare_ops.store.models import Invitation, SupervisionSession, User
from selfcare_ops.widgets import DirectoryDashboard
from selfcare_ops.widgets.common import Feedback, error_message, guard

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


def _user(session_factory: sessionmaker[Session], login: str) -> User:
    with session_factory() as session:
        return session.scalars(select(User).where(User.login == login)).one()


def test_accent_insensitive_search_and_client_users(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    assert "Virginie Télécom" in shown(board.clients_grid)
    board.search.value = "telecom"  # no accent typed
    assert "Virginie Télécom" in shown(board.clients_grid)
    assert "Bêta Client" not in shown(board.clients_grid)
    assert board.clients_page_label.value == "Page 1 / 1"
    assert keys(board.clients_grid) == ["CA"]

    click_row(board.clients_grid, "CA")
    assert board.users_box.layout.display == ""
    on_show = shown(board.users_grid)
    for name in ("Bubu", "Pichon", "Duduche", "Convenant", "Dupont"):
        assert name in on_show
    # one grid of users, no list box beside it: the deactivated user says so in words
    assert on_show.count("Désactivé le ") == 1
    assert not hasattr(board, "user_select") and not hasattr(board, "client_select")
    assert "6 utilisateurs" in board.counts_html.value
    assert "1 désactivé ·" not in board.counts_html.value  # the last part has no separator
    assert "1 désactivé" in board.counts_html.value
    assert "2 actifs" in board.counts_html.value


def test_filters_and_keyset_paging(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system, user_page_size=2)
    board.open_client("CA")
    assert board.users_page_label.value == "Page 1 / 3"
    seen = list(board.users_page.rows["login"])
    board.next_users.click()
    assert board.users_page_label.value == "Page 2 / 3"
    seen += list(board.users_page.rows["login"])
    board.next_users.click()
    seen += list(board.users_page.rows["login"])
    assert board.next_users.disabled
    assert sorted(seen) == sorted(tree.client_a_users)
    board.prev_users.click()
    assert board.users_page_label.value == "Page 2 / 3"

    board.email_filter.value = "no"
    assert list(board.users_page.rows["last_name"]) == ["Pichon"]
    assert board.users_page_label.value == "Page 1 / 1"
    board.email_filter.value = "__all__"
    board.status_filter.value = "deactivated"
    assert list(board.users_page.rows["last_name"]) == ["Convenant"]
    board.status_filter.value = "__all__"
    board.user_search.value = "veronique"  # accent-insensitive user search
    assert list(board.users_page.rows["last_name"]) == ["Duduche"]
    board.user_search.value = ""
    board.sub_account.value = "siege"  # the sub-account "Siège"
    assert board.users_page.total == 3  # Bubu, Pichon and their manager Lefèvre
    assert board.users_page_label.value == "Page 1 / 2"  # two per page here
    board.sub_account.value = "Nulle part"
    assert board.feedback.kind == "error" and "Nulle part" in board.feedback.text


def test_out_of_scope_client_is_a_readable_error(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.partner_b_admin)
    assert "Virginie" not in shown(board.clients_grid)  # not in partner B's subtree
    board.open_client("CB")
    assert "Bêta" in board.client_title.value
    board.open_client("CA")
    assert board.feedback.kind == "error"
    assert "hors de son périmètre" in board.feedback.text
    assert board.users_box.layout.display == "none"  # CB's users are not left on show
    assert "Traceback" not in board.feedback.value


def test_manager_sees_only_their_sub_account(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.manager_siege)
    board.open_client("CA")
    assert set(board.users_page.rows["sub_account"]) == {"Siège"}


def test_choosing_a_user_enables_the_right_actions(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    assert board.invite_button.disabled  # nobody chosen yet
    deactivated = tree.client_a_users[-1]
    click_row(board.users_grid, deactivated)
    assert board.reactivate_button.disabled is False
    assert board.invite_button.disabled and board.deactivate_button.disabled
    click_row(board.users_grid, tree.client_a_users[2])  # Bubu, not invited, has an email
    assert not board.invite_button.disabled
    board.copy_button.click()
    assert board.email.value == "jp.bubu@virginie.example"


def test_supervision_needs_a_reason(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    click_row(board.users_grid, tree.client_a_users[0])  # alice, active
    board.supervise_button.click()
    assert board.action_feedback.kind == "error"
    assert "raison" in board.action_feedback.text
    assert not board.confirmation.pending


def test_guard_turns_any_exception_into_a_short_message():
    feedback = Feedback()

    @guard(feedback)
    def broken() -> None:
        raise KeyError("colour")

    broken()
    assert feedback.kind == "error"
    assert "KeyError" in feedback.text and "Traceback" not in feedback.text
    assert error_message(ValidationError("Bad value.")) == "Bad value."


@pytest.fixture
def demo_factory(session_factory):
    with session_factory.begin() as session:
        load_demo(session)
    return session_factory


def test_demo_data_pages_in_the_database(demo_factory):
    with demo_factory() as session:
        actor = system_actor(session)
        total = session.scalar(select(func.count()).select_from(User))
    board = DirectoryDashboard(demo_factory, actor)
    pages = int(board.clients_page_label.value.split("/")[1])
    assert pages >= 30  # hundreds of clients, 20 per page
    assert len(board.client_page.rows) == 20
    board.next_clients.click()
    assert board.clients_page_label.value.startswith("Page 2 /")
    board.open_client(DEMO_CLIENT_REF)
    # one page reaches the browser, never the whole table
    assert len(board.users_page.rows) <= board.user_page_size < total
    assert len(board.users_grid.grid.data) == len(board.users_page.rows)


def _status(session_factory, login: str) -> str:
    return _user(session_factory, login).status


def test_invite_with_another_email_then_resend(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    pichon = tree.client_a_users[3]  # no email on the account
    click_row(board.users_grid, pichon)
    board.invite_button.click()
    assert board.action_feedback.kind == "error"
    assert "pas d'adresse e-mail" in board.action_feedback.text
    board.email.value = "pas-une-adresse"
    board.invite_button.click()
    assert board.action_feedback.kind == "error" and "Traceback" not in board.action_feedback.value
    assert _status(session_factory, pichon) == "not_invited"

    board.email.value = "cedric.pichon@virginie.example"
    board.invite_button.click()
    assert board.action_feedback.kind == "success", board.action_feedback.text
    user = _user(session_factory, pichon)
    assert (user.status, user.email) == ("invited", "cedric.pichon@virginie.example")
    # the list now says when the invitation went out
    assert f"Invité le {user.invited_at:%d/%m/%Y}" in shown(board.users_grid)
    assert "1 invité" in board.counts_html.value
    assert not board.resend_button.disabled
    board.resend_button.click()
    assert board.action_feedback.kind == "success"
    with session_factory() as session:
        statuses = sorted(session.scalars(select(Invitation.status)))
    assert statuses == ["pending", "superseded"]


def test_deactivate_asks_first_then_reactivate(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    bubu = tree.client_a_users[2]
    click_row(board.users_grid, bubu)
    board.deactivate_button.click()
    assert board.confirmation.pending
    assert "Désactiver" in board.confirmation.question.value
    assert _status(session_factory, bubu) == "not_invited"  # nothing until confirmed
    board.confirmation.cancel_button.click()
    assert not board.confirmation.pending
    assert _status(session_factory, bubu) == "not_invited"

    board.deactivate_button.click()
    board.confirmation.confirm_button.click()
    assert _status(session_factory, bubu) == "deactivated"
    assert board.action_feedback.kind == "success"
    assert "2 désactivés" in board.counts_html.value
    assert not board.reactivate_button.disabled
    board.reactivate_button.click()
    board.confirmation.confirm_button.click()
    assert _status(session_factory, bubu) == "not_invited"


def test_supervise_an_active_user(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    alice = tree.client_a_users[0]
    click_row(board.users_grid, alice)
    board.reason.value = "Montrer la commande d'un forfait"
    board.supervise_button.click()
    assert board.confirmation.pending
    board.confirmation.confirm_button.click()
    assert board.action_feedback.kind == "success", board.action_feedback.text
    assert "Supervision de" in board.action_feedback.text
    assert "Accéder au nouveau Selfcare" in board.user_detail.value
    with session_factory() as session:
        sessions = session.scalars(select(SupervisionSession)).all()
    assert [s.reason for s in sessions] == ["Montrer la commande d'un forfait"]


def test_manager_cannot_act_outside_their_sub_account(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.manager_siege)
    board.open_client("CA")
    # Duduche (Agence) is not even listed for the manager of Siège
    assert "Duduche" not in shown(board.users_grid)
    click_row(board.users_grid, tree.client_a_users[2])  # Bubu, in Siège
    board.invite_button.click()
    assert board.action_feedback.kind == "success", board.action_feedback.text


def test_the_state_column_tells_what_became_of_each_invitation(session_factory, tree, smtp_server):
    """Sent on a date, refused by the server with its words: shown and filtered on."""
    from smtp_support import smtp_settings

    from selfcare_ops.invitations import service as invitations
    from selfcare_ops.mail.deliver import deliver

    smtp_server.handler.rcpt_replies = {"v.duduche@virginie.example": "550 5.1.1 Unknown user"}
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, tree.client_a_users[2])
        invitations.invite_user(session, tree.system, tree.client_a_users[4])
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    assert shown(board.users_grid).count("(envoi en attente)") == 2
    deliver(session_factory, smtp_settings(smtp_server.port))
    board.open_client("CA")
    on_show = shown(board.users_grid)
    assert "Invitation envoyée le " in on_show
    assert "Adresse refusée\u00a0: 550 5.1.1 Unknown user" in on_show
    board.status_filter.value = "bounced"
    assert list(board.users_page.rows["last_name"]) == ["Duduche"]
    board.status_filter.value = "sent"
    assert list(board.users_page.rows["last_name"]) == ["Bubu"]


def test_user_text_reaches_the_grid_as_text_and_the_detail_escaped(session_factory, tree):
    """The grid draws cells as text on a canvas (never parsed as HTML); the HTML detail of
    the chosen user escapes it."""
    hostile = "<script>alert('x')</script>"
    target = tree.client_a_users[2]
    with session_factory.begin() as session:
        user = session.scalars(select(User).where(User.login == target)).one()
        user.last_name = hostile
    board = DirectoryDashboard(session_factory, tree.system)
    board.open_client("CA")
    names = list(board.users_grid.grid.data["Nom"])
    assert any(name.startswith(hostile) for name in names)
    click_row(board.users_grid, target)
    assert "<script>" not in board.user_detail.value
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in board.user_detail.value


def test_html_table_escapes_headers_and_cells_and_says_what_is_left_out():
    import pandas as pd

    from selfcare_ops.widgets.common import html_table

    frame = pd.DataFrame({"name": ["<b>A</b>", None, "C"], "flag": [True, False, None]})
    shown = html_table(frame, headers={"name": "<Nom>"}, max_rows=2)
    assert "&lt;Nom&gt;" in shown and "&lt;b&gt;A&lt;/b&gt;" in shown and "<b>" not in shown
    assert ">oui</td>" in shown and ">non</td>" in shown and "None" not in shown
    assert shown.count("<tr>") == 3 and "… et 1 ligne de plus." in shown
    assert html_table(frame.iloc[0:0], empty="Rien <ici>.") == (
        '<p class="selfcare-empty"><i>Rien &lt;ici&gt;.</i></p>'
    )
