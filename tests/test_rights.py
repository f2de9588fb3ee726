"""Per-user rights, restrictions and roles (seeds 001, 002, 004), with their scopes and audit."""

import pytest
from sqlalchemy import func, select

from selfcare_ops.accounts import rights
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.errors import (
    AccessDeniedError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from selfcare_ops.organisations import create_organisation
from selfcare_ops.store.models import AuditEvent, OutboundMessage, User, UserRestriction


def logins(tree):
    alice, marc, jp, cedric, veronique, robert = tree.client_a_users
    return dict(alice=alice, marc=marc, jp=jp, cedric=cedric, veronique=veronique, robert=robert)


def give_marc_manage_rights(session_factory, tree):
    """The manager changes others' rights only with seed 004's right on (the administrator
    switches it on)."""
    with session_factory.begin() as session:
        rights.set_rights(session, tree.client_a_admin, logins(tree)["marc"], manage_rights=True)


def events(session, action):
    return session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()


# --- rights ----------------------------------------------------------------------------------


def test_rights_are_switched_one_by_one_saved_audited_and_not_mailed(session_factory, tree):
    jp = logins(tree)["jp"]
    with session_factory.begin() as session:
        result = rights.set_rights(session, tree.client_a_admin, jp, place_orders=True)
        assert result.rights == {
            "manage_rights": False,
            "place_orders": True,
            "view_invoices": False,
        }
        assert result.changed == {"place_orders": (False, True)}
        assert "place orders on" in result.describe()
        assert "not notified" in result.describe()
    with session_factory.begin() as session:
        result = rights.set_rights(
            session, tree.client_a_admin, jp, view_invoices=True, place_orders=False
        )
        assert result.changed == {"view_invoices": (False, True), "place_orders": (True, False)}
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == jp))
        assert (user.right_manage_rights, user.right_place_orders, user.right_view_invoices) == (
            False,
            False,
            True,
        )
        recorded = events(session, "user.rights")
        assert [(e.before, e.after) for e in recorded] == [
            ({"right_place_orders": False}, {"right_place_orders": True}),
            (
                {"right_place_orders": True, "right_view_invoices": False},
                {"right_place_orders": False, "right_view_invoices": True},
            ),
        ]
        assert all(e.actor_label == "alice@virginie.example" for e in recorded)
        assert all(e.target_label == jp for e in recorded)
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def test_setting_a_right_to_its_value_writes_nothing(session_factory, tree):
    with session_factory.begin() as session:
        result = rights.set_rights(session, tree.system, logins(tree)["jp"], manage_rights=False)
        assert result.changed == {}
        assert "nothing changed" in result.describe()
        assert events(session, "user.rights") == []


def test_rights_need_at_least_one_switch_and_booleans(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(ValidationError, match="at least one right"):
            rights.set_rights(session, tree.system, logins(tree)["jp"])
        with pytest.raises(ValidationError, match="True or False"):
            rights.set_rights(session, tree.system, logins(tree)["jp"], place_orders="yes")
        with pytest.raises(NotFoundError, match="nobody@nowhere"):
            rights.set_rights(session, tree.system, "nobody@nowhere", place_orders=True)


def test_who_may_change_rights(session_factory, tree):
    people = logins(tree)
    give_marc_manage_rights(session_factory, tree)
    allowed = [
        (tree.system, people["veronique"]),
        (tree.operator_admin, people["veronique"]),
        (tree.partner_a_admin, people["veronique"]),
        (tree.client_a_admin, people["veronique"]),
        (tree.manager_siege, people["jp"]),
        (tree.manager_siege, people["cedric"]),
    ]
    for actor, login in allowed:
        with session_factory.begin() as session:
            rights.set_rights(session, actor, login, manage_rights=True)
            rights.set_rights(session, actor, login, manage_rights=False)
    refused = [
        (tree.manager_siege, people["veronique"], "outside their sub-account"),
        (tree.manager_siege, people["alice"], "outside their sub-account"),
        (tree.manager_siege, people["robert"], "outside their sub-account"),
        (tree.partner_b_admin, people["jp"], "outside their scope"),
        (tree.partner_a1_admin, people["jp"], "outside their scope"),
        (tree.manager_siege, people["marc"], "their own rights"),
        (tree.client_a_admin, people["alice"], "their own rights"),
    ]
    for actor, login, reason in refused:
        with session_factory.begin() as session:
            with pytest.raises(AccessDeniedError, match=reason) as caught:
                rights.set_rights(session, actor, login, place_orders=True)
            assert login in str(caught.value) or "own" in str(caught.value)
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(User.right_place_orders)) == 0
        assert len(events(session, "user.rights")) == 2 * len(allowed) + 1  # + marc's right


