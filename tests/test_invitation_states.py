"""Invitation states that tell the truth, and links that never leave once they are dead.

Each test is what an analyst or an invitee would check: the state an invitation shows after its
mail left, bounced or was revoked; that a revoked or superseded link is never mailed; that no
mail in a final state keeps a live link in the database, even after a deliverer was killed.
Mail goes through a real SMTP server on loopback; every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from babel.dates import format_date
from click.testing import CliRunner
from smtp_support import MAIL_FROM, smtp_settings
from sqlalchemy import select, update

from selfcare_ops import directory
from selfcare_ops.cli import main
from selfcare_ops.errors import TokenError
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations import service as invitations
from selfcare_ops.invitations.acceptance import accept, inspect_token
from selfcare_ops.mail.deliver import deliver, mail_status
from selfcare_ops.store.models import Invitation, OutboundMessage, User, utcnow


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


TOKEN = re.compile(r"/invitation/[A-Za-z0-9_-]{20,}")
PASSWORD = "Un mot de passe 2026!"


def invite(session_factory, actor, login: str, **options):
    with session_factory.begin() as session:
        return invitations.invite_user(session, actor, login, **options)


def invitation_row(session_factory, invitation_id: int) -> Invitation:
    with session_factory() as session:
        row = session.get(Invitation, invitation_id)
        session.expunge(row)
        return row


def message_row(session_factory, message_id: int) -> OutboundMessage:
    with session_factory() as session:
        row = session.get(OutboundMessage, message_id)
        session.expunge(row)
        return row


def live_tokens(session_factory) -> list[tuple[int, str]]:
    """(message id, status) of every mail in a final state that still holds a live link."""
    found = []
    with session_factory() as session:
        for message in session.scalars(select(OutboundMessage)):
            stored = f"{message.person} {message.body_text} {message.body_html}"
            if message.status in ("sent", "failed", "cancelled") and TOKEN.search(stored):
                found.append((message.id, message.status))
    return found


def received_by(smtp_server, address: str) -> list:
    return [m for m in smtp_server.messages if str(m["To"]) == address]


def test_an_accepted_mail_makes_the_invitation_sent_at_the_servers_time(
    session_factory, tree, smtp_server
):
    login = tree.client_a_users[2]  # jp.bubu@virginie.example
    issued = invite(session_factory, tree.system, login)
    assert invitation_row(session_factory, issued.invitation_id).status == "pending"

    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert report.sent == 1
    invitation = invitation_row(session_factory, issued.invitation_id)
    message = message_row(session_factory, issued.message_id)
    assert invitation.status == "sent"
    assert invitation.sent_at == message.sent_at and invitation.sent_at is not None
    # The mail holds the link; the database does not any more.
    (mail,) = received_by(smtp_server, "jp.bubu@virginie.example")
    assert issued.token in mail.get_body(("plain",)).get_content()
    assert issued.token not in str(message.person) and "[redacted]" in message.person["link"]
    # A sent invitation is still a valid one: the invitee completes the account with it.
    with session_factory.begin() as session:
        assert inspect_token(session, issued.token).login == login
        accept(session, issued.token, civility="Mme", phone="0612345678", password=PASSWORD)
    assert invitation_row(session_factory, issued.invitation_id).status == "accepted"


def test_a_permanent_refusal_bounces_the_invitation_with_the_servers_reason(
    session_factory, tree, smtp_server
):
    smtp_server.handler.rcpt_replies = {
        "jp.bubu@virginie.example": "550 5.1.1 <jp.bubu@virginie.example>: no such mailbox"
    }
    issued = invite(session_factory, tree.system, tree.client_a_users[2])
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert (report.sent, report.failed) == (0, 1)
    invitation = invitation_row(session_factory, issued.invitation_id)
    assert invitation.status == "bounced" and invitation.closed_at is not None
    assert "550 5.1.1" in invitation.status_reason and "no such mailbox" in invitation.status_reason
    assert invitation.sent_at is None
    assert live_tokens(session_factory) == []  # a failed mail keeps no live link either
    with session_factory() as session, pytest.raises(TokenError) as refused:
        inspect_token(session, issued.token)
    assert refused.value.reason == "bounced"


def test_a_revoked_invitation_is_never_mailed(session_factory, tree, smtp_server):
    """A revocation for a mistyped address: the stranger must receive nothing."""
    login = tree.client_a_users[2]
    issued = invite(session_factory, tree.system, login, email="jp.bubu@wrong.example")
    with session_factory.begin() as session:
        assert invitations.revoke(session, tree.system, login) == 1

    message = message_row(session_factory, issued.message_id)
    assert (message.status, message.cancel_reason) == ("cancelled", "revoked")
    assert issued.token not in str(message.person)
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert report.attempted == 0
    assert smtp_server.messages == []
    with session_factory() as session:
        assert mail_status(session)["cancelled"] == 1
        assert session.scalar(select(User.status).where(User.login == login)) == "not_invited"


def test_revoking_by_email_is_recorded_under_the_user(db_url, session_factory, tree):
    login = tree.client_a_users[2]
    invite(session_factory, tree.system, login)
    runner = CliRunner()
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    revoked = runner.invoke(
        main, ["invite", "revoke", "--email", "jp.bubu@virginie.example"], env=env
    )
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(main, ["audit", "list", "--target", login, "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "invitation.revoke" in listed.output


def test_a_resend_cancels_the_superseded_mail(session_factory, tree, smtp_server):
    login = tree.client_a_users[2]
    first = invite(session_factory, tree.system, login)
    with session_factory.begin() as session:
        second = invitations.resend(session, tree.system, login)
    assert message_row(session_factory, first.message_id).cancel_reason == "superseded"
    deliver(session_factory, smtp_settings(smtp_server.port))
    (mail,) = received_by(smtp_server, "jp.bubu@virginie.example")
    text = mail.get_body(("plain",)).get_content()
    assert second.token in text and first.token not in text
    assert invitation_row(session_factory, first.invitation_id).status == "superseded"
    assert invitation_row(session_factory, second.invitation_id).status == "sent"


@pytest.mark.parametrize(
    ("command", "reason"), [("deactivate", "deactivated"), ("remove", "removed")]
)
def test_deactivating_or_removing_cancels_the_unsent_invitation(
    db_url, session_factory, tree, smtp_server, command, reason
):
    login = tree.client_a_users[2]
    issued = invite(session_factory, tree.system, login)
    result = CliRunner().invoke(
        main, ["users", command, login, "--yes"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    message = message_row(session_factory, issued.message_id)
    assert (message.status, message.cancel_reason) == ("cancelled", reason)
    assert invitation_row(session_factory, issued.invitation_id).status == "revoked"
    assert deliver(session_factory, smtp_settings(smtp_server.port)).attempted == 0
    assert smtp_server.messages == []


def test_a_link_past_its_expiry_is_not_mailed(session_factory, tree, smtp_server):
    """The deliverer's last check: an invitation that expired while its mail waited."""
    issued = invite(session_factory, tree.system, tree.client_a_users[2])
    later = utcnow() + timedelta(days=8)
    report = deliver(session_factory, smtp_settings(smtp_server.port), now=later)
    assert (report.sent, report.cancelled) == (0, 1)
    assert smtp_server.messages == []
    message = message_row(session_factory, issued.message_id)
    assert (message.status, message.cancel_reason) == ("cancelled", "expired")
    assert live_tokens(session_factory) == []


