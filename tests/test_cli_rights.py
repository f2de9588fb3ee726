"""The rights, subaccounts and apikeys commands, and users role/move/profile/notifications and
clients details: output, exit codes, refusals as one sentence, and the database after."""

import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from selfcare_ops.cli import main
from selfcare_ops.store.models import (
    ApiKey,
    AuditEvent,
    Organisation,
    SubAccount,
    User,
    UserRestriction,
)

ALICE = "alice@virginie.example"  # client administrator of CA
MARC = "marc@virginie.example"  # manager of the sub-account Siège
PB_ADMIN = "admin@pb.example"  # administrator of another partner


def run(db_url, *args, actor=None, input=None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def people(tree):
    names = ["alice", "marc", "jp", "cedric", "veronique", "robert"]
    return dict(zip(names, tree.client_a_users, strict=True))


def give_marc_manage_rights(db_url, tree):
    """Seed 004: the manager changes others' rights only once an administrator gave the right."""
    given = run(db_url, "rights", "set", people(tree)["marc"], "--manage-rights", "on", actor=ALICE)
    assert given.exit_code == 0, given.output


def test_rights_set_show_and_restrict(db_url, tree, session_factory):
    jp = people(tree)["jp"]
    give_marc_manage_rights(db_url, tree)
    done = run(
        db_url, "rights", "set", jp, "--place-orders", "on", "--view-invoices", "on", actor=MARC
    )
    assert done.exit_code == 0, done.output
    assert "place orders on, view invoices on" in done.output
    assert "not notified" in done.output
    as_json = run(db_url, "rights", "set", jp, "--view-invoices", "off", "--json", actor=ALICE)
    assert json.loads(as_json.output) == {
        "login": jp,
        "rights": {"manage_rights": False, "place_orders": True, "view_invoices": False},
        "changed": ["view_invoices"],
    }
    restricted = run(
        db_url,
        "rights",
        "restrict",
        jp,
        "--contract",
        "CT-1",
        "--contract",
        "CT-2",
        "--application",
        "Contact Center",
    )
    assert restricted.exit_code == 0 and "+contract CT-1" in restricted.output
    removed = run(db_url, "rights", "restrict", jp, "--remove", "--contract", "CT-1")
    assert removed.exit_code == 0 and "-contract CT-1" in removed.output
    replaced = run(
        db_url,
        "rights",
        "restrict",
        jp,
        "--replace",
        "--billing-account",
        "FAC-1",
        "--clear",
        "application",
    )
    assert replaced.exit_code == 0, replaced.output
    shown = json.loads(run(db_url, "rights", "show", jp, "--json").output)
    assert shown == {
        "login": jp,
        "client": "CA",
        "status": "not_invited",
        "role": "user",
        "sub_account": "Siège",
        "rights": {"manage_rights": False, "place_orders": True, "view_invoices": False},
        "restrictions": {"billing_account": ["FAC-1"], "contract": ["CT-2"]},
    }
    text = run(db_url, "rights", "show", jp).output
    assert "place orders: on" in text and "applications: all (no restriction)" in text
    with session_factory() as session:
        assert sorted(session.scalars(select(UserRestriction.value)).all()) == ["CT-2", "FAC-1"]
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_label == jp)
        ).all()
        assert actions.count("user.rights") == 2 and actions.count("user.restrictions") == 3


def test_rights_refusals_are_one_sentence_with_exit_status_1(db_url, tree, session_factory):
    p = people(tree)
    give_marc_manage_rights(db_url, tree)
    outside = run(db_url, "rights", "set", p["veronique"], "--place-orders", "on", actor=MARC)
    assert outside.exit_code == 1
    assert "may not change the rights of" in outside.output
    assert "outside their sub-account" in outside.output
    assert "Traceback" not in outside.output
    other_partner = run(db_url, "rights", "set", p["jp"], "--manage-rights", "on", actor=PB_ADMIN)
    assert other_partner.exit_code == 1 and "outside their scope" in other_partner.output
    nothing = run(db_url, "rights", "set", p["jp"])
    assert nothing.exit_code == 1 and "at least one right" in nothing.output
    bad_value = run(db_url, "rights", "set", p["jp"], "--place-orders", "yes")
    assert bad_value.exit_code == 2
    both = run(db_url, "rights", "restrict", p["jp"], "--remove", "--replace", "--contract", "X")
    assert both.exit_code == 2 and "not both" in both.output
    missing = run(db_url, "rights", "restrict", p["jp"], "--remove", "--contract", "X")
    assert missing.exit_code == 1 and "present: none" in missing.output
    with session_factory() as session:
        assert not session.scalar(select(User.id).where(User.right_place_orders))


