"""Deactivate and reactivate accounts (soft: the user stays listed, flagged, and can come back).

Deactivating also closes what would let the person in: open invitation links are revoked (their
unsent mails cancelled) and open supervision sessions end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_user
from selfcare_ops.accounts.users import lock_user, lock_user_in_client, require_administrator_left
from selfcare_ops.directory import status_words
from selfcare_ops.errors import ConflictError
from selfcare_ops.i18n import _
from selfcare_ops.invitations.issuing import close_open_invitations
from selfcare_ops.store.models import Invitation, SupervisionSession, utcnow
from selfcare_ops.support.dates import long_date


@dataclass(frozen=True)
class LifecycleResult:
    login: str
    status: str
    previous_status: str
    changed_at: datetime
    invitations_revoked: int = 0


def deactivate(
    session: Session,
    actor: Actor,
    login: str,
    *,
    now: datetime | None = None,
    cancel_reason: str = "deactivated",
) -> LifecycleResult:
    """Deactivate an account: it stays listed (struck through) and can be reactivated.

    Its open invitations are revoked and their unsent mails cancelled (``cancel_reason``:
    ``deactivated``, or ``removed`` for seed 004's removal).
    """
    now = now or utcnow()
    user = lock_user_in_client(session, login)  # the client first: see require_administrator_left
    require_user(actor, user, "deactivate")
    if user.status == "deactivated":
        raise ConflictError(
            _("{login} is already deactivated (since {day}).").format(
                login=user.login, day=long_date(user.deactivated_at)
            )
        )
    if actor.user_id is not None and actor.user_id == user.id:
        raise ConflictError(
            _("{login} is your own account: another administrator must deactivate it.").format(
                login=user.login
            )
        )
    require_administrator_left(session, user.client_id, user.id, action="deactivate")
    previous = user.status
    revoked = len(
        close_open_invitations(
            session,
            Invitation.user_id == user.id,
            status="revoked",
            now=now,
            cancel_reason=cancel_reason,
        )
    )
    session.execute(
        update(SupervisionSession)
        .where(SupervisionSession.user_id == user.id, SupervisionSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    user.status, user.deactivated_at, user.status_changed_at = "deactivated", now, now
    session.flush()
    audit.record(
        session,
        actor,
        "user.deactivate",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        before={"status": previous},
        after={"status": "deactivated", "invitations_revoked": revoked or 0},
    )
    return LifecycleResult(user.login, "deactivated", previous, now, revoked or 0)


def reactivate(
    session: Session, actor: Actor, login: str, *, now: datetime | None = None
) -> LifecycleResult:
    """Bring a deactivated account back: ``active`` if it had been activated, else a draft."""
    now = now or utcnow()
    user = lock_user(session, login)
    require_user(actor, user, "reactivate")
    if user.status != "deactivated":
        raise ConflictError(
            _("{login} is not deactivated (it is {status}).").format(
                login=user.login, status=status_words(user.status)
            )
        )
    status = "active" if user.activated_at is not None else "not_invited"
    user.status, user.deactivated_at, user.status_changed_at = status, None, now
    if status == "not_invited":
        user.invited_at = None
    session.flush()
    audit.record(
        session,
        actor,
        "user.reactivate",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        before={"status": "deactivated"},
        after={"status": status},
    )
    return LifecycleResult(user.login, status, "deactivated", now)