def test_a_mail_claimed_before_its_revocation_is_cancelled_by_the_deliverer(
    session_factory, tree, smtp_server
):
    """Revoked while a dead deliverer held the mail: the run that takes it over does not send."""
    issued = invite(session_factory, tree.system, tree.client_a_users[2])
    with session_factory.begin() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == issued.message_id)
            .values(status="sending", claimed_by="dead", claimed_at=utcnow())
        )
        invitations.revoke(session, tree.system, tree.client_a_users[2])
    assert message_row(session_factory, issued.message_id).status == "sending"  # left to it
    later = utcnow() + timedelta(minutes=6)
    report = deliver(session_factory, smtp_settings(smtp_server.port), now=later)
    assert (report.sent, report.cancelled) == (0, 1)
    assert smtp_server.messages == []
    assert message_row(session_factory, issued.message_id).cancel_reason == "revoked"


def test_no_final_mail_keeps_a_link_after_a_deliverer_is_killed(
    db_url, session_factory, tree, add_client, smtp_server
):
    add_client("KILL", 20)
    with session_factory.begin() as session:
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="KILL")
        bulk_invitations.apply_bulk(session, tree.system, plan)
    env = {
        **os.environ,
        "SELFCARE_OPS_DATABASE_URL": db_url,
        "SELFCARE_OPS_MAIL_TRANSPORT": "smtp",
        "SELFCARE_OPS_SMTP_HOST": "127.0.0.1",
        "SELFCARE_OPS_SMTP_PORT": str(smtp_server.port),
        "SELFCARE_OPS_MAIL_FROM": MAIL_FROM,
    }
    command = [sys.executable, "-c", "from selfcare_ops.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "mail", "deliver", "--rate", "5", "--connections", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(smtp_server.messages) < 3 and process.poll() is None:
            assert time.monotonic() < deadline, "the deliverer sent nothing within a minute"
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    # What the killed run recorded as sent already keeps no link.
    assert live_tokens(session_factory) == []
    later = utcnow() + timedelta(minutes=6)
    report = deliver(session_factory, smtp_settings(smtp_server.port), now=later)
    assert report.reclaimed >= 1
    with session_factory() as session:
        assert mail_status(session)["sent"] == 20
        states = set(session.scalars(select(Invitation.status)))
    assert states == {"sent"}
    assert live_tokens(session_factory) == []


def test_the_users_list_tells_sent_bounced_and_expired_apart(
    db_url, session_factory, tree, smtp_server
):
    """`users list` says what happened to each invitation, and filters on it."""
    smtp_server.handler.rcpt_replies = {"v.duduche@virginie.example": "550 5.1.1 Unknown user"}
    bubu, duduche = tree.client_a_users[2], tree.client_a_users[4]
    invite(session_factory, tree.system, bubu)
    invite(session_factory, tree.system, duduche)
    queued = CliRunner().invoke(
        main, ["users", "list", "CA", "--json"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
    )
    states = {row["login"]: row["state"] for row in json.loads(queued.output)}
    assert states[bubu] == states[duduche] == "pending"  # queued, not yet "sent"

    deliver(session_factory, smtp_settings(smtp_server.port))
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    french = {**env, "SELFCARE_OPS_LANG": "fr"}  # an analyst's listing, in French
    listed = CliRunner().invoke(main, ["users", "list", "CA"], env=french)
    assert listed.exit_code == 0, listed.output
    today = format_date(utcnow().date(), "long", locale="fr")  # "2 décembre 2026"
    line = {row.split()[0]: row for row in listed.output.splitlines() if "@" in row}
    assert f"invité (envoyée le {today})" in line[bubu]
    assert "adresse refusée\u00a0: 550 5.1.1 Unknown user" in line[duduche]
    assert "Invitations\u00a0: 1 envoyée, 1 refusée" in listed.output
    english = CliRunner().invoke(main, ["users", "list", "CA"], env=env)
    assert "address refused: 550 5.1.1 Unknown user" in english.output
    assert "Invitations: 1 sent, 1 bounced" in english.output

    bounced = CliRunner().invoke(
        main, ["users", "list", "CA", "--status", "bounced", "--json"], env=env
    )
    assert [row["login"] for row in json.loads(bounced.output)] == [duduche]
    as_json = json.loads(
        CliRunner().invoke(main, ["users", "list", "CA", "--json"], env=env).output
    )
    by_login = {row["login"]: row for row in as_json}
    assert by_login[bubu]["state"] == "sent" and by_login[bubu]["invitation"] == "sent"
    assert by_login[duduche]["state"] == "bounced"
    assert "550 5.1.1" in by_login[duduche]["invitation_reason"]

    # A week later, before the expiry job has run, the link has expired all the same.
    with session_factory.begin() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.status == "sent")
            .values(expires_at=utcnow() - timedelta(hours=1))
        )
    expired = CliRunner().invoke(main, ["users", "list", "CA", "--status", "expired"], env=french)
    assert bubu in expired.output and duduche not in expired.output
    assert "invitation expirée (le " in expired.output
    with session_factory() as session:
        counts = directory.state_counts(session, tree.system, "CA")
    assert (counts["expired"], counts["bounced"], counts["sent"]) == (1, 1, 0)
    # A manager counts their own sub-account only (Bubu is in Siège, Duduche in Agence).
    with session_factory() as session:
        counts = directory.state_counts(session, tree.manager_siege, "CA")
    assert (counts["expired"], counts["bounced"]) == (1, 0)


