"""The one bulk insert (``bulk_sql.insert_rows``): ids in row order, defaults as a Core insert
would give them, nothing for nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from row_support import new_user_columns
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.audit import event_row
from selfcare_ops.store import bulk_sql
from selfcare_ops.store.bulk_sql import COPY_FROM_ROWS, insert_rows
from selfcare_ops.store.models import (
    AuditEvent,
    ClientUserCount,
    ModuleSetting,
    Organisation,
    User,
    recount_users,
    utcnow,
)


def test_ids_come_back_in_row_order(session_factory, tree) -> None:
    labels = [f"bulk-{n}" for n in range(7)]
    with session_factory.begin() as session:
        ids = insert_rows(
            session,
            AuditEvent.__table__,
            [event_row(tree.system, "test.bulk", "thing", n, target_label=n) for n in labels],
            return_ids=True,
        )
        assert ids == sorted(ids) and len(set(ids)) == 7
    with session_factory() as session:
        stored = dict(session.execute(select(AuditEvent.id, AuditEvent.target_label)).all())
    assert [stored[i] for i in ids] == labels


def test_left_out_columns_get_their_python_default(session_factory, tree) -> None:
    before = utcnow()
    with session_factory.begin() as session:
        org_id = session.scalar(select(Organisation.id).where(Organisation.ref == "CB"))
        assert (
            insert_rows(
                session,
                ModuleSetting.__table__,
                [{"organisation_id": org_id, "module": "contacts", "enabled": False}],
            )
            == []
        )  # no ids asked for
    with session_factory() as session:
        stamp = session.scalar(
            select(ModuleSetting.updated_at).where(ModuleSetting.organisation_id == org_id)
        )
    assert stamp is not None and stamp.replace(tzinfo=None) >= before.replace(tzinfo=None)


def test_no_rows_write_nothing(session_factory, tree) -> None:
    with session_factory.begin() as session:
        count = session.scalar(select(func.count()).select_from(AuditEvent))
        assert insert_rows(session, AuditEvent.__table__, [], return_ids=True) == []
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == count


# --- many rows: COPY on PostgreSQL (psycopg 3), executemany elsewhere --------------------------

MANY = COPY_FROM_ROWS * 3


def test_many_rows_keep_their_values_ids_and_json(session_factory, tree) -> None:
    """Above the COPY threshold: the same ids in row order, JSON, timestamps and NULLs."""
    now = utcnow()
    events = [
        event_row(
            tree.system,
            "test.many",
            "thing",
            n,
            target_label=f'many;{n}\t"quoted"\\ é' if n % 2 else None,
            after={"n": n, "text": "a\nb"},
            occurred_at=now,
        )
        for n in range(MANY)
    ]
    with session_factory.begin() as session:
        ids = insert_rows(session, AuditEvent.__table__, events, return_ids=True)
    assert len(ids) == MANY and ids == sorted(ids)
    with session_factory() as session:
        stored = {
            event.id: event
            for event in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(ids)))
        }
    for n, event_id in enumerate(ids):
        event = stored[event_id]
        assert event.target_id == str(n)
        assert event.target_label == (f'many;{n}\t"quoted"\\ é' if n % 2 else None)
        assert event.after == {"n": n, "text": "a\nb"}
        assert event.occurred_at.replace(tzinfo=None) == now.replace(tzinfo=None)


def test_a_constraint_broken_by_many_rows_raises_and_writes_none(session_factory, tree) -> None:
    """The rows meet the same constraints: a duplicate key is the driver's integrity error, as
    SQLAlchemy raises it, and the transaction keeps none of the rows."""
    with session_factory() as session:
        start = session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) + 1
        count = session.scalar(select(func.count()).select_from(AuditEvent))
    rows = [
        {**event_row(tree.system, "test.dup", "thing", n), "id": start + n} for n in range(MANY)
    ]
    rows[-1]["id"] = start  # the first row's key again
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        insert_rows(session, AuditEvent.__table__, rows)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == count


def test_many_users_feed_the_per_client_counts(session_factory, tree) -> None:
    """The after-insert hook runs for a bulk write of users too: no count needs correcting."""
    now = utcnow()
    with session_factory() as session:
        client_id = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
    users = [
        {
            "client_id": client_id,
            "login": f"bulk.copy{n}@example.test",
            "first_name": "Bulk",
            "last_name": f"Copy{n}",
            "email": f"bulk.copy{n}@example.test",
            "role": "user",
            "status": "invited" if n % 3 else "not_invited",
            "invited_at": now if n % 3 else None,
            "created_at": now,
            **derived_columns(
                "Bulk", f"Copy{n}", f"bulk.copy{n}@example.test", f"bulk.copy{n}@example.test"
            ),
        }
        for n in range(MANY)
    ]
    with session_factory.begin() as session:
        insert_rows(session, User.__table__, users, return_ids=True)
    with session_factory.begin() as session:
        assert recount_users(session.connection()) == {}
        invited = session.scalar(
            select(ClientUserCount.users).where(
                ClientUserCount.client_id == client_id, ClientUserCount.status == "invited"
            )
        )
    assert invited >= sum(1 for user in users if user["status"] == "invited")


def test_rows_where_in_reads_typed_values_across_chunks(session_factory, tree, monkeypatch):
    """The bulk lookup returns every matching row once, with Python values (booleans and
    timestamps typed as Core gives them), whatever the number of chunks."""
    monkeypatch.setattr(bulk_sql, "IN_CHUNK", 2)
    with session_factory() as session:
        expected = {
            user.login: (user.right_manage_rights, user.created_at)
            for user in session.scalars(select(User))
        }
        logins = [*expected, "nobody@example.test"]
        found = bulk_sql.rows_where_in(
            session,
            User.__table__,
            ("login", "right_manage_rights", "created_at"),
            "login",
            logins,
        )
    assert sorted(row["login"] for row in found) == sorted(expected)
    for row in found:
        assert type(row["right_manage_rights"]) is bool
        assert (row["right_manage_rights"], row["created_at"]) == expected[row["login"]]


def test_columns_and_same_values_feed_the_per_client_counts(session_factory, tree) -> None:
    """Rows given column by column, the client and the status the same for all (``same``):
    every row is written with them and the after-insert hook counts them all."""
    from selfcare_ops.store.bulk_sql import insert_columns

    now = utcnow()
    with session_factory() as session:
        client_id = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
        before = session.scalar(
            select(ClientUserCount.users).where(
                ClientUserCount.client_id == client_id, ClientUserCount.status == "not_invited"
            )
        )
    logins = [f"columns{n}@example.test" for n in range(MANY)]
    derived = [derived_columns("Col", login, login, None) for login in logins]
    with session_factory.begin() as session:
        ids = insert_columns(
            session,
            User.__table__,
            {
                "login": logins,
                "last_name": logins,
                **{name: [row[name] for row in derived] for name in derived[0]},
            },
            same={
                "client_id": client_id,
                "first_name": "Col",
                **new_user_columns(now),
            },
            count=MANY,
            return_ids=True,
        )
    assert len(ids) == MANY and ids == sorted(ids)
    with session_factory.begin() as session:
        assert recount_users(session.connection()) == {}
        stored = dict(session.execute(select(User.id, User.login).where(User.id.in_(ids))).all())
        after = session.scalar(
            select(ClientUserCount.users).where(
                ClientUserCount.client_id == client_id, ClientUserCount.status == "not_invited"
            )
        )
    assert [stored[i] for i in ids] == logins
    assert after == (before or 0) + MANY


def test_rows_that_are_all_the_same_are_all_written(session_factory, tree) -> None:
    """No per-row column at all (only ``same``): still ``count`` rows, not one, not endless."""
    from selfcare_ops.store.bulk_sql import insert_columns

    with session_factory() as session:
        count = session.scalar(select(func.count()).select_from(AuditEvent))
    row = event_row(tree.system, "test.same", "thing", 1, target_label="same")
    with session_factory.begin() as session:
        assert insert_columns(session, AuditEvent.__table__, {}, same=row, count=5) == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == count + 5
        labels = session.scalars(
            select(AuditEvent.target_label).where(AuditEvent.action == "test.same")
        ).all()
    assert labels == ["same"] * 5


def test_a_column_of_the_wrong_length_is_refused(session_factory, tree) -> None:
    from selfcare_ops.store.bulk_sql import insert_columns

    row = event_row(tree.system, "test.short", "thing", 1)
    del row["target_label"]
    with pytest.raises(ValueError, match="2 values for 3 rows"), session_factory() as session:
        insert_columns(
            session, AuditEvent.__table__, {"target_label": ["a", "b"]}, same=row, count=3
        )
    with pytest.raises(ValueError, match="both"), session_factory() as session:
        insert_columns(
            session, AuditEvent.__table__, {"action": ["a"]}, same={**row, "action": "b"}, count=1
        )
