"""Every change leaves an audit event in the same transaction, visible within scope."""

import pytest
from sqlalchemy import func, select

from selfcare_ops import audit
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.errors import AccessDeniedError
from selfcare_ops.organisations import create_organisation
from selfcare_ops.store.models import AuditEvent


def test_user_creation_is_audited_with_after_state(session_factory, tree):
    with session_factory.begin() as session:
        user = create_user(
            session,
            tree.partner_a_admin,
            "CA",
            NewUser("Zoé", "Éclair", email="zoe@virginie.example", sub_account="Agence"),
        )
    with session_factory() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.target_label == user.login))
        assert event.action == "user.create"
        assert event.actor_label == "admin@pa.example"
        assert event.actor_kind == "partner_admin"
        assert event.after["email"] == "zoe@virginie.example"
        assert event.after["status"] == "not_invited"
        assert event.before is None


def test_refused_change_writes_nothing(session_factory, tree):
    with session_factory() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(AccessDeniedError), session_factory.begin() as session:
        create_organisation(
            session, tree.partner_b_admin, kind="client", parent_ref="PA", ref="CZ", name="Refusé"
        )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_rolled_back_change_leaves_no_event(session_factory, tree):
    with session_factory() as session:
        create_user(session, tree.system, "CB", NewUser("Temp", "Oraire"))
        session.rollback()
    with session_factory() as session:
        events = audit.list_events(session, tree.system, target="toraire@betaclient.sewan.eu")
        assert events.empty


def test_list_events_is_scoped(session_factory, tree):
    with session_factory.begin() as session:
        create_user(session, tree.system, "CB", NewUser("Bob", "Beta"))
        create_user(session, tree.system, "CA", NewUser("Ana", "Alpha"))
    with session_factory() as session:
        mine = audit.list_events(session, tree.partner_b_admin, limit=500)
        assert "bbeta@betaclient.sewan.eu" in set(mine["target_label"])
        assert "aalpha@virginietelecom.sewan.eu" not in set(mine["target_label"])
        everything = audit.list_events(session, tree.system, limit=500)
        assert {"bbeta@betaclient.sewan.eu", "aalpha@virginietelecom.sewan.eu"} <= set(
            everything["target_label"]
        )
        only = audit.list_events(session, tree.system, action="organisation.create")
        assert set(only["action"]) == {"organisation.create"}
        assert list(only.columns) == audit.AUDIT_COLUMNS


def test_changed_keeps_only_differences():
    before, after = audit.changed({"a": 1, "b": 2}, {"a": 1, "b": 3})
    assert (before, after) == ({"b": 2}, {"b": 3})