def test_invite_list_is_the_ledger_of_invitations_within_the_actors_scope(
    db_url, session_factory, tree, smtp_server
):
    smtp_server.handler.rcpt_replies = {"v.duduche@virginie.example": "550 5.1.1 Unknown user"}
    bubu, duduche = tree.client_a_users[2], tree.client_a_users[4]
    first = invite(session_factory, tree.system, bubu)
    with session_factory.begin() as session:
        invitations.resend(session, tree.system, bubu)
    invite(session_factory, tree.partner_a_admin, duduche)
    deliver(session_factory, smtp_settings(smtp_server.port))
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}

    ledger = json.loads(
        CliRunner().invoke(main, ["invite", "list", "--client", "CA", "--json"], env=env).output
    )
    by_state = sorted((row["login"], row["state"]) for row in ledger)
    assert by_state == sorted([(bubu, "superseded"), (bubu, "sent"), (duduche, "bounced")])
    bounced = next(row for row in ledger if row["state"] == "bounced")
    assert bounced["email"] == "v.duduche@virginie.example" and "550" in bounced["reason"]
    assert bounced["created_by"] == "admin@pa.example" and bounced["sent_at"] is None
    sent = next(row for row in ledger if row["state"] == "sent")
    assert sent["sent_at"] is not None and sent["client_ref"] == "CA"
    superseded = next(row for row in ledger if row["invitation_id"] == first.invitation_id)
    assert superseded["state"] == "superseded"

    only_bounced = CliRunner().invoke(main, ["invite", "list", "--status", "bounced"], env=env)
    assert duduche in only_bounced.output and bubu not in only_bounced.output
    # The manager of Siège sees Bubu's invitations (Siège), not Duduche's (Agence).
    managed = CliRunner().invoke(
        main, ["--as", "marc@virginie.example", "invite", "list", "--json"], env=env
    )
    assert managed.exit_code == 0, managed.output
    assert {row["login"] for row in json.loads(managed.output)} == {bubu}
    # Partner B administers another subtree: client CA is out of its scope.
    outside = CliRunner().invoke(
        main, ["--as", "admin@pb.example", "invite", "list", "--client", "CA"], env=env
    )
    assert outside.exit_code == 1 and "Error:" in outside.output


