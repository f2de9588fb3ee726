"""The audit trail: every mutating service writes one event in the same transaction as its change.

Events hold the actor, the action, the target and the fields before and after, as JSON-safe
dictionaries, so that ``audit list`` can answer "who changed this, when, from what to what".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, String, and_, cast, or_, select, update
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, organisation_scope, require_organisation
from selfcare_ops.errors import ExportError, NotFoundError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.store.bulk_sql import insert_rows
from selfcare_ops.store.models import AuditEvent, Invitation, Organisation, User, utcnow
from selfcare_ops.support.exports import write_csv

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
    insert_rows(
        session, AuditEvent.__table__, [event_row(actor, action, target_type, target_id, **details)]
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
    """Add many events at once (bulk work), rows made by :func:`event_row`, through the one
    bulk insert (:func:`~selfcare_ops.store.bulk_sql.insert_rows`)."""
    insert_rows(session, AuditEvent.__table__, rows)


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


def _visible(query: Select, actor: Actor) -> Select:
    """``query`` limited to the events the actor may read (:func:`event_scope`)."""
    scope = event_scope(actor)
    return query if scope is None else query.where(scope)


def _about(session: Session, target: str) -> ColumnElement[bool]:
    """Events about ``target`` (a login, reference or id). For a user, also those recorded
    under their id (before a login change, or a revocation) and their CSV import's event."""
    named = or_(AuditEvent.target_label == target, AuditEvent.target_id == target)
    users = session.execute(
        select(User.id, User.import_run_id).where(
            or_(User.login == target.strip().lower(), User.id == _as_int(target))
        )
    ).all()
    user_ids = [str(user_id) for user_id, _run in users]
    if user_ids:
        named = or_(
            named, and_(AuditEvent.target_type == "user", AuditEvent.target_id.in_(user_ids))
        )
    # A user created by a CSV import is traced by ``users.import_run_id`` to the import's
    # one event (no event per imported user): show that event in the user's history too.
    run_ids = [str(run_id) for _user, run_id in users if run_id is not None]
    if run_ids:
        named = or_(
            named,
            and_(AuditEvent.target_type == "import_run", AuditEvent.target_id.in_(run_ids)),
        )
    return named


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
    query = _visible(query, actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        query = query.where(_about(session, target))
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


# --- export ------------------------------------------------------------------------------------

EXPORT_COLUMNS = [
    "occurred_at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "organisation_ref",
    "before",
    "after",
]


def _moment(value: date | datetime, *, end: bool) -> tuple[datetime, bool]:
    """A bound as an aware UTC datetime, and whether it is exclusive. A date alone stands for
    the whole day: ``until`` a date includes that day."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC), False
    day = datetime.combine(value, time(), tzinfo=UTC)
    return (day + timedelta(days=1), True) if end else (day, False)


def _json_text(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def export_events(
    session: Session,
    actor: Actor,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    org_ref: str | None = None,
    target: str | None = None,
) -> pd.DataFrame:
    """Every event the actor may see (as :func:`list_events`) in a period, oldest first.

    ``since`` and ``until`` are inclusive (a date alone is its whole day, times are UTC);
    ``org_ref`` keeps the events of that organisation and everything below it; ``target``
    the events about one user, organisation or other target. ``before`` and ``after`` are
    JSON text, ready for a spreadsheet.
    """
    query = (
        select(AuditEvent, Organisation.ref)
        .outerjoin(Organisation, Organisation.id == AuditEvent.organisation_id)
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    )
    query = _visible(query, actor)
    start = _moment(since, end=False)[0] if since is not None else None
    if start is not None:
        query = query.where(AuditEvent.occurred_at >= start)
    if until is not None:
        stop, exclusive = _moment(until, end=True)
        if start is not None and stop <= start:
            raise ValidationError(
                _("The period ends ({until}) before it starts ({since}).").format(
                    until=until, since=since
                ),
                field="until",
                actual=str(until),
            )
        query = query.where(
            AuditEvent.occurred_at < stop if exclusive else AuditEvent.occurred_at <= stop
        )
    if org_ref:
        org = session.scalar(select(Organisation).where(Organisation.ref == org_ref))
        if org is None:
            raise NotFoundError("organisation", org_ref)
        require_organisation(actor, org, "export the audit trail of")
        query = query.where(Organisation.path.startswith(org.path, autoescape=True))
    if target:
        query = query.where(_about(session, target))
    rows = [
        (
            event.occurred_at,
            event.actor_label,
            event.action,
            event.target_type,
            event.target_id,
            event.target_label,
            ref,
            _json_text(event.before),
            _json_text(event.after),
        )
        for event, ref in session.execute(query)
    ]
    return pd.DataFrame.from_records(rows, columns=EXPORT_COLUMNS)


def export_csv(
    session: Session,
    actor: Actor,
    path: str | Path,
    **filters: Any,
) -> int:
    """:func:`export_events` written as CSV for Excel (``;``, UTF-8 with BOM, formula-like
    cells neutralised, the writer every export uses); returns how many events."""
    frame = export_events(session, actor, **filters)
    frame["occurred_at"] = [moment.isoformat() for moment in frame["occurred_at"]]
    try:
        write_csv(frame, Path(path))
    except OSError as exc:
        raise ExportError(
            _("The file {path} cannot be written: {reason}.").format(path=path, reason=exc.strerror)
        ) from exc
    return len(frame)
