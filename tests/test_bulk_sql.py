"""The one bulk insert (``bulk_sql.insert_rows``): ids in row order, defaults as a Core insert
would give them, nothing for nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from selfcare_ops.audit import event_row
from selfcare_ops.store.bulk_sql import insert_rows
from selfcare_ops.store.models import AuditEvent, ModuleSetting, Organisation, utcnow


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