def test_a_draft_stays_out_of_bulk_invitations_until_activated(db_url, session_factory, tree):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    created = CliRunner().invoke(
        main,
        [
            "users",
            "create",
            "CA",
            "--first-name",
            "Denise",
            "--last-name",
            "Brouillon",
            "--email",
            "denise@virginie.example",
            "--draft",
        ],
        env=env,
    )
    assert created.exit_code == 0, created.output
    login = next(word for word in created.output.split() if word.startswith("dbrouillon@"))
    planned = CliRunner().invoke(main, ["invite", "client", "CA", "--dry-run", "--json"], env=env)
    plan = json.loads(planned.output)
    row = next(r for r in plan["left_out"] if r["login"] == login)
    assert row["reason"].startswith("draft")
    sent = CliRunner().invoke(main, ["invite", "client", "CA", "--yes"], env=env)
    assert sent.exit_code == 0, sent.output
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == login))
        assert (user.status, user.draft) == ("not_invited", True)
    listed = CliRunner().invoke(main, ["users", "list", "CA", "--status", "draft"], env=env)
    assert login in listed.output and "brouillon" in listed.output

    activated = CliRunner().invoke(main, ["users", "activate", login], env=env)
    assert activated.exit_code == 0, activated.output
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == login))
        assert (user.status, user.draft) == ("invited", False)


