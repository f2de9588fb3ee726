"""The audit trail: every mutating service writes one event in the same transaction as its change.

Events hold the actor, the action, the target and the fields before and after, as JSON-safe
dictionaries, so that ``audit list`` can answer "who changed this, when, from what to what".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, String, and_, cast, insert, or_, select, update
from sqlalchemy.orm import Session

from .access import Actor, organisation_scope
from .bulk_sql import insert_rows
from .models import AuditEvent, Invitation, Organisation, User, utcnow

_PLAIN = frozenset({str, int, float, bool, type(None)})


def _json_safe(value: Any) -> Any:
    if type(value) in _PLAIN:  # most values of bulk events: nothing to convert
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    return value


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` as a JSON-safe dictionary."""
    return {name: _json_safe(getattr(obj, name)) for name in fields}


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only the keys whose value differs, for compact before/after records."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def event_row(
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object | None,
    *,
    target_label: str | None = None,
    organisation_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """One audit event as a row dictionary (for :func:`record_many`)."""
    return {
        "occurred_at": occurred_at or utcnow(),
        "actor_kind": actor.kind,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "target_label": target_label,
        "organisation_id": organisation_id,
        "before": _json_safe(dict(before)) if before is not None else None,
        "after": _json_safe(dict(after)) if after is not None else None,
    }


def record(
    session: Session, actor: Actor, action: str, target_type: str, target_id: object, **details: Any
) -> None:
    """Add one audit event to the session's transaction (committed with the change)."""
    session.execute(
        insert(AuditEvent), [event_row(actor, action, target_type, target_id, **details)]
    )


def record_progress(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object,
    *,
    after: Mapping[str, Any],
    **details: Any,
) -> None:
    """Write the one event of a long operation, or bring its ``after`` up to date.

    For work committed in several transactions (a CSV import's batches): the event exists from
    the first commit, so what an interrupted run did is traced, and each later commit updates
    it to what is done so far.
    """
    found = session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.target_type == target_type,
            AuditEvent.target_id == str(target_id),
            AuditEvent.action == action,
        )
        .limit(1)
    )
    if found is None:
        record(session, actor, action, target_type, target_id, after=after, **details)
    else:
        session.execute(
            update(AuditEvent).where(AuditEvent.id == found).values(after=_json_safe(dict(after)))
        )


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add many events at once (bulk work), rows made by :func:`event_row`.

    Rows with the same keys (every :func:`event_row`) go to the driver in one executemany:
    for bulk imports the ORM's per-row work cost more than the database's.
    """
    if not rows:
        return
    keys = rows[0].keys()
    if all(row.keys() == keys for row in rows):
        insert_rows(session, AuditEvent.__table__, rows)
    else:
        session.execute(insert(AuditEvent), rows)


AUDIT_COLUMNS = [
    "occurred_at",
    "actor_kind",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "organisation_ref",
    "before",
    "after",
]


def _as_int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 18 else -1


def event_scope(actor: Actor) -> ColumnElement[bool] | None:
    """A WHERE clause on ``audit_events`` (outer-joined to its ``Organisation``) limiting them to
    what the actor may read; None for the whole trail (the system actor).

    Administrators read the events of their subtree (client administrators: their client). A
    manager reads only the events about their sub-account: about its users (by the users it
    holds now), their invitations, and the sub-account itself; the rest of the client's trail
    holds other sub-accounts' people with their values before and after. Everyone also reads
    the events they caused themselves.
    """
    if actor.kind == "system" or actor.organisation_path == "/":
        return None
    own = AuditEvent.actor_label == actor.label
    if actor.kind != "manager":
        return or_(organisation_scope(actor), own)
    in_sub_account = User.sub_account_id == actor.sub_account_id
    user_ids = select(cast(User.id, String)).where(in_sub_account)
    invitation_ids = (
        select(cast(Invitation.id, String))
        .join(User, User.id == Invitation.user_id)
        .where(in_sub_account)
    )
    about = or_(
        and_(AuditEvent.target_type == "user", AuditEvent.target_id.in_(user_ids)),
        and_(AuditEvent.target_type == "invitation", AuditEvent.target_id.in_(invitation_ids)),
        and_(
            AuditEvent.target_type == "sub_account",
            AuditEvent.target_id == str(actor.sub_account_id),
        ),
    )
    return or_(and_(AuditEvent.organisation_id == actor.organisation_id, about), own)


def list_events(
    session: Session,
    actor: Actor,
    *,
    limit: int = 100,
    action: str | None = None,
    target: str | None = None,
    actor_label: str | None = None,
) -> pd.DataFrame:
    """The newest events the actor may read (:func:`event_scope`), newest first."""
    query = (
        select(AuditEvent, Organisation.ref)
        .outerjoin(Organisation, Organisation.id == AuditEvent.organisation_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    scope = event_scope(actor)
    if scope is not None:
        query = query.where(scope)
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        named = or_(AuditEvent.target_label == target, AuditEvent.target_id == target)
        # A user created by a CSV import is traced by ``users.import_run_id`` to the import's
        # one event (no event per imported user): show that event in the user's history too.
        run_ids = [
            str(run_id)
            for run_id in session.scalars(
                select(User.import_run_id).where(
                    or_(User.login == target, User.id == _as_int(target)),
                    User.import_run_id.is_not(None),
                )
            )
        ]
        if run_ids:
            named = or_(
                named,
                and_(AuditEvent.target_type == "import_run", AuditEvent.target_id.in_(run_ids)),
            )
        query = query.where(named)
    if actor_label:
        query = query.where(AuditEvent.actor_label == actor_label)
    rows = [
        {
            "occurred_at": event.occurred_at,
            "actor_kind": event.actor_kind,
            "actor_label": event.actor_label,
            "action": event.action,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "target_label": event.target_label,
            "organisation_ref": ref,
            "before": event.before,
            "after": event.after,
        }
        for event, ref in session.execute(query)
    ]
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)