# --- restrictions ----------------------------------------------------------------------------


def test_restrictions_add_remove_replace_and_list(session_factory, tree):
    jp = logins(tree)["jp"]
    admin = tree.client_a_admin
    with session_factory.begin() as session:
        result = rights.change_restrictions(
            session,
            admin,
            jp,
            add={"contract": ["CT-001", " CT-002 "], "application": ["Contact Center"]},
        )
        assert result.restrictions == {
            "application": ["Contact Center"],
            "contract": ["CT-001", "CT-002"],
        }
        assert result.added == [
            ("application", "Contact Center"),
            ("contract", "CT-001"),
            ("contract", "CT-002"),
        ]
    with session_factory.begin() as session:
        again = rights.add_restrictions(session, admin, jp, "contract", ["CT-001"])
        assert again.added == [] and "nothing changed" in again.describe()
        removed = rights.remove_restrictions(session, admin, jp, "contract", ["CT-001"])
        assert removed.removed == [("contract", "CT-001")]
        replaced = rights.replace_restrictions(
            session, admin, jp, "billing-account", ["FAC-9", "FAC-7"]
        )
        assert replaced.restrictions["billing_account"] == ["FAC-7", "FAC-9"]
        lifted = rights.replace_restrictions(session, admin, jp, "application", [])
        assert "application" not in lifted.restrictions
    with session_factory() as session:
        assert rights.list_restrictions(session, tree.manager_siege, jp) == {
            "billing_account": ["FAC-7", "FAC-9"],
            "contract": ["CT-002"],
        }
        recorded = events(session, "user.restrictions")
        assert recorded[0].before == {"application": [], "contract": []}
        assert recorded[0].after == {
            "application": ["Contact Center"],
            "contract": ["CT-001", "CT-002"],
        }
        assert (recorded[-1].before, recorded[-1].after) == (
            {"application": ["Contact Center"]},
            {"application": []},
        )
        assert len(recorded) == 4  # the idempotent add wrote nothing
        description = rights.describe_access(session, tree.system, jp)
        assert description["sub_account"] == "Siège"
        assert description["restrictions"]["contract"] == ["CT-002"]


def test_restriction_errors(session_factory, tree):
    jp = logins(tree)["jp"]
    give_marc_manage_rights(session_factory, tree)
    with session_factory.begin() as session:
        with pytest.raises(ValidationError, match="contract, billing_account, application"):
            rights.add_restrictions(session, tree.system, jp, "invoice", ["X"])
        with pytest.raises(ValidationError, match="needs a value"):
            rights.add_restrictions(session, tree.system, jp, "contract", ["   "])
        with pytest.raises(ValidationError, match="at most 120 characters") as caught:
            rights.add_restrictions(session, tree.system, jp, "contract", ["C" * 121])
        assert caught.value.limit == 120 and caught.value.actual == 121
        with pytest.raises(NotFoundError, match="present: none"):
            rights.remove_restrictions(session, tree.system, jp, "contract", ["CT-404"])
        with pytest.raises(ValidationError, match="at least one"):
            rights.change_restrictions(session, tree.system, jp)
        with pytest.raises(ValidationError, match="not both"):
            rights.change_restrictions(
                session, tree.system, jp, add={"contract": ["A"]}, replace={"contract": []}
            )
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            rights.add_restrictions(
                session, tree.manager_siege, logins(tree)["veronique"], "contract", ["A"]
            )
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            rights.list_restrictions(session, tree.partner_b_admin, jp)
        assert session.scalar(select(func.count()).select_from(UserRestriction)) == 0