def test_users_role_and_move(db_url, tree, session_factory):
    p = people(tree)
    made = run(db_url, "users", "role", p["cedric"], "manager", actor=MARC)
    assert made.exit_code == 0 and "now manager of sub-account Siège" in made.output
    admin = run(db_url, "users", "role", p["jp"], "administrator", actor=MARC)
    assert admin.exit_code == 1 and "may not grant the administrator role" in admin.output
    promoted = run(db_url, "users", "role", p["veronique"], "administrator", actor=ALICE)
    assert promoted.exit_code == 0 and "now administrator" in promoted.output
    with_sub = run(db_url, "users", "role", p["jp"], "administrator", "--sub-account", "Siège")
    assert with_sub.exit_code == 1 and "does not apply" in with_sub.output
    moved = run(db_url, "users", "move", p["jp"], "Agence", actor=ALICE)
    assert moved.exit_code == 0 and "moved to 'Agence' (was 'Siège')" in moved.output
    refused = run(db_url, "users", "move", p["cedric"], "Agence", actor=MARC)
    assert refused.exit_code == 1 and "own sub-account" in refused.output
    usage = run(db_url, "users", "move", p["jp"])
    assert usage.exit_code == 2
    out = run(db_url, "users", "move", p["robert"], "--none")
    assert out.exit_code == 0 and "nothing changed" in out.output
    with session_factory() as session:
        roles = dict(session.execute(select(User.login, User.role)).all())
        assert (roles[p["cedric"]], roles[p["veronique"]], roles[p["jp"]]) == (
            "manager",
            "administrator",
            "user",
        )


def test_subaccounts_commands(db_url, tree, session_factory):
    listed = json.loads(run(db_url, "subaccounts", "list", "CA", "--json", actor=ALICE).output)
    assert [(s["name"], s["users"], s["active"], s["managers"]) for s in listed] == [
        ("Agence", 1, 0, 0),
        ("Siège", 3, 1, 1),
    ]
    text = run(db_url, "subaccounts", "list", "CA").output
    assert "Siège" in text and "2 users in no sub-account" in text
    mine = json.loads(run(db_url, "subaccounts", "list", "CA", "--json", actor=MARC).output)
    assert [s["name"] for s in mine] == ["Siège"]
    created = run(db_url, "subaccounts", "create", "CA", "Direction", actor=ALICE)
    assert created.exit_code == 0 and "'Direction' created in client CA" in created.output
    duplicate = run(db_url, "subaccounts", "create", "CA", "DIRECTION", actor=ALICE)
    assert duplicate.exit_code == 1
    assert "already has a sub-account named 'Direction'" in duplicate.output
    renamed = run(db_url, "subaccounts", "rename", "CA", "direction", "Direction générale")
    assert renamed.exit_code == 0 and "renamed 'Direction générale'" in renamed.output
    manager = run(db_url, "subaccounts", "create", "CA", "Compta", actor=MARC)
    assert manager.exit_code == 1 and "only administrators may" in manager.output
    manager = run(db_url, "subaccounts", "rename", "CA", "Siège", "Paris", actor=MARC)
    assert manager.exit_code == 1 and "only administrators may" in manager.output
    other = run(db_url, "subaccounts", "list", "CA", actor=PB_ADMIN)
    assert other.exit_code == 1 and "outside their scope" in other.output
    with session_factory() as session:
        assert sorted(session.scalars(select(SubAccount.name)).all()) == [
            "Agence",
            "Direction générale",
            "Siège",
        ]


def test_apikeys_commands_show_the_key_once(db_url, tree, session_factory):
    created = run(db_url, "apikeys", "create", "CA", "--json", actor=ALICE)
    assert created.exit_code == 0, created.output
    made = json.loads(created.output)
    key = made["key"]
    assert key.startswith("sco_") and made["prefix"] == key[:12]
    listed = run(db_url, "apikeys", "list", "CA", "--json", actor=ALICE)
    assert key not in listed.output
    assert [k["status"] for k in json.loads(listed.output)] == ["active"]
    unconfirmed = run(db_url, "apikeys", "regenerate", "CA")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    regenerated = run(db_url, "apikeys", "regenerate", "CA", "--yes", actor=ALICE)
    assert regenerated.exit_code == 0
    new_key = regenerated.stdout.strip()
    assert new_key.startswith("sco_") and new_key != key
    assert "shown only once" in regenerated.stderr
    table = run(db_url, "apikeys", "list", "CA")
    assert table.exit_code == 0, table.output
    assert table.output.count("revoked") == 2 and table.output.count(" active ") == 1
    assert key not in table.output and new_key not in table.output
    again = run(db_url, "apikeys", "create", "CA")
    assert again.exit_code == 1 and "already has an active API key" in again.output
    manager = run(db_url, "apikeys", "create", "CA", actor=MARC)
    assert manager.exit_code == 1 and "only administrators may" in manager.output
    revoked = run(db_url, "apikeys", "revoke", "CA", "--yes")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with session_factory() as session:
        hashes = set(session.scalars(select(ApiKey.key_hash)).all())
        assert hashes == {hashlib.sha256(k.encode()).hexdigest() for k in (key, new_key)}
        assert session.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None))) is None
    audit = run(db_url, "audit", "list", "--json").output
    assert key not in audit and new_key not in audit