def test_a_bounced_address_is_not_invited_again_until_corrected(session_factory, tree, smtp_server):
    smtp_server.handler.rcpt_replies = {"jp.bubu@virginie.example": "550 5.1.1 Unknown user"}
    login = tree.client_a_users[2]
    invite(session_factory, tree.system, login)
    deliver(session_factory, smtp_settings(smtp_server.port))
    with session_factory() as session:
        plan = bulk_invitations.plan_bulk(
            session, tree.system, client_ref="CA", min_days=0, now=utcnow() + timedelta(days=9)
        )
    row = plan.frame.set_index("login").loc[login]
    assert row["action"] == "skip" and "refused" in row["reason"]
    # The corrected address is invited again.
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, login, email="jp.bubu@virginie-tel.example")
    with session_factory() as session:
        latest = session.scalars(
            select(Invitation)
            .where(Invitation.user_id == User.id, User.login == login)
            .order_by(Invitation.id.desc())
        ).first()
        assert (latest.status, latest.email) == ("pending", "jp.bubu@virginie-tel.example")


def test_managers_are_always_given_a_sub_account(db_url, session_factory, tree):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    refused = CliRunner().invoke(
        main,
        [
            "users",
            "create",
            "CA",
            "--first-name",
            "Mona",
            "--last-name",
            "Nosub",
            "--role",
            "manager",
            "--draft",
        ],
        env=env,
    )
    assert refused.exit_code == 1 and "needs a sub-account" in refused.output
    # A manager creating people puts them in their own sub-account without being told.
    mine = CliRunner().invoke(
        main,
        [
            "--as",
            "marc@virginie.example",
            "users",
            "create",
            "CA",
            "--first-name",
            "Paul",
            "--last-name",
            "Siege",
            "--draft",
        ],
        env=env,
    )
    assert mine.exit_code == 0, mine.output
    with session_factory() as session:
        user = session.scalar(select(User).where(User.last_name == "Siege"))
        assert user.sub_account.name == "Siège"


def test_mail_redact_blanks_links_left_by_an_older_release(db_url, session_factory, tree):
    """A failed mail written before links were blanked at the end: `mail redact` repairs it."""
    issued = invite(session_factory, tree.system, tree.client_a_users[2])
    with session_factory.begin() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == issued.message_id)
            .values(status="failed", last_error="550 gone")
        )
    assert live_tokens(session_factory) == [(issued.message_id, "failed")]
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    refused = CliRunner().invoke(main, ["--as", "admin@pa.example", "mail", "redact"], env=env)
    assert refused.exit_code == 1 and "may not rewrite the outbox" in refused.output
    assert live_tokens(session_factory) != []
    done = CliRunner().invoke(main, ["--lang", "fr", "mail", "redact"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("1 message avait un lien actif")
    assert live_tokens(session_factory) == []