# --- roles -----------------------------------------------------------------------------------


def test_roles_follow_seed_002(session_factory, tree):
    people = logins(tree)
    with session_factory.begin() as session:
        result = rights.change_role(session, tree.client_a_admin, people["jp"], "manager")
        assert (result.role, result.sub_account, result.previous_role) == (
            "manager",
            "Siège",
            "user",
        )
        promoted = rights.change_role(
            session, tree.client_a_admin, people["veronique"], "administrator"
        )
        assert promoted.sub_account is None and promoted.previous_sub_account == "Agence"
        back = rights.change_role(
            session, tree.client_a_admin, people["veronique"], "user", sub_account="agence"
        )
        assert (back.role, back.sub_account) == ("user", "Agence")
        same = rights.change_role(session, tree.client_a_admin, people["veronique"], "user")
        assert not same.changed and "nothing changed" in same.describe()
    with session_factory() as session:
        veronique = session.scalar(select(User).where(User.login == people["veronique"]))
        assert (veronique.role, veronique.sub_account.name) == ("user", "Agence")
        recorded = events(session, "user.role")
        assert [(e.before, e.after) for e in recorded] == [
            ({"role": "user", "sub_account": "Siège"}, {"role": "manager", "sub_account": "Siège"}),
            (
                {"role": "user", "sub_account": "Agence"},
                {"role": "administrator", "sub_account": None},
            ),
            (
                {"role": "administrator", "sub_account": None},
                {"role": "user", "sub_account": "Agence"},
            ),
        ]


def test_a_manager_adds_only_managers_and_users_to_their_own_sub_account(session_factory, tree):
    people = logins(tree)
    manager = tree.manager_siege
    with session_factory.begin() as session:
        assert rights.change_role(session, manager, people["cedric"], "manager").sub_account == (
            "Siège"
        )
        with pytest.raises(AccessDeniedError, match="may not grant the administrator role"):
            rights.change_role(session, manager, people["jp"], "administrator")
        with pytest.raises(AccessDeniedError, match="only to their own sub-account"):
            rights.change_role(session, manager, people["jp"], "manager", sub_account="Agence")
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            rights.change_role(session, manager, people["veronique"], "manager")
        with pytest.raises(AccessDeniedError, match="their own role"):
            rights.change_role(session, manager, people["marc"], "user")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            rights.change_role(session, tree.partner_b_admin, people["jp"], "manager")
    with session_factory() as session:
        jp = session.scalar(select(User).where(User.login == people["jp"]))
        assert (jp.role, jp.sub_account.name) == ("user", "Siège")


def test_role_errors_and_the_last_administrator(session_factory, tree):
    people = logins(tree)
    with session_factory.begin() as session:
        with pytest.raises(ValidationError, match="administrator, manager, user"):
            rights.change_role(session, tree.system, people["jp"], "owner")
        with pytest.raises(ValidationError, match="does not apply"):
            rights.change_role(
                session, tree.system, people["jp"], "administrator", sub_account="Siège"
            )
        with pytest.raises(ValidationError, match="exactly one sub-account"):
            rights.change_role(session, tree.system, people["robert"], "manager")
        with pytest.raises(NotFoundError, match="Compta"):
            rights.change_role(session, tree.system, people["jp"], "manager", sub_account="Compta")
        with pytest.raises(ConflictError, match="last active administrator of client CA"):
            rights.change_role(
                session, tree.system, people["alice"], "manager", sub_account="Siège"
            )
    with session_factory.begin() as session:
        rights.change_role(session, tree.system, people["veronique"], "administrator")
    with session_factory.begin() as session:  # an administrator who never activated: no help
        with pytest.raises(ConflictError, match="last active administrator of client CA"):
            rights.change_role(
                session, tree.system, people["alice"], "manager", sub_account="Siège"
            )
        veronique = session.scalar(select(User).where(User.login == people["veronique"]))
        veronique.status, veronique.activated_at = "active", veronique.created_at
    with session_factory.begin() as session:
        result = rights.change_role(
            session, tree.system, people["alice"], "manager", sub_account="Siège"
        )
        assert (result.role, result.sub_account) == ("manager", "Siège")


