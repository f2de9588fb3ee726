"""What an invitee may do besides accepting: fail a few times, and ask for a new link.

Failed submissions of an invitation form are counted per token in the database, so the limit
(:data:`ATTEMPT_LIMIT` per :data:`ATTEMPT_WINDOW`) holds across every server process. An
expired or superseded link offers "send me a new link": at most once per user per
:data:`REQUEST_INTERVAL`, only to the address that received the link, and only while the user
is still invited; the new invitation is issued by the same rule as every resend (scope, states,
audit) and each request is recorded in ``link_requests`` for the analysts
(``invite list --requested``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, aliased

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_organisation, system_actor, user_scope
from selfcare_ops.errors import SelfcareError, TokenError
from selfcare_ops.invitations.ledger import invitation_state
from selfcare_ops.store.models import (
    Invitation,
    InvitationAttempt,
    LinkRequest,
    Organisation,
    User,
    utcnow,
)
from selfcare_ops.support.tokens import hash_token

ATTEMPT_LIMIT = 10
ATTEMPT_WINDOW = timedelta(minutes=15)
REQUEST_INTERVAL = timedelta(hours=24)
#: Links for which a new one may be asked: the others are still open, used or closed on
#: purpose by an administrator (revoked, bounced), who decides.
RENEWABLE_STATES = ("expired", "superseded")
REQUEST_COLUMNS = [
    "requested_at",
    "login",
    "email",
    "client_ref",
    "outcome",
    "new_invitation_state",
    "reason",
]


def invitation_of(session: Session, token: str) -> Invitation | None:
    """The invitation of a raw token, whatever its state (None for an unknown token)."""
    token = (token or "").strip()
    if not token or len(token) > 128:
        return None
    return session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))


def recent_failures(session: Session, invitation_id: int, *, now: datetime | None = None) -> int:
    """Failed submissions of this invitation in the last :data:`ATTEMPT_WINDOW`."""
    since = (now or utcnow()) - ATTEMPT_WINDOW
    return int(
        session.scalar(
            select(func.count())
            .select_from(InvitationAttempt)
            .where(
                InvitationAttempt.invitation_id == invitation_id,
                InvitationAttempt.failed_at > since,
            )
        )
        or 0
    )


def too_many_failures(session: Session, invitation_id: int, *, now: datetime | None = None) -> bool:
    return recent_failures(session, invitation_id, now=now) >= ATTEMPT_LIMIT


def record_failure(session: Session, invitation_id: int, *, now: datetime | None = None) -> None:
    """Count one failed submission (and forget those older than a day: they count no more)."""
    now = now or utcnow()
    session.execute(insert(InvitationAttempt).values(invitation_id=invitation_id, failed_at=now))
    session.execute(
        delete(InvitationAttempt).where(
            InvitationAttempt.invitation_id == invitation_id,
            InvitationAttempt.failed_at < now - timedelta(days=1),
        )
    )


@dataclass(frozen=True)
class LinkRequestOutcome:
    """What came of a request: ``queued`` (a new mail leaves), ``refused`` (``reason`` says
    why, for the analysts), ``already`` (one was made less than 24 hours ago), ``admin`` (an
    administrator's invitation: their inviter sends a new one)."""

    outcome: str
    email: str
    reason: str | None = None
    new_invitation_id: int | None = None


def request_new_link(
    session: Session, token: str, *, now: datetime | None = None
) -> LinkRequestOutcome:
    """Queue a fresh invitation for the user of an expired or superseded link, if allowed."""
    from selfcare_ops.invitations.service import resend  # the one resend rule; a heavy module

    now = now or utcnow()
    invitation = invitation_of(session, token)
    if invitation is None:
        raise TokenError("This invitation link is not valid.", reason="invalid")
    state = invitation_state(invitation.status, invitation.expires_at, now)
    if state not in RENEWABLE_STATES:
        raise TokenError(f"This invitation link is {state}: no new link is sent.", reason=state)
    if invitation.kind != "user" or invitation.user_id is None:
        return LinkRequestOutcome("admin", invitation.email)
    user = session.scalar(
        select(User)
        .where(User.id == invitation.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert user is not None
    last = session.scalar(
        select(func.max(LinkRequest.requested_at)).where(LinkRequest.user_id == user.id)
    )
    if last is not None and last > now - REQUEST_INTERVAL:
        return LinkRequestOutcome("already", invitation.email)
    reason = None
    new_id = None
    if (user.email or "").strip().lower() != invitation.email.strip().lower():
        reason = "The user's email address changed since this invitation was sent."
    elif user.status != "invited":
        reason = f"The account is {user.status}, no longer invited."
    else:
        try:
            with session.begin_nested():
                result = resend(session, system_actor(session), user.login, now=now)
            new_id = result.invitation_id
        except SelfcareError as error:
            reason = str(error)
    outcome = "queued" if new_id is not None else "refused"
    session.add(
        LinkRequest(
            user_id=user.id,
            invitation_id=invitation.id,
            new_invitation_id=new_id,
            requested_at=now,
            outcome=outcome,
            reason=reason,
        )
    )
    session.flush()
    row = audit.event_row(
        Actor(
            kind="system",
            label=invitation.email,
            organisation_id=invitation.organisation_id,
            organisation_path="",
        ),
        "invitation.request_link",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        before={"invitation_id": invitation.id, "state": state},
        after={"outcome": outcome, "new_invitation_id": new_id, "reason": reason},
        occurred_at=now,
    )
    row["actor_kind"] = "invitee"
    audit.record_many(session, [row])
    return LinkRequestOutcome(outcome, invitation.email, reason, new_id)


def list_link_requests(
    session: Session,
    actor: Actor,
    *,
    client_ref: str | None = None,
    limit: int = 200,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The invitees' requests for a new link, newest first, within the actor's scope."""
    now = now or utcnow()
    new = aliased(Invitation)
    query = (
        select(
            LinkRequest.requested_at,
            User.login,
            User.email,
            Organisation.ref,
            LinkRequest.outcome,
            new.status,
            new.expires_at,
            LinkRequest.reason,
        )
        .join(User, User.id == LinkRequest.user_id)
        .join(Organisation, Organisation.id == User.client_id)
        .outerjoin(new, new.id == LinkRequest.new_invitation_id)
        .where(user_scope(actor))
        .order_by(LinkRequest.requested_at.desc(), LinkRequest.id.desc())
        .limit(limit)
    )
    if client_ref is not None:
        client = session.scalar(select(Organisation).where(Organisation.ref == client_ref))
        if client is None:
            from selfcare_ops.errors import NotFoundError

            raise NotFoundError("client", client_ref)
        require_organisation(actor, client, "list the invitations of")
        query = query.where(Organisation.id == client.id)
    rows = [
        {
            "requested_at": r[0],
            "login": r[1],
            "email": r[2],
            "client_ref": r[3],
            "outcome": r[4],
            "new_invitation_state": invitation_state(r[5], r[6], now) if r[5] else "",
            "reason": r[7] or "",
        }
        for r in session.execute(query)
    ]
    return pd.DataFrame(rows, columns=REQUEST_COLUMNS)
