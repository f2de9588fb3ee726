"""Invitations: single, bulk (plan then apply), admin, resend, revoke, expire, drafts, scopes."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, text, update

from selfcare_ops.accounts.users import NewUser
from selfcare_ops.errors import (
    AccessDeniedError,
    ConflictError,
    InvitationError,
    TokenError,
    ValidationError,
)
from selfcare_ops.invitations import acceptance
from selfcare_ops.invitations import admin as admin_invitations
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail.content import message_content
from selfcare_ops.store.models import (
    Administrator,
    AuditEvent,
    Base,
    Invitation,
    OutboundMessage,
    User,
    utcnow,
)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


ALICE = "adupont@virginietelecom.sewan.eu"
MARC = "mlefevre@virginietelecom.sewan.eu"
JP = "jbubu@virginietelecom.sewan.eu"
CEDRIC = "cpichon@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
ROBERT = "rconvenant@virginietelecom.sewan.eu"


def _user(session, login):
    return session.scalar(select(User).where(User.login == login))


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_tree_logins_are_the_expected_ones(tree):
    assert tree.client_a_users == [ALICE, MARC, JP, CEDRIC, VERO, ROBERT]


# --- single invitation -----------------------------------------------------------------------


def test_invite_user_marks_invited_queues_one_message_and_audits(session_factory, tree):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
    with session_factory() as session:
        user = _user(session, JP)
        assert user.status == "invited" and user.invited_at is not None
        invitation = session.get(Invitation, result.invitation_id)
        assert invitation.status == "pending" and invitation.kind == "user"
        assert invitation.token_hash == hashlib.sha256(result.token.encode()).hexdigest()
        assert len(result.token) >= 43  # 256 bits, URL-safe base64
        assert invitation.expires_at - invitation.created_at == timedelta(days=7)
        message = session.get(OutboundMessage, invitation.message_id)
        assert message.message_key.startswith(f"invitation-u{user.id}-")
        assert message.recipient == "jp.bubu@virginie.example"
        assert message.status == "queued" and message.kind == "invitation"
        events = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_label == JP)
        ).all()
        assert "invitation.send" in events


def test_ttl_comes_from_settings(session_factory, tree, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_INVITATION_TTL_DAYS", "2")
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
    with session_factory() as session:
        invitation = session.get(Invitation, result.invitation_id)
        assert invitation.expires_at - invitation.created_at == timedelta(days=2)


def test_invite_with_another_email_validates_and_stores_it(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(ValidationError, match="is not valid"):
            invitations.invite_user(session, tree.system, CEDRIC, email="not an email")
    with session_factory.begin() as session:
        with pytest.raises(ConflictError, match="already used by another user"):
            invitations.invite_user(session, tree.system, CEDRIC, email="jp.bubu@virginie.example")
    with session_factory.begin() as session:
        result = invitations.invite_user(
            session, tree.system, CEDRIC, email="C.Pichon@Virginie.example"
        )
    with session_factory() as session:
        user = _user(session, CEDRIC)
        assert user.email == "C.Pichon@virginie.example"
        assert user.email_folded == "c.pichon@virginie.example"
        assert "c.pichon@virginie.example" in user.search_text
        assert result.email == user.email and user.status == "invited"


@pytest.mark.parametrize(
    ("login", "error", "message"),
    [
        (CEDRIC, InvitationError, "has no email address"),
        (ALICE, InvitationError, "is already active"),
        (ROBERT, InvitationError, "is deactivated: reactivate the account first"),
    ],
)
def test_invite_refusals_say_why(session_factory, tree, login, error, message):
    with session_factory.begin() as session:
        with pytest.raises(error, match=message):
            invitations.invite_user(session, tree.system, login)
    with session_factory() as session:
        assert _count(session, Invitation) == 0
        assert _count(session, OutboundMessage) == 0


def test_invite_out_of_scope_is_refused(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            invitations.invite_user(session, tree.partner_b_admin, JP)
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            invitations.invite_user(session, tree.manager_siege, VERO)
    with session_factory.begin() as session:  # the manager may invite in their sub-account
        assert invitations.invite_user(session, tree.manager_siege, JP).login == JP


# --- bulk: plan and apply --------------------------------------------------------------------


def _reasons(plan):
    return dict(zip(plan.frame["login"], plan.frame["reason"], strict=True))


def test_plan_counts_and_reasons(session_factory, tree):
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, VERO)
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.partner_a_admin, client_ref="CA")
    assert list(plan.frame.columns) == bulk_invitations.PLAN_COLUMNS
    assert (plan.to_send, plan.left_out, plan.min_days, plan.client_ref) == (1, 5, 3, "CA")
    assert _reasons(plan) == {
        ALICE: "already active",
        MARC: "already active",
        JP: "",
        CEDRIC: "no email",
        VERO: "invited less than 3 days ago",
        ROBERT: "deactivated",
    }
    assert bulk_invitations.plan_message(plan) == "1 invitation to send (5 users left out)"
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA", min_days=0)
    assert _reasons(plan)[VERO] == ""
    assert plan.to_send == 2


def test_plan_of_a_sub_account_and_of_a_manager(session_factory, tree):
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(
            session, tree.system, client_ref="CA", sub_account="Agence"
        )
        assert list(plan.frame["login"]) == [VERO] and plan.sub_account == "Agence"
        mine = bulk_invitations.plan_bulk(session, tree.manager_siege, client_ref="CA")
        assert set(mine.frame["login"]) == {MARC, JP, CEDRIC}
        with pytest.raises(AccessDeniedError):
            bulk_invitations.plan_bulk(session, tree.partner_b_admin, client_ref="CA")


def test_plan_of_a_dataframe_marks_out_of_scope_and_unknown(session_factory, tree):
    with session_factory.begin() as session:
        invitations.add_user(
            session,
            tree.system,
            "CB",
            NewUser("Bea", "Autre", email="bea@beta.example"),
            draft=True,
        )
    frame = pd.DataFrame({"login": [JP, "bautre@betaclient.sewan.eu", "nobody@nowhere", CEDRIC]})
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.partner_a_admin, users=frame)
    assert _reasons(plan) == {
        JP: "",
        "bautre@betaclient.sewan.eu": "out of scope",
        "nobody@nowhere": "unknown user",
        CEDRIC: "no email",
    }
    out = plan.frame.set_index("login").loc["bautre@betaclient.sewan.eu"]
    assert pd.isna(out["email"])  # nothing about an out-of-scope user leaks into the plan
    with session_factory() as session:
        ids = plan.frame.loc[plan.frame["user_id"].notna(), ["user_id"]]
        by_id = bulk_invitations.plan_bulk(session, tree.partner_a_admin, users=ids)
    assert by_id.to_send == 1
    with session_factory() as session:
        with pytest.raises(ValidationError, match="'login', 'user_id' or 'id' column"):
            bulk_invitations.plan_bulk(session, tree.system, users=pd.DataFrame({"x": [1]}))
        with pytest.raises(ValidationError, match="for a client or for a list"):
            bulk_invitations.plan_bulk(session, tree.system)


def test_apply_twice_sends_nothing_twice(session_factory, tree):
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA")
    calls = []
    with session_factory.begin() as session:
        first = bulk_invitations.apply_bulk(
            session, tree.system, plan, progress=lambda d, t: calls.append((d, t))
        )
    assert (first.invited, first.skipped) == (2, 4)
    assert calls and calls[-1] == (2, 2)
    done = first.frame
    assert set(done.loc[done["outcome"] == "invited", "login"]) == {JP, VERO}
    assert done["invitation_id"].notna().sum() == 2
    with session_factory.begin() as session:
        second = bulk_invitations.apply_bulk(session, tree.system, plan)
    assert (second.invited, second.skipped) == (0, 6)
    assert (second.frame["outcome"] == "skipped").all()
    assert second.frame.set_index("login").loc[JP, "reason"] == "invited less than 3 days ago"
    with session_factory() as session:
        assert _count(session, Invitation) == 2
        assert _count(session, OutboundMessage) == 2


def test_a_narrowed_plan_counts_and_sends_only_what_it_keeps(session_factory, tree):
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA")
    only_jp = plan.where(plan.frame["login"] == JP)
    assert (only_jp.to_send, only_jp.left_out, plan.to_send) == (1, 0, 2)
    assert only_jp.planned_at == plan.planned_at
    assert bulk_invitations.plan_message(only_jp) == "1 invitation to send (0 users left out)"
    with session_factory.begin() as session:
        outcome = bulk_invitations.apply_bulk(session, tree.system, only_jp)
    assert (outcome.invited, list(outcome.frame["login"])) == (1, [JP])
    with session_factory() as session:
        invited = set(session.scalars(select(User.login).where(User.status == "invited")))
    assert invited == {JP}


def test_a_zero_day_plan_applied_twice_still_sends_once(session_factory, tree):
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA", min_days=0)
    for _ in range(2):
        with session_factory.begin() as session:
            bulk_invitations.apply_bulk(session, tree.system, plan)
    with session_factory() as session:
        assert _count(session, Invitation) == 2
        reasons = bulk_invitations.apply_bulk(session, tree.system, plan).frame
        assert set(reasons.loc[reasons["action"] == "invite", "reason"]) == {
            "invited since the plan was made"
        }


def test_bulk_reinvites_after_min_days_and_voids_the_old_link(session_factory, tree):
    with session_factory.begin() as session:
        old = invitations.invite_user(session, tree.system, JP)
        session.execute(
            update(User).where(User.login == JP).values(invited_at=utcnow() - timedelta(days=5))
        )
    with session_factory.begin() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA")
        assert _reasons(plan)[JP] == ""
        bulk_invitations.apply_bulk(session, tree.system, plan)
    with session_factory() as session:
        assert session.get(Invitation, old.invitation_id).status == "superseded"
        with pytest.raises(TokenError) as caught:
            acceptance.inspect_token(session, old.token)
        assert caught.value.reason == "superseded"
        pending = _count(session, Invitation, Invitation.status == "pending")
        assert pending == 2


def test_invite_user_ids_skips_the_ineligible(session_factory, tree):
    with session_factory() as session:
        ids = session.scalars(select(User.id)).all()
    seen = []
    with session_factory.begin() as session:
        count = bulk_invitations.invite_user_ids(
            session, tree.manager_siege, ids, progress=lambda d, t: seen.append((d, t))
        )
    assert count == 1  # only jbubu: Siège, email, not invited
    assert seen[-1][0] == seen[-1][1]
    with session_factory.begin() as session:
        assert bulk_invitations.invite_user_ids(session, tree.system, ids) == 1  # vduduche
        assert bulk_invitations.invite_user_ids(session, tree.system, ids) == 0
    with session_factory() as session:
        assert _count(session, User, User.status == "invited") == 2


def test_two_bulk_invitations_at_once_invite_each_user_once(session_factory, tree, add_client):
    add_client("BIG", 300)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        try:
            with session_factory() as session:
                plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="BIG")
            barrier.wait(timeout=30)
            with session_factory.begin() as session:
                outcome = bulk_invitations.apply_bulk(session, tree.system, plan)
            results.append(outcome.invited)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(results)[1] + sorted(results)[0] == 300
    with session_factory() as session:
        per_user = session.execute(
            select(Invitation.user_id, func.count()).group_by(Invitation.user_id)
        ).all()
        assert len(per_user) == 300 and all(n == 1 for _, n in per_user)
        assert _count(session, OutboundMessage) == 300


def test_two_single_invitations_of_one_user_at_once(session_factory, tree):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait(timeout=30)
        try:
            with session_factory.begin() as session:
                invitations.invite_user(session, tree.system, JP)
            outcomes.append("sent")
        except Exception as exc:  # pragma: no cover - reported below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # The row lock serialises them: the second is a resend that voids the first link.
    assert outcomes == ["sent", "sent"]
    with session_factory() as session:
        statuses = sorted(session.scalars(select(Invitation.status)))
        assert statuses == ["pending", "superseded"]


# --- resend, revoke, expire ------------------------------------------------------------------


def test_resend_voids_the_old_token(session_factory, tree):
    with session_factory.begin() as session:
        first = invitations.invite_user(session, tree.system, JP)
    with session_factory.begin() as session:
        second = invitations.resend(session, tree.system, JP)
    assert second.token != first.token
    with session_factory() as session:
        with pytest.raises(TokenError, match="replaced by a newer one") as caught:
            acceptance.inspect_token(session, first.token)
        assert caught.value.reason == "superseded"
        assert acceptance.inspect_token(session, second.token).login == JP
        assert session.get(Invitation, first.invitation_id).status == "superseded"
        with pytest.raises(InvitationError, match="never been invited"):
            invitations.resend(session, tree.system, CEDRIC)
        with pytest.raises(InvitationError, match="already active"):
            invitations.resend(session, tree.system, ALICE)


def test_revoke_by_login_and_by_email(session_factory, tree):
    with session_factory.begin() as session:
        jp = invitations.invite_user(session, tree.system, JP)
        vero = invitations.invite_user(session, tree.system, VERO)
    with session_factory.begin() as session:
        assert invitations.revoke(session, tree.client_a_admin, JP) == 1
    with session_factory.begin() as session:
        assert invitations.revoke(session, tree.system, email="V.Duduche@virginie.example") == 1
    with session_factory() as session:
        assert _user(session, JP).status == "not_invited"
        assert _user(session, JP).invited_at is None
        for result in (jp, vero):
            with pytest.raises(TokenError, match="revoked by an administrator") as caught:
                acceptance.inspect_token(session, result.token)
            assert caught.value.reason == "revoked"
        with pytest.raises(InvitationError, match="no pending invitation"):
            invitations.revoke(session, tree.system, JP)
        with pytest.raises(InvitationError, match="no pending invitation"):
            invitations.revoke(session, tree.system, email="nobody@example.com")
        with pytest.raises(ValidationError):
            invitations.revoke(session, tree.system)


def test_revoke_respects_scope(session_factory, tree):
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, VERO)
    with session_factory() as session:
        with pytest.raises(AccessDeniedError):
            invitations.revoke(session, tree.partner_b_admin, VERO)
        with pytest.raises(InvitationError, match="within your scope"):
            invitations.revoke(session, tree.manager_siege, email="v.duduche@virginie.example")


def test_expire_marks_overdue_invitations_in_scope(session_factory, tree):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
    later = utcnow() + timedelta(days=8)
    with session_factory.begin() as session:
        assert invitations.expire_overdue(session, tree.partner_b_admin, now=later) == 0
        assert invitations.expire_overdue(session, tree.system) == 0  # not yet overdue
        assert invitations.expire_overdue(session, tree.partner_a_admin, now=later) == 1
    with session_factory() as session:
        assert session.get(Invitation, result.invitation_id).status == "expired"
        assert _user(session, JP).status == "invited"
        with pytest.raises(TokenError, match="expired") as caught:
            acceptance.inspect_token(session, result.token)
        assert caught.value.reason == "expired"
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "invitation.expire" in actions


def test_only_the_token_hash_is_stored(session_factory, tree, engine):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
    token = result.token
    found = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    if token in str(value):
                        found.append(f"{table.name}.{column}")
    # The raw token exists only in the mail waiting in the outbox (it must carry the link): in
    # the recipient's slot values, the template being shared by every invitation.
    assert found == ["outbound_messages.person"]
    with session_factory() as session:
        stored = session.scalar(select(Invitation.token_hash))
        assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored


def test_sent_links_can_be_redacted_from_the_outbox(session_factory, tree, engine):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
    with session_factory.begin() as session:
        assert invitations.redact_sent_links(session) == 0  # still queued: kept
        session.execute(update(OutboundMessage).values(status="sent", sent_at=utcnow()))
    with session_factory.begin() as session:
        assert invitations.redact_sent_links(session) == 1
    with engine.connect() as connection:
        dump = " ".join(
            str(v)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table))
            for v in row
        )
    assert result.token not in dump
    assert "/invitation/[redacted]" in dump


# --- admin invitations -----------------------------------------------------------------------


def test_admin_invitation_of_a_person_with_an_account(session_factory, tree):
    with session_factory.begin() as session:
        result = admin_invitations.invite_admin(
            session, tree.partner_a_admin, "Alice@Virginie.example", "PA"
        )
    assert result.had_account and result.login == ALICE
    with session_factory() as session:
        admin = session.get(Administrator, result.administrator_id)
        alice = _user(session, ALICE)
        assert admin.user_id == alice.id and admin.active
        assert alice.status == "active"  # the account is unchanged
        message = session.scalar(select(OutboundMessage))
        assert message.kind == "admin_access"
        assert "reste le même" in message_content(message).text
        assert "/admin/" in message_content(message).text
        invitation = session.get(Invitation, result.invitation.invitation_id)
        assert invitation.kind == "admin" and invitation.status == "accepted"
    with session_factory() as session:
        with pytest.raises(ConflictError, match="already an administrator"):
            admin_invitations.invite_admin(session, tree.system, "alice@virginie.example", "PA")


def test_admin_invitation_of_a_new_person_then_acceptance(session_factory, tree):
    with session_factory.begin() as session:
        result = admin_invitations.invite_admin(
            session, tree.system, "nouvel.admin@example.com", "PA1"
        )
    assert not result.had_account
    with session_factory() as session:
        admin = session.get(Administrator, result.administrator_id)
        assert not admin.active and admin.user_id is None
        message = session.scalar(select(OutboundMessage))
        assert message.kind == "admin_invitation"
        assert "Vous n'avez pas encore de compte" in message_content(message).text
        assert result.invitation.token in message_content(message).text
        with pytest.raises(ConflictError, match="already invited"):
            admin_invitations.invite_admin(session, tree.system, "nouvel.admin@example.com", "PA1")
    with session_factory.begin() as session:
        again = invitations.resend(session, tree.system, email="nouvel.admin@example.com")
    with session_factory.begin() as session:
        acceptance.accept(
            session,
            again.token,
            civility="Mme",
            phone="06 12 34 56 78",
            password="Correct horse battery 9",
        )
    with session_factory() as session:
        admin = session.get(Administrator, result.administrator_id)
        assert admin.active and admin.password_hash.startswith("$argon2id$")


def test_admin_invitation_refusals(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(AccessDeniedError):
            admin_invitations.invite_admin(session, tree.manager_siege, "x@example.com", "CA")
        with pytest.raises(AccessDeniedError):
            admin_invitations.invite_admin(session, tree.partner_b_admin, "x@example.com", "PA")
        with pytest.raises(ValidationError, match="is not valid"):
            admin_invitations.invite_admin(session, tree.system, "x@", "PA")
        with pytest.raises(InvitationError, match="deactivated user"):
            admin_invitations.invite_admin(
                session, tree.system, "r.convenant@virginie.example", "PA"
            )


# --- draft users (seed 003) ------------------------------------------------------------------


def test_draft_user_is_invited_when_activated(session_factory, tree):
    with session_factory.begin() as session:
        draft = invitations.add_user(
            session,
            tree.system,
            "CA",
            NewUser("Zoé", "Draft", email="zoe@virginie.example"),
            draft=True,
        )
        assert draft.status == "not_invited" and draft.invitation is None
        assert _count(session, OutboundMessage) == 0
    with session_factory.begin() as session:
        result = invitations.activate(session, tree.system, draft.login)
        assert result.login == draft.login
    with session_factory() as session:
        assert _user(session, draft.login).status == "invited"
        assert _count(session, OutboundMessage) == 1
        with pytest.raises(InvitationError, match="already invited"):
            invitations.activate(session, tree.system, draft.login)


def test_created_user_is_invited_at_once_when_an_email_is_known(session_factory, tree):
    with session_factory.begin() as session:
        with_email = invitations.add_user(
            session, tree.system, "CA", NewUser("Yves", "Direct", email="yves@virginie.example")
        )
        without = invitations.add_user(session, tree.system, "CA", NewUser("Xavier", "Sans"))
    assert with_email.status == "invited" and with_email.invitation is not None
    assert without.status == "not_invited" and without.invitation is None
    with session_factory() as session:
        with pytest.raises(ValidationError):
            invitations.add_user(session, tree.system, "CA", NewUser("W", "Bad", email="bad@"))


def test_a_whole_client_invitation_invites_everyone_invitable(session_factory, tree):
    with session_factory.begin() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA")
        assert bulk_invitations.apply_bulk(session, tree.system, plan).invited == 2
    with session_factory() as session:
        assert session.execute(text("SELECT count(*) FROM outbound_messages")).scalar() == 2


def test_plan_and_apply_of_a_client_without_users(session_factory, tree):
    with session_factory.begin() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CB")
        assert plan.frame.empty and plan.to_send == 0
        assert bulk_invitations.plan_message(plan) == "0 invitations to send (0 users left out)"
        outcome = bulk_invitations.apply_bulk(session, tree.system, plan)
        assert outcome.frame.empty and outcome.invited == 0
        assert list(outcome.frame.columns) == bulk_invitations.OUTCOME_COLUMNS
        assert bulk_invitations.invite_user_ids(session, tree.system, []) == 0


def test_delivery_leaves_no_live_link_in_the_database(db_url, session_factory, tree, tmp_path):
    """After deliver_and_redact, the sent mail's body no longer holds the token."""
    from selfcare_ops.config import Settings

    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, tree.client_a_users[2])
    token = result.token
    settings = Settings.from_env(
        {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_MAILDIR": str(tmp_path / "outbox")}
    )
    report = invitations.deliver_and_redact(session_factory, settings, actor=tree.system)
    assert report.sent == 1
    delivered = next((tmp_path / "outbox" / "new").iterdir()).read_text()
    assert "/invitation/" in delivered  # the invitee got the link
    with session_factory() as session:
        message = session.scalar(select(OutboundMessage))
        mail = message_content(message)
    assert token not in mail.text and token not in (mail.html or "")
    assert token not in str(message.person)
    assert "/invitation/[redacted]" in mail.text