# --- the seed's gestionnaire -----------------------------------------------------------------


def test_the_first_user_of_a_client_becomes_its_administrator(session_factory, tree):
    with session_factory.begin() as session:
        create_organisation(
            session,
            tree.partner_a_admin,
            kind="client",
            parent_ref="PA",
            ref="NEW",
            name="Nouvelle Société",
            login_domain="nouvelle.example",
        )
        first = create_user(session, tree.partner_a_admin, "NEW", NewUser("Gaëlle", "Gérante"))
        second = create_user(session, tree.partner_a_admin, "NEW", NewUser("Paul", "Second"))
        assert (first.role, first.sub_account_id) == ("administrator", None)
        assert second.role == "user"
        create_organisation(
            session,
            tree.partner_a_admin,
            kind="client",
            parent_ref="PA",
            ref="NEW2",
            name="Autre Société",
        )
        chosen = create_user(
            session, tree.partner_a_admin, "NEW2", NewUser("Zoé", "Choisie", role="user")
        )
        assert chosen.role == "user"  # an explicit role wins over the rule
    with session_factory() as session:
        recorded = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "user.create", AuditEvent.target_label == first.login
            )
        )
        assert recorded.after["role"] == "administrator"


# --- two people changing one user ------------------------------------------------------------


def test_concurrent_changes_record_true_before_values(session_factory, tree, db_url):
    """B changes the user while A's change is not committed yet: B waits for A's row lock
    (PostgreSQL) or write lock (SQLite), then sees A's value, so its audit "before" is true."""
    import threading
    import time

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    jp = logins(tree)["jp"]
    outcome = {}
    first = session_factory()
    first.begin()
    rights.set_rights(first, tree.client_a_admin, jp, place_orders=True)

    def second():
        with session_factory.begin() as session:
            outcome["result"] = rights.set_rights(session, tree.system, jp, place_orders=False)

    thread = threading.Thread(target=second)
    thread.start()
    if make_url(db_url).get_backend_name() == "postgresql":
        with session_factory() as watcher:  # wait until B is really blocked on the lock
            for _ in range(500):
                if watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                    break
                watcher.rollback()
                time.sleep(0.01)
    first.commit()
    first.close()
    thread.join()
    assert outcome["result"].changed == {"place_orders": (True, False)}
    with session_factory() as session:
        recorded = events(session, "user.rights")
        assert [(e.before, e.after) for e in recorded] == [
            ({"right_place_orders": False}, {"right_place_orders": True}),
            ({"right_place_orders": True}, {"right_place_orders": False}),
        ]
        assert session.scalar(select(User.right_place_orders).where(User.login == jp)) is False


def test_every_combination_of_switches_lands_where_asked(session_factory, tree):
    import itertools

    jp = logins(tree)["jp"]
    expected = dict.fromkeys(rights.RIGHTS, False)
    writes = 0
    with session_factory.begin() as session:
        for combo in itertools.product([None, True, False], repeat=3):
            asked = {n: v for n, v in zip(rights.RIGHTS, combo, strict=True) if v is not None}
            if not asked:
                continue
            result = rights.set_rights(session, tree.system, jp, **asked)
            changed = {n for n, v in asked.items() if expected[n] != v}
            expected.update(asked)
            writes += bool(changed)
            assert result.rights == expected
            assert set(result.changed) == changed
        assert len(events(session, "user.rights")) == writes
