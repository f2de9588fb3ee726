"""The supervisions that are open now: listed for analysts, and ended by whoever opened them.

A supervision link stays valid until it expires (up to four hours); an administrator who is done
earlier ends it so that the user's banner disappears and the link stops working. Each one ended is
audited like :func:`selfcare_ops.accounts.supervision.end_supervision`, which does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, require_user, user_scope
from selfcare_ops.accounts.supervision import end_supervision
from selfcare_ops.accounts.users import get_user
from selfcare_ops.errors import ConflictError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.store.models import Organisation, SupervisionSession, User, utcnow


@dataclass(frozen=True)
class OpenSupervision:
    """One supervision not ended and not expired; :meth:`as_dict` has stable keys for programs."""

    id: int
    login: str
    client_ref: str
    actor: str
    reason: str
    started_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "login": self.login,
            "client_ref": self.client_ref,
            "actor": self.actor,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def open_supervisions(
    session: Session, actor: Actor, *, now: datetime | None = None
) -> list[OpenSupervision]:
    """The open supervisions of the users the actor may see, the soonest to expire first."""
    now = now or utcnow()
    rows = session.execute(
        select(SupervisionSession, User.login, Organisation.ref)
        .join(User, User.id == SupervisionSession.user_id)
        .join(Organisation, Organisation.id == User.client_id)
        .where(
            SupervisionSession.ended_at.is_(None),
            SupervisionSession.expires_at > now,
            user_scope(actor),
        )
        .order_by(SupervisionSession.expires_at, SupervisionSession.id)
    ).all()
    return [
        OpenSupervision(
            id=record.id,
            login=login,
            client_ref=ref,
            actor=record.actor_label,
            reason=record.reason,
            started_at=record.started_at,
            expires_at=record.expires_at,
        )
        for record, login, ref in rows
    ]


def end_supervisions_of(
    session: Session, actor: Actor, login: str, *, now: datetime | None = None
) -> list[int]:
    """End the actor's open supervisions of ``login``; returns their ids (audited, one by one).

    Refused with one sentence when the user is outside the actor's scope or when the actor has
    no open supervision of them (never opened, already ended or expired).
    """
    now = now or utcnow()
    user = get_user(session, login)
    require_user(actor, user, "end the supervision of")
    records = session.scalars(
        select(SupervisionSession)
        .where(
            SupervisionSession.user_id == user.id,
            SupervisionSession.ended_at.is_(None),
            SupervisionSession.expires_at > now,
        )
        .order_by(SupervisionSession.id)
    ).all()
    mine = [record for record in records if record.actor_label == actor.label]
    if not mine:
        others = len(records)
        message = _("{actor} has no open supervision of {login}.").format(
            actor=actor.label, login=user.login
        )
        if others:
            message += " " + ngettext(
                "{count} other supervision of this user is open, opened by someone else.",
                "{count} other supervisions of this user are open, opened by other people.",
                others,
            ).format(count=others)
        raise ConflictError(message)
    for record in mine:
        end_supervision(session, actor, record.id, now=now)
    return [record.id for record in mine]
