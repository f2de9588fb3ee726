"""Supervision: an administrator 'connects directly' to a user's Selfcare (seed 000).

A supervision session has a reason, an expiry and a signed link
``<portal>/supervision/<id>.<expiry>.<token>.<signature>``: the HMAC signature (the toolkit's
secret key) lets the portal reject a forged or altered link before any lookup, and the token's
hash in the database ties the link to one recorded, audited session. While a session lasts,
:func:`supervision_banner` tells the portal to frame the page with its banner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_user
from selfcare_ops.accounts.users import get_user
from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import InvitationError, TokenError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.store.models import SupervisionSession, User, utcnow
from selfcare_ops.support.tokens import hash_token, new_token, sign, verify

DEFAULT_MINUTES = 30
MAX_MINUTES = 240
SUPERVISION_PATH = "/supervision/"


@dataclass(frozen=True)
class SupervisionResult:
    session_id: int
    login: str
    reason: str
    expires_at: datetime
    link: str = field(repr=False)


@dataclass(frozen=True)
class SupervisionBanner:
    """What the portal's banner says while a supervision lasts."""

    session_id: int
    actor_label: str
    reason: str
    expires_at: datetime

    @property
    def text(self) -> str:
        """The banner's sentence, in the current language."""
        return _("Session supervised by {actor} until {time} UTC — reason: {reason}").format(
            actor=self.actor_label, time=f"{self.expires_at:%H:%M}", reason=self.reason
        )


def _status_word(status: str) -> str:
    """An account state as a word of the current language ("non invité", "not invited")."""
    words = {
        "not_invited": _("not invited"),
        "invited": _("invited"),
        "active": _("active"),
        "deactivated": _("deactivated"),
    }
    return words.get(status, status)


def _payload(session_id: int, expires_at: datetime, token: str) -> str:
    return f"{session_id}.{int(expires_at.timestamp())}.{token}"


def supervise(
    session: Session,
    actor: Actor,
    login: str,
    *,
    reason: str,
    minutes: int = DEFAULT_MINUTES,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> SupervisionResult:
    """Open a time-limited, audited supervision of an active user's Selfcare."""
    settings = settings or get_settings()
    now = (now or utcnow()).replace(microsecond=0)
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ValidationError(
            _("A supervision needs a reason the user will see (at least 3 characters)."),
            field="reason",
            limit=3,
            actual=len(reason),
        )
    if len(reason) > 500:
        raise ValidationError(
            _("The reason must have at most {limit} characters; it has {length}.").format(
                limit=500, length=len(reason)
            ),
            field="reason",
            limit=500,
            actual=len(reason),
        )
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValidationError(
            _("A supervision lasts 1 to {most} minutes, not {minutes}.").format(
                most=MAX_MINUTES, minutes=minutes
            ),
            field="minutes",
            limit=MAX_MINUTES,
            actual=minutes,
        )
    user = get_user(session, login)
    require_user(actor, user, _("supervise"))
    if user.status != "active":
        raise InvitationError(
            _("{login} cannot be supervised: the account is {status}, not active.").format(
                login=user.login, status=_status_word(user.status)
            )
        )
    token = new_token()
    expires_at = now + timedelta(minutes=minutes)
    record = SupervisionSession(
        user_id=user.id,
        actor_label=actor.label,
        reason=reason,
        token_hash=hash_token(token),
        started_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    payload = _payload(record.id, expires_at, token)
    link = f"{settings.portal_url}{SUPERVISION_PATH}{payload}.{sign(payload, settings)}"
    audit.record(
        session,
        actor,
        "user.supervise",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        after={"supervision_id": record.id, "reason": reason, "expires_at": expires_at},
    )
    return SupervisionResult(record.id, user.login, reason, expires_at, link)


def open_supervision(
    session: Session,
    link: str,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> SupervisionSession:
    """Check a supervision link (what the portal does when it is opened); read-only."""
    now = now or utcnow()
    code = (link or "").strip().rstrip("/").rsplit("/", 1)[-1]
    parts = code.split(".")
    invalid = TokenError(_("This supervision link is not valid."), reason="invalid")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise invalid
    payload = ".".join(parts[:3])
    if not verify(payload, parts[3], settings):
        raise invalid
    record = session.get(SupervisionSession, int(parts[0]))
    if record is None or record.token_hash != hash_token(parts[2]):
        raise invalid
    if record.ended_at is not None:
        raise TokenError(
            _("This supervision ended at {time} UTC.").format(time=f"{record.ended_at:%H:%M}"),
            reason="ended",
        )
    if datetime.fromtimestamp(int(parts[1]), UTC) <= now or record.expires_at <= now:
        raise TokenError(
            _("This supervision link expired at {time} UTC.").format(
                time=f"{record.expires_at:%H:%M}"
            ),
            reason="expired",
        )
    return record


def record_opening(
    session: Session, record: SupervisionSession, *, now: datetime | None = None
) -> bool:
    """Note the first opening of a supervision link and audit it; later openings record
    nothing (True when this one was the first)."""
    now = now or utcnow()
    first = session.execute(
        update(SupervisionSession)
        .where(SupervisionSession.id == record.id, SupervisionSession.opened_at.is_(None))
        .values(opened_at=now)
        .execution_options(synchronize_session=False)
    )
    if first.rowcount != 1:
        return False
    user = session.get(User, record.user_id)
    assert user is not None
    row = audit.event_row(
        Actor(
            kind="system",
            label=record.actor_label,
            organisation_id=user.client_id,
            organisation_path="",
        ),
        "user.supervise_open",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        after={"supervision_id": record.id},
        occurred_at=now,
    )
    row["actor_kind"] = "supervisor"
    audit.record_many(session, [row])
    return True


def end_supervision(
    session: Session, actor: Actor, session_id: int, *, now: datetime | None = None
) -> None:
    """End a supervision before its expiry (the banner disappears)."""
    now = now or utcnow()
    record = session.get(SupervisionSession, session_id)
    if record is None or record.ended_at is not None:
        raise InvitationError(
            _("There is no open supervision session {number}.").format(number=session_id)
        )
    user = session.get(User, record.user_id)
    assert user is not None
    require_user(actor, user, _("end the supervision of"))
    record.ended_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "user.supervise_end",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        after={"supervision_id": session_id},
    )


def supervision_banner(
    session: Session, user: User | str, *, now: datetime | None = None
) -> SupervisionBanner | None:
    """The banner the portal shows to ``user`` now, or None when nobody supervises them."""
    now = now or utcnow()
    user_id = get_user(session, user).id if isinstance(user, str) else user.id
    record = session.scalar(
        select(SupervisionSession)
        .where(
            SupervisionSession.user_id == user_id,
            SupervisionSession.ended_at.is_(None),
            SupervisionSession.expires_at > now,
        )
        .order_by(SupervisionSession.expires_at.desc())
        .limit(1)
    )
    if record is None:
        return None
    return SupervisionBanner(record.id, record.actor_label, record.reason, record.expires_at)
