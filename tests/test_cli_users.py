"""``users edit`` and ``users create`` with every detail: what an analyst reads, the user and
the audit trail after, and an email change that voids the link mailed to the old address."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from selfcare_ops.accounts.users import change_email, lock_user
from selfcare_ops.cli import main
from selfcare_ops.invitations import service as invitations
from selfcare_ops.store.models import AuditEvent, Invitation, OutboundMessage, User

ALICE = "alice@virginie.example"  # client administrator of CA
MARC = "marc@virginie.example"  # manager of the sub-account Siège
PB_ADMIN = "admin@pb.example"
JP = "jbubu@virginietelecom.sewan.eu"  # Siège, jp.bubu@virginie.example
CEDRIC = "cpichon@virginietelecom.sewan.eu"  # Siège, no email
VERO = "vduduche@virginietelecom.sewan.eu"  # Agence


def run(db_url, *args, actor=None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _user(session_factory, login):
    with session_factory() as session:
        return session.scalar(select(User).where(User.login == login))


def _updates(session_factory, user_id):
    with session_factory() as session:
        return session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "user.update", AuditEvent.target_id == str(user_id))
            .order_by(AuditEvent.id)
        ).all()


def _invite(session_factory, tree, login):
    with session_factory.begin() as session:
        return invitations.invite_user(session, tree.system, login)


# --- users edit --------------------------------------------------------------------------------


def test_edit_saves_everything_in_one_audited_event(db_url, tree, session_factory):
    edited = run(
        db_url, "users", "edit", JP, "--first-name", "Jean-Paul", "--last-name", "Bubu-Martin",
        "--civility", "Madame", "--phone", "01 23 45 67 89", "--mobile", "06 12 34 56 78",
        "--function", "Comptable", "--language", "en", actor=ALICE,
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    assert edited.stdout == (
        f"Saved {JP}: civility, first name, last name, function, language, phone, mobile.\n"
    )
    user = _user(session_factory, JP)
    assert (user.first_name, user.last_name, user.civility) == ("Jean-Paul", "Bubu-Martin", "Mme")
    assert (user.phone, user.mobile, user.language) == ("+33123456789", "+33612345678", "en")
    (event,) = _updates(session_factory, user.id)
    assert event.actor_label == ALICE and event.target_label == JP
    assert event.before["first_name"] == "Jean-Pierre" and event.after["mobile"] == "+33612345678"
    assert event.before["language"] is None and event.after["language"] == "en"
    found = run(db_url, "users", "list", "CA", "--search", "bubu-martin", "--json")
    assert [u["login"] for u in json.loads(found.stdout)] == [JP]
    back = run(db_url, "users", "edit", JP, "--language", "inherit", "--function", "")
    assert back.exit_code == 0, back.output
    user = _user(session_factory, JP)
    assert user.language is None and user.function is None


def test_email_change_voids_the_link_and_says_how_to_send_a_new_one(db_url, tree, session_factory):
    old = _invite(session_factory, tree, JP)
    edited = run(db_url, "users", "edit", JP, "--email", "Jean-Pierre.Bubu@Virginie.example")
    assert edited.exit_code == 0, edited.output
    assert edited.stdout == (
        f"Saved {JP}: email. The invitation link sent to jp.bubu@virginie.example no longer "
        f"works. {JP} is not invited any more: `selfcare-ops invite user {JP}` (or users edit "
        "--invite) sends a new invitation to Jean-Pierre.Bubu@virginie.example.\n"
    )
    inspected = run(db_url, "invite", "inspect", old.token)
    assert inspected.exit_code == 1 and "Traceback" not in inspected.output
    user = _user(session_factory, JP)
    assert (user.status, user.invited_at) == ("not_invited", None)
    assert user.email_folded == "jean-pierre.bubu@virginie.example"
    assert "jean-pierre.bubu@virginie.example" in user.search_text
    with session_factory() as session:
        assert session.get(Invitation, old.invitation_id).status == "superseded"
    (event,) = _updates(session_factory, user.id)
    assert event.before == {"email": "jp.bubu@virginie.example", "status": "invited"}
    assert event.after == {
        "email": "Jean-Pierre.Bubu@virginie.example",
        "status": "not_invited",
        "invitations_voided": 1,
    }
    listed = run(db_url, "users", "list", "CA", "--status", "invited", "--json")
    assert JP not in [u["login"] for u in json.loads(listed.stdout)]


def test_email_change_with_invite_sends_the_new_link_to_the_new_address(
    db_url, tree, session_factory
):
    old = _invite(session_factory, tree, JP)
    edited = run(db_url, "users", "edit", JP, "--email", "jpb@virginie.example", "--invite")
    assert edited.exit_code == 0, edited.output
    assert "no longer works. A new invitation was queued for jpb@virginie.example" in edited.stdout
    assert run(db_url, "invite", "inspect", old.token).exit_code == 1
    with session_factory() as session:
        statuses = session.execute(
            select(Invitation.email, Invitation.status).order_by(Invitation.id)
        ).all()
        recipients = session.scalars(
            select(OutboundMessage.recipient).order_by(OutboundMessage.id)
        ).all()
    assert statuses == [
        ("jp.bubu@virginie.example", "superseded"),
        ("jpb@virginie.example", "pending"),
    ]
    assert recipients[-1] == "jpb@virginie.example"
    assert _user(session_factory, JP).status == "invited"


def test_a_change_of_case_only_keeps_the_link(db_url, tree, session_factory):
    old = _invite(session_factory, tree, JP)
    edited = run(db_url, "users", "edit", JP, "--email", "JP.Bubu@virginie.example", "--json")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.stdout)["invitations_voided"] == 0
    assert run(db_url, "invite", "inspect", old.token).exit_code == 0
    assert _user(session_factory, JP).status == "invited"


def test_invite_user_with_another_email_goes_through_the_same_rule(db_url, tree, session_factory):
    old = _invite(session_factory, tree, JP)
    resent = run(db_url, "invite", "user", JP, "--email", "jpb@virginie.example")
    assert resent.exit_code == 0, resent.output
    assert run(db_url, "invite", "inspect", old.token).exit_code == 1
    user = _user(session_factory, JP)
    (event,) = _updates(session_factory, user.id)
    assert event.after["invitations_voided"] == 1 and event.after["email"] == "jpb@virginie.example"
    assert user.status == "invited"


def test_login_change_is_checked_and_the_old_login_is_gone(db_url, tree, session_factory):
    renamed = run(db_url, "users", "edit", JP, "--login", "JP.Bubu@VirginieTelecom.sewan.eu")
    assert renamed.exit_code == 0, renamed.output
    new = "jp.bubu@virginietelecom.sewan.eu"
    assert renamed.stdout == f"Saved {new} (formerly {JP}): login.\n"
    assert run(db_url, "rights", "show", new).exit_code == 0
    gone = run(db_url, "rights", "show", JP)
    assert gone.exit_code == 1 and f"No user is known as '{JP}'" in gone.stderr
    assert new in _user(session_factory, new).search_text
    for wanted, message in [
        ("alice dupont", "is not a valid login"),
        ("adupont@virginietelecom.sewan.eu", "already taken"),
    ]:
        refused = run(db_url, "users", "edit", new, "--login", wanted)
        assert refused.exit_code == 1 and message in refused.stderr


@pytest.mark.parametrize(
    ("actor", "login", "args", "message"),
    [
        (None, JP, ["--email", "alice@virginie.example"], "already used by another user"),
        (None, JP, ["--email", "pas une adresse"], "is not valid"),
        (None, JP, ["--phone", "12"], "is not a valid number"),
        (None, JP, ["--mobile", "01 23 45 67 89"], "is not a mobile number"),
        (None, JP, ["--civility", "Dr"], "must be one of M., Mme"),
        (PB_ADMIN, JP, ["--first-name", "X"], "outside their scope"),
        (MARC, VERO, ["--first-name", "X"], "outside their sub-account"),
    ],
)
def test_edit_refusals_change_nothing(db_url, tree, session_factory, actor, login, args, message):
    before = _user(session_factory, login)
    refused = run(db_url, "users", "edit", login, "--last-name", "Changé", *args, actor=actor)
    assert refused.exit_code == 1
    assert message in refused.stderr and len(refused.stderr.splitlines()) == 1
    after = _user(session_factory, login)
    assert (after.last_name, after.email) == (before.last_name, before.email)
    assert _updates(session_factory, before.id) == []


def test_a_token_starting_with_a_dash_is_read_as_a_token(db_url, tree):
    inspected = run(db_url, "invite", "inspect", "-Xk3_not-a-real-token")
    assert inspected.exit_code == 1, inspected.output
    assert "No such option" not in inspected.stderr


def test_edit_without_any_field_says_which_exist(db_url, tree):
    refused = run(db_url, "users", "edit", JP)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: Name at least one field to change: email, login, civility, first_name, "
        "last_name, function, language, phone, mobile.\n"
    )


def test_manager_edits_a_user_of_their_sub_account(db_url, tree, session_factory):
    edited = run(db_url, "users", "edit", CEDRIC, "--email", "cedric@virginie.example", actor=MARC)
    assert edited.exit_code == 0, edited.output
    assert edited.stdout == f"Saved {CEDRIC}: email.\n"  # not invited: no link to void
    assert _user(session_factory, CEDRIC).email == "cedric@virginie.example"


def test_removing_the_mobile_is_refused_while_sms_notices_need_it(db_url, tree):
    assert run(db_url, "users", "edit", JP, "--mobile", "06 12 34 56 78").exit_code == 0
    assert run(db_url, "users", "notifications", JP, "--set", "order_status=sms").exit_code == 0
    refused = run(db_url, "users", "edit", JP, "--mobile", "")
    assert refused.exit_code == 1 and "switch those to email" in refused.stderr


def test_change_email_removes_an_address_and_the_invitation_with_it(session_factory, tree):
    old = _invite(session_factory, tree, JP)
    with session_factory.begin() as session:
        user = lock_user(session, JP)
        change = change_email(session, tree.manager_siege, user, None)
    assert (change.before, change.after, change.invitations_voided) == (
        "jp.bubu@virginie.example",
        None,
        1,
    )
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == JP))
        assert (user.email, user.email_folded, user.status) == (None, None, "not_invited")
        assert session.get(Invitation, old.invitation_id).status == "superseded"


# --- users create --------------------------------------------------------------------------------


def test_create_with_every_detail_and_rights(db_url, tree, session_factory):
    # Marc, a manager, grants rights only once his own "manage rights" is on (seed 004).
    refused = run(
        db_url, "users", "create", "CA", "--first-name", "Zoé", "--last-name", "Sansdroit",
        "--place-orders", "on", "--draft", actor=MARC,
    )  # fmt: skip
    assert refused.exit_code == 1 and "'manage rights' is off" in refused.stderr
    with session_factory.begin() as session:
        session.execute(update(User).where(User.email == MARC).values(right_manage_rights=True))
    created = run(
        db_url, "users", "create", "CA", "--first-name", "Zoé", "--last-name", "Martin",
        "--email", "zoe@virginie.example", "--login", "Zoe.Martin@virginietelecom.sewan.eu",
        "--civility", "Mme", "--phone", "01 23 45 67 89", "--mobile", "+33 7 56 00 00 01",
        "--function", "Achats", "--place-orders", "on", "--view-invoices", "on",
        "--sub-account", "Siège", "--draft", "--json", actor=MARC,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    login = "zoe.martin@virginietelecom.sewan.eu"
    assert json.loads(created.stdout) == {"login": login, "status": "not_invited", "invited": False}
    shown = json.loads(run(db_url, "rights", "show", login, "--json").stdout)
    assert shown["rights"] == {"manage_rights": False, "place_orders": True, "view_invoices": True}
    user = _user(session_factory, login)
    assert (user.civility, user.phone, user.mobile, user.function) == (
        "Mme",
        "+33123456789",
        "+33756000001",
        "Achats",
    )
    with session_factory() as session:
        event = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "user.create", AuditEvent.target_label == login
            )
        )
    assert event.actor_label == MARC and event.after["right_place_orders"] is True


@pytest.mark.parametrize(
    ("actor", "args", "message"),
    [
        (None, ["--phone", "0000"], "is not a valid number"),
        (None, ["--mobile", "01 23 45 67 89"], "is not a mobile number"),
        (None, ["--login", "zoé martin"], "is not a valid login"),
        (None, ["--login", JP], "already taken"),
        (PB_ADMIN, ["--place-orders", "on"], "outside their scope"),
        (MARC, ["--sub-account", "Agence", "--manage-rights", "on"], "their own sub-account"),
    ],
)
def test_create_refusals_create_nobody(db_url, tree, session_factory, actor, args, message):
    refused = run(
        db_url, "users", "create", "CA", "--first-name", "Zoé", "--last-name", "Martin", *args,
        actor=actor,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert message in refused.stderr and "Traceback" not in refused.output
    with session_factory() as session:
        assert session.scalar(select(User).where(User.last_name == "Martin")) is None
