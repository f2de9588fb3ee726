"""The ledger of invitations: who was invited, to which address, sent when, in which state, by whom.

Read-only and scoped like every listing: operator and partner administrators see their subtree,
a client administrator their client, a manager the invitations of their sub-account's users.
An open invitation past its expiry reads ``expired`` even before the expiry job has run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from selfcare_ops.access import Actor, organisation_scope, require_organisation, user_scope
from selfcare_ops.directory import LATEST_INVITATION_ID
from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import (
    INVITATION_STATUSES,
    OPEN_INVITATION_STATUSES,
    Administrator,
    Invitation,
    Organisation,
    User,
    utcnow,
)

LEDGER_COLUMNS = [
    "invitation_id",
    "kind",
    "login",
    "email",
    "client_ref",
    "state",
    "created_at",
    "sent_at",
    "expires_at",
    "closed_at",
    "reason",
    "created_by",
]
#: Longest ledger one call returns; ``limit`` chooses less.
MAX_LEDGER_ROWS = 10_000


def state_label(state: str) -> str:
    """An invitation state as people read it, in the current language (the ledger's ``state``
    column and JSON keep the code)."""
    labels = {
        "pending": _("waiting to be sent"),
        "sent": _("sent"),
        "bounced": _("bounced"),
        "accepted": _("accepted"),
        "revoked": _("revoked"),
        "expired": _("expired"),
        "superseded": _("superseded"),
    }
    return labels.get(state, state)


def invitation_state(status: str, expires_at: datetime | None, now: datetime) -> str:
    """The invitation's status, ``expired`` once an open one is past its expiry."""
    if status in OPEN_INVITATION_STATUSES and expires_at is not None and expires_at <= now:
        return "expired"
    return status


def list_invitations(
    session: Session,
    actor: Actor,
    *,
    client_ref: str | None = None,
    status: str | None = None,
    limit: int = 1000,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The newest invitations first, one row each (see :data:`LEDGER_COLUMNS`)."""
    if status is not None and status not in INVITATION_STATUSES:
        raise ValidationError(
            _("The invitation state must be one of {states}, not {state}.").format(
                states=", ".join(INVITATION_STATUSES), state=repr(status)
            ),
            field="status",
            actual=status,
        )
    if not 1 <= limit <= MAX_LEDGER_ROWS:
        raise ValidationError(
            _(
                "The number of invitations to list must be between 1 and {most}, not {limit}."
            ).format(most=MAX_LEDGER_ROWS, limit=limit),
            field="limit",
            limit=MAX_LEDGER_ROWS,
            actual=limit,
        )
    now = now or utcnow()
    query = (
        select(
            Invitation.id,
            Invitation.kind,
            User.login,
            Administrator.email,
            Invitation.email,
            Organisation.ref,
            Invitation.status,
            Invitation.created_at,
            Invitation.sent_at,
            Invitation.expires_at,
            Invitation.closed_at,
            Invitation.status_reason,
            Invitation.created_by,
        )
        .join(Organisation, Organisation.id == Invitation.organisation_id)
        .outerjoin(User, User.id == Invitation.user_id)
        .outerjoin(Administrator, Administrator.id == Invitation.administrator_id)
        .where(organisation_scope(actor))
        .order_by(Invitation.id.desc())
        .limit(limit)
    )
    if actor.kind == "manager":
        query = query.where(User.sub_account_id == actor.sub_account_id)
    if client_ref is not None:
        client = get_client(session, client_ref)
        require_organisation(actor, client, _("list the invitations of"))
        query = query.where(Invitation.organisation_id == client.id)
    if status == "expired":
        query = query.where(
            or_(
                Invitation.status == "expired",
                and_(Invitation.status.in_(OPEN_INVITATION_STATUSES), Invitation.expires_at <= now),
            )
        )
    elif status in OPEN_INVITATION_STATUSES:
        query = query.where(Invitation.status == status, Invitation.expires_at > now)
    elif status is not None:
        query = query.where(Invitation.status == status)
    records: list[tuple[Any, ...]] = []
    for row in session.execute(query):
        (inv_id, kind, login, admin_email, email, ref, inv_status, created, sent) = row[:9]
        expires, closed, reason, by = row[9:]
        records.append(
            (
                inv_id,
                kind,
                login or admin_email,
                email,
                ref,
                invitation_state(inv_status, expires, now),
                created,
                sent,
                expires,
                closed,
                reason,
                by,
            )
        )
    return pd.DataFrame.from_records(records, columns=LEDGER_COLUMNS)


ATTENTION_COLUMNS = ["login", "email", "client_ref", "state", "since", "reason", "what_to_do"]


def needing_attention(
    session: Session, actor: Actor, *, now: datetime | None = None
) -> pd.DataFrame:
    """Invited users whose latest invitation bounced or expired, with what to do about each.

    The invitation maintenance job prints this table: a bounced address needs a person to
    correct it (a reminder would bounce again); an expired link needs a new invitation.
    """
    now = now or utcnow()
    latest = aliased(Invitation, name="latest")  # the subquery keeps its own invitations
    query = (
        select(
            User.login,
            User.email,
            Organisation.ref,
            latest.status,
            latest.expires_at,
            latest.closed_at,
            latest.status_reason,
        )
        .join(Organisation, Organisation.id == User.client_id)
        .join(latest, latest.id == LATEST_INVITATION_ID)
        .where(
            User.status == "invited",
            user_scope(actor),
            or_(
                latest.status.in_(("bounced", "expired")),
                and_(latest.status.in_(OPEN_INVITATION_STATUSES), latest.expires_at <= now),
            ),
        )
        .order_by(Organisation.ref, User.sort_name, User.id)
    )
    records = []
    for login, email, ref, status, expires_at, closed_at, reason in session.execute(query):
        if status == "bounced":
            todo = _(
                "correct the address (selfcare-ops users edit {login} --email …), then invite again"
            ).format(login=login)
            records.append((login, email, ref, "bounced", closed_at, reason, todo))
        else:
            todo = _("send a new link (selfcare-ops invite resend {login})").format(login=login)
            records.append((login, email, ref, "expired", expires_at, None, todo))
    return pd.DataFrame.from_records(records, columns=ATTENTION_COLUMNS)
