"""The ``invite`` commands and the lifecycle commands of ``users``, end to end on a database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops.cli import main
from selfcare_ops.store.models import Invitation, OutboundMessage, SupervisionSession, User

JP = "jbubu@virginietelecom.sewan.eu"
CEDRIC = "cpichon@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
ALICE = "adupont@virginietelecom.sewan.eu"
ROBERT = "rconvenant@virginietelecom.sewan.eu"
MARC = "mlefevre@virginietelecom.sewan.eu"


@pytest.fixture
def run(db_url, tree):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(
            main, list(args), env={"SELFCARE_OPS_DATABASE_URL": db_url}, input=input
        )

    return invoke


def _status(session_factory, login):
    with session_factory() as session:
        return session.scalar(select(User.status).where(User.login == login))


def _messages(session_factory):
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(OutboundMessage))


def test_invite_user_and_its_refusal(run, session_factory):
    result = run("invite", "user", JP)
    assert result.exit_code == 0, result.output
    assert "Invitation queued for jp.bubu@virginie.example" in result.output
    assert _status(session_factory, JP) == "invited"
    refused = run("invite", "user", CEDRIC)
    assert refused.exit_code == 1
    assert "has no email address" in refused.output and "Traceback" not in refused.output
    with_email = run("invite", "user", CEDRIC, "--email", "cedric@virginie.example")
    assert with_email.exit_code == 0, with_email.output
    unknown = run("invite", "user", "nobody@nowhere")
    assert unknown.exit_code == 1 and "No user is known as 'nobody@nowhere'" in unknown.output


def test_invite_client_dry_run_json(run, session_factory):
    result = run("invite", "client", "CA", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["to_send"] == 2 and data["sent"] == 0
    # people read the reason in their language (English in this suite); programs read its code
    assert {"login": CEDRIC, "reason": "no email", "reason_code": "no_email"} in data["left_out"]
    assert {"login": ROBERT, "reason": "deactivated", "reason_code": "deactivated"} in data[
        "left_out"
    ]
    assert len(data["left_out"]) == 4
    assert _messages(session_factory) == 0


def test_invite_client_asks_then_sends_once(run, session_factory):
    shown = run("invite", "client", "CA")  # no terminal, no --yes: refuses rather than guesses
    assert shown.exit_code == 2
    assert "2 invitations to send (4 users left out)" in shown.output
    assert "Left out: 2 already active, 1 deactivated, 1 no email" in shown.output
    assert "Send 2 invitations? Pass --yes to confirm without a terminal." in shown.output
    assert _messages(session_factory) == 0
    sent = run("invite", "client", "CA", "--yes")
    assert sent.exit_code == 0, sent.output
    assert "2 invitations sent." in sent.output
    again = run("invite", "client", "CA", "--yes", "--json")
    data = json.loads(again.output)
    assert data["to_send"] == 0 and data["sent"] == 0
    assert _messages(session_factory) == 2
    assert run("invite", "client", "CA", "--json").exit_code == 2  # JSON needs --yes/--dry-run


def test_invite_client_sub_account(run):
    result = run("invite", "client", "CA", "--sub-account", "Agence", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 1


def test_resend_revoke_expire(run, session_factory):
    assert run("invite", "user", JP).exit_code == 0
    resent = run("invite", "resend", JP)
    assert resent.exit_code == 0 and "previous link no longer works" in resent.output
    assert run("invite", "revoke", JP).output.strip() == "1 invitation revoked."
    assert _status(session_factory, JP) == "not_invited"
    assert run("invite", "user", VERO).exit_code == 0
    by_email = run("invite", "revoke", "--email", "v.duduche@virginie.example")
    assert by_email.output.strip() == "1 invitation revoked."
    assert run("invite", "revoke").exit_code == 2
    assert run("invite", "expire").output.strip() == "0 invitations expired."
    with session_factory() as session:
        statuses = sorted(session.scalars(select(Invitation.status)))
    assert statuses == ["revoked", "revoked", "superseded"]


def test_accept_from_the_command_line(run, session_factory, tmp_path):
    with session_factory() as session:
        from selfcare_ops.access import system_actor
        from selfcare_ops.invitations import service as invitations

        result = invitations.invite_user(session, system_actor(session), JP)
        session.commit()
    weak = tmp_path / "weak.txt"
    weak.write_text("court\n", encoding="utf-8")
    refused = run(
        "invite",
        "accept",
        result.token,
        "--civility",
        "M.",
        "--phone",
        "0185737101",
        "--password-file",
        str(weak),
    )
    assert refused.exit_code == 1 and "at least 12 characters" in refused.output
    inspected = run("invite", "inspect", result.token)
    assert inspected.exit_code == 0 and "Valid user invitation for " + JP in inspected.output
    good = tmp_path / "good.txt"
    good.write_text("Un mot de passe solide 7\n", encoding="utf-8")
    accepted = run(
        "invite",
        "accept",
        result.token,
        "--civility",
        "M.",
        "--phone",
        "0185737101",
        "--password-file",
        str(good),
    )
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.strip() == f"The account {JP} is active."
    again = run(
        "invite",
        "accept",
        result.token,
        "--civility",
        "M.",
        "--phone",
        "0185737101",
        "--password-file",
        "-",
        input="Un mot de passe solide 7\n",
    )
    assert again.exit_code == 1 and "already used" in again.output


def test_invite_admin(run, session_factory):
    existing = run("invite", "admin", "alice@virginie.example", "--org", "CA")
    assert existing.exit_code == 0, existing.output
    assert "keeps it and now administers CA" in existing.output
    new = run("invite", "admin", "new.boss@example.com", "--org", "PA")
    assert new.exit_code == 0 and "has no account" in new.output
    again = run("invite", "admin", "new.boss@example.com", "--org", "PA")
    assert again.exit_code == 1 and "already invited" in again.output
    assert run("invite", "resend", "--email", "new.boss@example.com").exit_code == 0


def test_deactivate_and_reactivate_ask_for_confirmation(run, session_factory):
    refused = run("users", "deactivate", MARC)
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert _status(session_factory, MARC) == "active"
    done = run("users", "deactivate", MARC, "--yes")
    assert done.exit_code == 0 and "is deactivated (was active)" in done.output
    assert _status(session_factory, MARC) == "deactivated"
    twice = run("users", "deactivate", MARC, "--yes")
    assert twice.exit_code == 1 and "already deactivated" in twice.output
    back = run("users", "reactivate", MARC, "--yes")
    assert back.exit_code == 0 and "is active again" in back.output


def test_supervise_prints_a_signed_link(run, session_factory):
    result = run("users", "supervise", ALICE, "--reason", "Montrer la facturation")
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith("https://montableaudebord.fr/supervision/")
    with session_factory() as session:
        record = session.scalar(select(SupervisionSession))
        assert record.reason == "Montrer la facturation"
    refused = run("users", "supervise", JP, "--reason", "x y z")
    assert refused.exit_code == 1 and "not active" in refused.output


def test_users_create_draft_or_invited(run, session_factory):
    draft = run(
        "users",
        "create",
        "CA",
        "--first-name",
        "Zoé",
        "--last-name",
        "Brouillon",
        "--email",
        "zoe@virginie.example",
        "--draft",
        "--json",
    )
    assert draft.exit_code == 0, draft.output
    data = json.loads(draft.output)
    assert data == {
        "login": "zbrouillon@virginietelecom.sewan.eu",
        "status": "not_invited",
        "invited": False,
    }
    assert _messages(session_factory) == 0
    direct = run(
        "users",
        "create",
        "CA",
        "--first-name",
        "Yann",
        "--last-name",
        "Direct",
        "--email",
        "yann@virginie.example",
        "--sub-account",
        "Agence",
    )
    assert direct.exit_code == 0 and "queued the invitation" in direct.output
    assert _status(session_factory, "ydirect@virginietelecom.sewan.eu") == "invited"
    bad = run("users", "create", "CA", "--first-name", "A", "--last-name", "B", "--email", "x@")
    assert bad.exit_code == 1 and "is not valid" in bad.output
    activate = run("users", "activate", data["login"])
    assert activate.exit_code == 0, activate.output
    assert _messages(session_factory) == 2
    assert _status(session_factory, data["login"]) == "invited"
    twice = run("users", "activate", data["login"])
    assert twice.exit_code == 1 and "already invited" in twice.output