def test_profile_notifications_and_company_details(db_url, tree, session_factory):
    p = people(tree)
    saved = run(
        db_url,
        "users",
        "profile",
        p["jp"],
        "--phone",
        "01 23 45 67 89",
        "--mobile",
        "06 12 34 56 78",
        "--function",
        "Acheteur",
        actor=MARC,
    )
    assert saved.exit_code == 0 and "profile of" in saved.output and "is saved" in saved.output
    shown = json.loads(run(db_url, "users", "profile", p["jp"], "--json").output)
    assert (shown["phone"], shown["mobile"], shown["function"]) == (
        "+33123456789",
        "+33612345678",
        "Acheteur",
    )
    bad = run(db_url, "users", "profile", p["jp"], "--mobile", "01 23 45 67 89")
    assert bad.exit_code == 1 and "not a mobile number" in bad.output
    sms = run(db_url, "users", "notifications", p["cedric"], "--set", "order_status=sms")
    assert sms.exit_code == 1 and "has no mobile number" in sms.output
    ok = run(
        db_url,
        "users",
        "notifications",
        p["jp"],
        "--set",
        "order_status=email,sms",
        "--set",
        "new_user=off",
    )
    assert ok.exit_code == 0, ok.output
    prefs = json.loads(run(db_url, "users", "notifications", p["jp"], "--json").output)
    assert prefs["order_status"] == ["email", "sms"] and prefs["new_user"] == []
    assert "new_user: off" in run(db_url, "users", "notifications", p["jp"]).output
    details = run(
        db_url,
        "clients",
        "details",
        "CA",
        "--address",
        "10 cité Paradis",
        "--postcode",
        "75010",
        "--city",
        "Paris",
        actor=ALICE,
    )
    assert details.exit_code == 0 and "company details of CA are saved" in details.output
    manager = run(db_url, "clients", "details", "CA", "--city", "Lyon", actor=MARC)
    assert manager.exit_code == 1 and "only administrators may" in manager.output
    read = json.loads(run(db_url, "clients", "details", "CA", "--json", actor=MARC).output)
    assert read == {
        "ref": "CA",
        "name": "Virginie Télécom",
        "address": "10 cité Paradis",
        "postcode": "75010",
        "city": "Paris",
    }
    with session_factory() as session:
        assert session.scalar(select(Organisation.city).where(Organisation.ref == "CA")) == "Paris"
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions[-3:] == ["user.profile", "user.notifications", "organisation.details"]


@pytest.mark.parametrize(
    "command",
    [
        ["rights", "set", "nobody@example.org", "--place-orders", "on"],
        ["subaccounts", "list", "NOPE"],
        ["apikeys", "list", "NOPE"],
        ["clients", "details", "NOPE"],
    ],
)
def test_unknown_names_are_reported(db_url, tree, command):
    result = run(db_url, *command)
    assert result.exit_code == 1
    assert result.output.startswith("Error: No ") and "is known as" in result.output


def test_users_remove_is_the_confirmed_soft_deactivation_of_seed_004(db_url, tree, session_factory):
    p = people(tree)
    unconfirmed = run(db_url, "users", "remove", p["jp"], actor=MARC)
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    outside = run(db_url, "users", "remove", p["veronique"], "--yes", actor=MARC)
    assert outside.exit_code == 1 and "outside their sub-account" in outside.output
    removed = run(db_url, "users", "remove", p["jp"], "--yes", actor=MARC)
    assert removed.exit_code == 0, removed.output
    assert "is removed: the account is deactivated (was not invited)" in removed.output
    again = run(db_url, "users", "remove", p["jp"], "--yes")
    assert again.exit_code == 1 and "already deactivated" in again.output
    listed = json.loads(run(db_url, "users", "list", "CA", "--json").output)
    row = next(u for u in listed if u["login"] == p["jp"])
    assert (row["status"], row["deactivated"]) == ("deactivated", True)  # still listed, flagged
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == p["jp"]))
        assert user.status == "deactivated" and user.deactivated_at is not None
        assert (
            session.scalar(
                select(AuditEvent.actor_label).where(AuditEvent.action == "user.deactivate")
            )
            == MARC
        )
