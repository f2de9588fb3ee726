"""Invitations: one user, a whole client (plan, then apply), an administrator; resend, revoke,
expire; draft users activated later.

The account lifecycle is ``not_invited -> invited -> active -> deactivated`` (seeds 000, 003).
Every state change is a conditional UPDATE on the user's row (``... WHERE status = ...``) taken
under the row's lock, so two analysts inviting the same client at once create each invitation
once, and applying a plan twice sends nothing twice. Acceptance lives in :mod:`.acceptance`,
deactivation in :mod:`.lifecycle`, supervision in :mod:`.supervision`; they are re-exported here.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from . import audit
from .acceptance import AcceptResult, TokenInfo, accept, inspect_token
from .access import (
    Actor,
    can_see_user,
    organisation_scope,
    require_organisation,
    require_user,
    user_scope,
)
from .config import get_settings
from .errors import (
    AccessDeniedError,
    ConflictError,
    InvitationError,
    NotFoundError,
    ValidationError,
)
from .issuing import (
    INVITATION_PATH,
    MESSAGE_KINDS,
    Issued,
    MailFrames,
    Target,
    issue,
    supersede_pending,
)
from .lifecycle import LifecycleResult, deactivate, reactivate
from .models import (
    Administrator,
    Invitation,
    Organisation,
    OutboundMessage,
    SubAccount,
    User,
    utcnow,
)
from .organisations import get_client, get_organisation
from .supervision import SupervisionBanner, SupervisionResult, supervise, supervision_banner
from .users import NewUser, create_user, derived_columns, find_sub_account

__all__ = [
    "DEFAULT_MIN_DAYS",
    "AcceptResult",
    "AdminInvitationResult",
    "CreatedUser",
    "InvitationResult",
    "LifecycleResult",
    "SupervisionBanner",
    "SupervisionResult",
    "TokenInfo",
    "accept",
    "activate",
    "add_user",
    "apply_bulk",
    "deactivate",
    "expire_overdue",
    "inspect_token",
    "invite_admin",
    "invite_demo_client",
    "invite_user",
    "invite_user_ids",
    "normalise_email",
    "plan_bulk",
    "reactivate",
    "redact_sent_links",
    "resend",
    "revoke",
    "supervise",
    "supervision_banner",
]

#: A bulk invitation skips users invited less than this many days ago.
DEFAULT_MIN_DAYS = 3
CHUNK = 500
PLAN_COLUMNS = ["user_id", "login", "email", "status", "invited_at", "action", "reason"]
OUTCOME_COLUMNS = ["user_id", "login", "email", "action", "outcome", "reason", "invitation_id"]
REASON_NO_EMAIL = "no email"
REASON_ACTIVE = "already active"
REASON_DEACTIVATED = "deactivated"
REASON_OUT_OF_SCOPE = "out of scope"
REASON_UNKNOWN = "unknown user"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class InvitationResult:
    """What an invitation produced (the token is only in memory, for the caller's tests)."""

    invitation_id: int
    kind: str
    email: str
    expires_at: datetime
    message_id: int
    status: str = "pending"
    login: str | None = None
    token: str = field(default="", repr=False)

    @classmethod
    def from_issued(cls, issued: Issued) -> InvitationResult:
        return cls(
            invitation_id=issued.invitation_id,
            kind=issued.target.kind,
            email=issued.email,
            expires_at=issued.expires_at,
            message_id=issued.message_id,
            status=issued.status,
            login=issued.target.login,
            token=issued.token,
        )


def normalise_email(email: str) -> str:
    """A syntactically valid address (no DNS lookup), normalised; else one clear sentence."""
    text = (email or "").strip()
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(
            f"The email address {text!r} is not valid: {exc}", field="email", actual=text
        ) from exc


def _locked_user(session: Session, login: str) -> User:
    """The user by login, re-read under a row lock (PostgreSQL) for a state change."""
    user = session.scalar(
        select(User)
        .where(User.login == login.strip().lower())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFoundError("user", login)
    return user


def _refuse_state(user: User, *, allow_invited: bool = True) -> None:
    if user.status == "active":
        raise InvitationError(
            f"{user.login} is already active (since {user.activated_at:%Y-%m-%d}): "
            "there is nothing to invite."
        )
    if user.status == "deactivated":
        raise InvitationError(
            f"{user.login} is deactivated: reactivate the account first "
            f"(selfcare-ops users reactivate {user.login})."
        )
    if user.status == "invited" and not allow_invited:
        raise InvitationError(
            f"{user.login} was already invited on {user.invited_at:%Y-%m-%d}: "
            f"use selfcare-ops invite resend {user.login} to send a new link."
        )


def _set_email(session: Session, actor: Actor, user: User, email: str) -> None:
    """Store a newly given email on the user (validated, unique among users)."""
    email = normalise_email(email)
    if user.email and user.email.lower() == email.lower():
        return
    taken = session.scalar(
        select(exists().where(User.email_folded == email.lower(), User.id != user.id))
    )
    if taken:
        raise ConflictError(f"The email {email} is already used by another user.")
    before = {"email": user.email}
    user.email = email
    for key, value in derived_columns(user.first_name, user.last_name, user.login, email).items():
        setattr(user, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "user.update",
        "user",
        user.id,
        target_label=user.login,
        organisation_id=user.client_id,
        before=before,
        after={"email": email},
    )


def _user_target(user: User) -> Target:
    assert user.email
    return Target(
        email=user.email,
        organisation_id=user.client_id,
        user_id=user.id,
        login=user.login,
        first_name=user.first_name,
        last_name=user.last_name,
        language=user.language,
    )


def _mark_invited(session: Session, user: User, now: datetime) -> None:
    user.status, user.invited_at, user.status_changed_at = "invited", now, now
    session.flush()


def invite_user(
    session: Session,
    actor: Actor,
    login: str,
    *,
    email: str | None = None,
    now: datetime | None = None,
    _draft_only: bool = False,
) -> InvitationResult:
    """Invite one user, with the account's email or ``email`` (validated, then stored).

    Refused with one sentence when the user has no email, is active, is deactivated or is out of
    the actor's scope. Inviting an invited user again sends a new link and voids the old one.
    """
    now = now or utcnow()
    user = _locked_user(session, login)
    require_user(actor, user, "invite")
    _refuse_state(user, allow_invited=not _draft_only)
    if email:
        _set_email(session, actor, user, email)
    if not user.email:
        raise InvitationError(
            f"{user.login} has no email address: give one (--email) to invite them; "
            "users without email cannot receive an invitation."
        )
    supersede_pending(session, user_ids=[user.id], now=now)
    _mark_invited(session, user, now)
    (issued,) = issue(session, actor, [_user_target(user)], now=now)
    return InvitationResult.from_issued(issued)


def resend(
    session: Session,
    actor: Actor,
    login: str | None = None,
    *,
    email: str | None = None,
    now: datetime | None = None,
) -> InvitationResult:
    """A new link for an invited user (by login) or a pending administrator (by email).

    The previous link stops working (status ``superseded``).
    """
    now = now or utcnow()
    if login is None and email is None:
        raise ValidationError("Name the invitation to resend: a login or an email.")
    if login is None:
        assert email is not None
        admin = _pending_admin(session, email)
        if admin is None:
            user_login = session.scalar(
                select(User.login).where(User.email_folded == email.strip().lower())
            )
            if user_login is None:
                raise NotFoundError("invited user or administrator with email", email)
            login = user_login
        else:
            require_organisation(actor, admin.organisation, "invite administrators to")
            supersede_pending(session, administrator_ids=[admin.id], now=now)
            (issued,) = issue(
                session, actor, [_admin_target(admin)], now=now, action="invitation.resend"
            )
            return InvitationResult.from_issued(issued)
    user = _locked_user(session, login)
    require_user(actor, user, "invite")
    if user.status == "not_invited":
        raise InvitationError(
            f"{user.login} has never been invited: use selfcare-ops invite user {user.login}."
        )
    _refuse_state(user)
    if not user.email:
        raise InvitationError(f"{user.login} has no email address: an invitation cannot be sent.")
    supersede_pending(session, user_ids=[user.id], now=now)
    _mark_invited(session, user, now)
    (issued,) = issue(session, actor, [_user_target(user)], now=now, action="invitation.resend")
    return InvitationResult.from_issued(issued)


def _pending_admin(session: Session, email: str) -> Administrator | None:
    return session.scalar(
        select(Administrator).where(
            Administrator.email == email.strip().lower(),
            Administrator.active.is_(False),
            Administrator.user_id.is_(None),
        )
    )


# --- revoke and expire -----------------------------------------------------------------------


def revoke(
    session: Session,
    actor: Actor,
    login: str | None = None,
    *,
    email: str | None = None,
    now: datetime | None = None,
) -> int:
    """Revoke the pending invitations of a user (by login) or sent to an email; returns how many.

    Revoked users go back to ``not_invited``; their link stops working.
    """
    now = now or utcnow()
    if (login is None) == (email is None):
        raise ValidationError("Revoke by login or by email, one of the two.")
    if login is not None:
        user = _locked_user(session, login)
        require_user(actor, user, "revoke the invitation of")
        invitations = list(
            session.scalars(
                select(Invitation).where(
                    Invitation.user_id == user.id, Invitation.status == "pending"
                )
            )
        )
        if not invitations:
            raise InvitationError(f"{user.login} has no pending invitation to revoke.")
    else:
        assert email is not None
        wanted = email.strip().lower()
        candidates = list(
            session.execute(
                select(Invitation, Organisation)
                .join(Organisation, Organisation.id == Invitation.organisation_id)
                .where(func.lower(Invitation.email) == wanted, Invitation.status == "pending")
            ).tuples()
        )
        invitations = [inv for inv, org in candidates if _may_manage(session, actor, inv, org)]
        if not invitations:
            hidden = " within your scope" if candidates else ""
            raise InvitationError(f"There is no pending invitation to {wanted}{hidden} to revoke.")
    ids = [inv.id for inv in invitations]
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(ids), Invitation.status == "pending")
        .values(status="revoked", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    user_ids = {inv.user_id for inv in invitations if inv.user_id is not None}
    if user_ids:
        session.execute(
            update(User)
            .where(User.id.in_(user_ids), User.status == "invited")
            .values(status="not_invited", invited_at=None, status_changed_at=now)
            .execution_options(synchronize_session=False)
        )
    audit.record_many(
        session,
        [
            audit.event_row(
                actor,
                "invitation.revoke",
                "invitation",
                inv.id,
                target_label=inv.email,
                organisation_id=inv.organisation_id,
                before={"status": "pending"},
                after={"status": "revoked"},
                occurred_at=now,
            )
            for inv in invitations
        ],
    )
    session.expire_all()
    return len(invitations)


def _may_manage(session: Session, actor: Actor, inv: Invitation, org: Organisation) -> bool:
    if inv.user_id is not None:
        user = session.get(User, inv.user_id)
        return user is not None and can_see_user(actor, user, org)
    try:
        require_organisation(actor, org)
    except AccessDeniedError:
        return False
    return actor.kind != "manager"


def expire_overdue(session: Session, actor: Actor, *, now: datetime | None = None) -> int:
    """Mark every pending invitation past its expiry as ``expired``; returns how many.

    Meant for the scheduled job; the users stay ``invited`` (a resend or the next bulk
    invitation gives them a new link).
    """
    now = now or utcnow()
    query = (
        select(Invitation.id, Invitation.email, Invitation.organisation_id)
        .join(Organisation, Organisation.id == Invitation.organisation_id)
        .where(Invitation.status == "pending", Invitation.expires_at <= now)
        .where(organisation_scope(actor))
    )
    if actor.kind == "manager":
        query = query.join(User, User.id == Invitation.user_id).where(
            User.sub_account_id == actor.sub_account_id
        )
    overdue = list(session.execute(query).tuples())
    expired = 0
    for start in range(0, len(overdue), 1000):
        chunk = overdue[start : start + 1000]
        result = session.execute(
            update(Invitation)
            .where(Invitation.id.in_([row[0] for row in chunk]), Invitation.status == "pending")
            .values(status="expired", closed_at=now)
            .execution_options(synchronize_session=False)
        )
        expired += result.rowcount or 0
        audit.record_many(
            session,
            [
                audit.event_row(
                    actor,
                    "invitation.expire",
                    "invitation",
                    inv_id,
                    target_label=email,
                    organisation_id=org_id,
                    before={"status": "pending"},
                    after={"status": "expired"},
                    occurred_at=now,
                )
                for inv_id, email, org_id in chunk
            ],
        )
    return expired


# --- bulk: plan then apply -------------------------------------------------------------------


def _recent_reason(min_days: int) -> str:
    return f"invited less than {min_days} days ago"


def _reason(
    status: str, email: str | None, invited_at: datetime | None, cutoff: datetime, min_days: int
) -> str:
    """Why a user in scope is left out of a bulk invitation ('' when they are invited)."""
    if status == "deactivated":
        return REASON_DEACTIVATED
    if status == "active":
        return REASON_ACTIVE
    if not email:
        return REASON_NO_EMAIL
    if status == "invited" and invited_at is not None and invited_at >= cutoff:
        return _recent_reason(min_days)
    return ""


_USER_COLUMNS = (
    User.id,
    User.login,
    User.email,
    User.status,
    User.invited_at,
    User.client_id,
    User.sub_account_id,
    Organisation.path,
)


def _selected_users(session: Session, users: Any) -> tuple[list[Any], list[str]]:
    """Rows for a DataFrame / Series / list of logins or ids; unknown keys are returned apart."""
    if isinstance(users, pd.DataFrame):
        column = next((c for c in ("user_id", "id", "login") if c in users.columns), None)
        if column is None:
            raise ValidationError(
                "The users to invite need a 'login', 'user_id' or 'id' column; "
                f"the table has {', '.join(map(str, users.columns)) or 'no columns'}."
            )
        keys: list[Any] = users[column].dropna().tolist()
    elif isinstance(users, pd.Series):
        keys = users.dropna().tolist()
    else:
        keys = list(users)
    by_id = bool(keys) and all(
        isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in keys
    )
    wanted = [int(k) for k in keys] if by_id else [str(k).strip().lower() for k in keys]
    key_column = User.id if by_id else User.login
    rows: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        rows.extend(
            session.execute(
                select(*_USER_COLUMNS)
                .join(Organisation, Organisation.id == User.client_id)
                .where(key_column.in_(wanted[start : start + CHUNK]))
            ).all()
        )
    found = {row.id if by_id else row.login for row in rows}
    unknown = [str(k) for k in dict.fromkeys(wanted) if k not in found]
    order = {k: i for i, k in enumerate(dict.fromkeys(wanted))}
    rows.sort(key=lambda r: order[r.id if by_id else r.login])
    return rows, unknown


def _in_scope(actor: Actor, row: Any) -> bool:
    if actor.kind == "manager":
        return row.client_id == actor.organisation_id and row.sub_account_id == actor.sub_account_id
    if actor.kind == "client_admin":
        return row.client_id == actor.organisation_id
    return str(row.path).startswith(actor.organisation_path)


def plan_bulk(
    session: Session,
    actor: Actor,
    *,
    client_ref: str | None = None,
    sub_account: str | None = None,
    users: Any = None,
    min_days: int = DEFAULT_MIN_DAYS,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Who a bulk invitation would reach, and why each left-out user is left out.

    One row per user considered (``user_id, login, email, status, invited_at, action, reason``;
    ``action`` is ``invite`` or ``skip``). ``attrs``: ``to_send``, ``left_out``, ``planned_at``,
    ``min_days``. Select a whole client (``client_ref``), one of its sub-accounts, or ``users``
    (a DataFrame with a ``login``/``user_id`` column, or a list of logins or ids).
    """
    if (client_ref is None) == (users is None):
        raise ValidationError("Plan a bulk invitation for a client or for a list of users.")
    if sub_account is not None and client_ref is None:
        raise ValidationError("A sub-account is chosen within a client: give the client too.")
    if min_days < 0:
        raise ValidationError(
            f"The minimum days between invitations cannot be negative ({min_days}).",
            field="min_days",
            limit=0,
            actual=min_days,
        )
    now = now or utcnow()
    cutoff = now - timedelta(days=min_days)
    records: list[dict[str, Any]] = []
    if client_ref is not None:
        client = get_client(session, client_ref)
        require_organisation(actor, client, "invite the users of")
        query = (
            select(*_USER_COLUMNS)
            .join(Organisation, Organisation.id == User.client_id)
            .where(User.client_id == client.id, user_scope(actor))
            .order_by(User.sort_name, User.id)
        )
        if sub_account is not None:
            sub: SubAccount | None = find_sub_account(session, client.id, sub_account)
            if sub is None:
                raise NotFoundError(f"sub-account of client {client.ref}", sub_account)
            query = query.where(User.sub_account_id == sub.id)
        rows = session.execute(query).all()
        unknown: list[str] = []
    else:
        rows, unknown = _selected_users(session, users)
    for row in rows:
        if not _in_scope(actor, row):
            reason = REASON_OUT_OF_SCOPE
        else:
            reason = _reason(row.status, row.email, row.invited_at, cutoff, min_days)
        records.append(
            {
                "user_id": row.id,
                "login": row.login,
                "email": row.email if reason != REASON_OUT_OF_SCOPE else None,
                "status": row.status if reason != REASON_OUT_OF_SCOPE else None,
                "invited_at": row.invited_at if reason != REASON_OUT_OF_SCOPE else None,
                "action": "skip" if reason else "invite",
                "reason": reason,
            }
        )
    for key in unknown:
        records.append(
            {
                "user_id": None,
                "login": key,
                "email": None,
                "status": None,
                "invited_at": None,
                "action": "skip",
                "reason": REASON_UNKNOWN,
            }
        )
    plan = pd.DataFrame.from_records(records, columns=PLAN_COLUMNS)
    plan["user_id"] = plan["user_id"].astype("Int64")
    to_send = int((plan["action"] == "invite").sum())
    plan.attrs.update(
        to_send=to_send,
        left_out=len(plan) - to_send,
        planned_at=now,
        min_days=min_days,
        client_ref=client_ref,
        sub_account=sub_account,
    )
    return plan


def plan_message(plan: pd.DataFrame) -> str:
    """The sentence shown before sending: 'N invitations à envoyer (M utilisateurs écartés)'."""
    to_send = int(plan.attrs.get("to_send", (plan["action"] == "invite").sum()))
    left_out = int(plan.attrs.get("left_out", (plan["action"] == "skip").sum()))
    word = "invitation" if to_send == 1 else "invitations"
    kept = "utilisateur écarté" if left_out == 1 else "utilisateurs écartés"
    return f"{to_send} {word} à envoyer ({left_out} {kept})"


def _claim(session: Session, ids: Sequence[int], cutoff: datetime, now: datetime) -> list[Any]:
    """Move eligible users to ``invited`` with one conditional UPDATE; only the winners return.

    On PostgreSQL a concurrent transaction waits on the rows' locks, then re-checks the WHERE
    against the committed state and finds them already invited: each user is invited once.
    """
    statement = (
        update(User)
        .where(
            User.id.in_(ids),
            User.email.is_not(None),
            User.email != "",
            or_(
                User.status == "not_invited",
                and_(
                    User.status == "invited",
                    or_(User.invited_at.is_(None), User.invited_at < cutoff),
                ),
            ),
        )
        .values(status="invited", invited_at=now, status_changed_at=now, updated_at=now)
        .returning(
            User.id,
            User.login,
            User.email,
            User.first_name,
            User.last_name,
            User.language,
            User.client_id,
        )
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement).all())


def _invite_scoped_ids(
    session: Session,
    actor: Actor,
    ids: Sequence[int],
    *,
    cutoff: datetime,
    now: datetime,
    progress: Progress | None,
) -> dict[int, int]:
    """Invite the eligible users among ``ids`` (already in scope); user id -> invitation id."""
    invited: dict[int, int] = {}
    total = len(ids)
    settings = get_settings()
    frames = MailFrames(session, settings, now + timedelta(days=settings.invitation_ttl_days))
    for start in range(0, total, CHUNK):
        chunk = list(ids[start : start + CHUNK])
        winners = _claim(session, chunk, cutoff, now)
        if winners:
            supersede_pending(session, user_ids=[w.id for w in winners], now=now)
            targets = [
                Target(
                    email=w.email,
                    organisation_id=w.client_id,
                    user_id=w.id,
                    login=w.login,
                    first_name=w.first_name,
                    last_name=w.last_name,
                    language=w.language,
                )
                for w in winners
            ]
            for issued in issue(session, actor, targets, now=now, settings=settings, frames=frames):
                assert issued.target.user_id is not None
                invited[issued.target.user_id] = issued.invitation_id
        if progress is not None:
            progress(min(start + CHUNK, total), total)
    if invited:
        session.expire_all()
    return invited


def _scoped(session: Session, actor: Actor, ids: Iterable[int]) -> list[int]:
    wanted = list(dict.fromkeys(int(i) for i in ids))
    kept: list[int] = []
    for start in range(0, len(wanted), CHUNK):
        kept.extend(
            session.scalars(
                select(User.id)
                .join(Organisation, Organisation.id == User.client_id)
                .where(User.id.in_(wanted[start : start + CHUNK]), user_scope(actor))
            )
        )
    order = {k: i for i, k in enumerate(wanted)}
    return sorted(kept, key=order.__getitem__)


def invite_user_ids(
    session: Session,
    actor: Actor,
    user_ids: Iterable[int],
    *,
    progress: Progress | None = None,
    min_days: int = DEFAULT_MIN_DAYS,
    now: datetime | None = None,
) -> int:
    """Invite many users at once (the fast path); returns how many were invited.

    Users out of the actor's scope, without email, active, deactivated or invited less than
    ``min_days`` ago are skipped silently (use :func:`plan_bulk` to see who and why).
    """
    now = now or utcnow()
    ids = _scoped(session, actor, user_ids)
    invited = _invite_scoped_ids(
        session, actor, ids, cutoff=now - timedelta(days=min_days), now=now, progress=progress
    )
    return len(invited)


def apply_bulk(
    session: Session,
    actor: Actor,
    plan: pd.DataFrame,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Send the invitations of a plan; one outcome row per plan row.

    Idempotent: a user is invited only if they were not invited since the plan was made, so
    applying the same plan twice (or two plans at once) sends nothing twice. ``outcome`` is
    ``invited`` or ``skipped`` (with the reason).
    """
    now = now or utcnow()
    planned_at = plan.attrs.get("planned_at") or now
    min_days = int(plan.attrs.get("min_days", DEFAULT_MIN_DAYS))
    cutoff = min(now - timedelta(days=min_days), planned_at)
    wanted = [int(i) for i in plan.loc[plan["action"] == "invite", "user_id"].dropna()]
    ids = _scoped(session, actor, wanted)
    invited = _invite_scoped_ids(session, actor, ids, cutoff=cutoff, now=now, progress=progress)
    missed = [i for i in wanted if i not in invited]
    current: dict[int, str] = {}
    for start in range(0, len(missed), CHUNK):
        for row in session.execute(
            select(User.id, User.status, User.email, User.invited_at).where(
                User.id.in_(missed[start : start + CHUNK])
            )
        ):
            recent = now - timedelta(days=min_days)
            reason = _reason(row.status, row.email, row.invited_at, recent, min_days)
            if not reason and row.invited_at is not None and row.invited_at >= planned_at:
                reason = "invited since the plan was made"
            current[row.id] = reason or "no longer eligible"
    outcome = plan[["user_id", "login", "email", "action", "reason"]].copy()
    outcomes, reasons, invitation_ids = [], [], []
    for user_id, action, reason in zip(
        outcome["user_id"], outcome["action"], outcome["reason"], strict=True
    ):
        key = None if pd.isna(user_id) else int(user_id)
        if action == "invite" and key in invited:
            outcomes.append("invited")
            reasons.append("")
            invitation_ids.append(invited[key])
        elif action == "invite":
            outcomes.append("skipped")
            reasons.append(current.get(key, REASON_OUT_OF_SCOPE) if key else REASON_UNKNOWN)
            invitation_ids.append(None)
        else:
            outcomes.append("skipped")
            reasons.append(reason)
            invitation_ids.append(None)
    outcome["outcome"] = outcomes
    outcome["reason"] = reasons
    outcome["invitation_id"] = pd.array(invitation_ids, dtype="Int64")
    outcome = outcome[OUTCOME_COLUMNS]
    outcome.attrs.update(invited=len(invited), skipped=len(outcome) - len(invited))
    return outcome


# --- administrators --------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminInvitationResult:
    """An administrator invitation: ``had_account`` says which of the two mails was sent."""

    administrator_id: int
    email: str
    organisation_ref: str
    had_account: bool
    invitation: InvitationResult
    login: str | None = None


def _admin_target(admin: Administrator, user: User | None = None) -> Target:
    return Target(
        email=admin.email,
        organisation_id=admin.organisation_id,
        administrator_id=admin.id,
        template="admin_access" if user is not None else "invitation_admin",
        user_id=user.id if user is not None else None,
        login=user.login if user is not None else None,
        first_name=user.first_name if user is not None else "",
        last_name=user.last_name if user is not None else "",
        language=user.language if user is not None else None,
        status="accepted" if user is not None else "pending",
    )


def invite_admin(
    session: Session,
    actor: Actor,
    email: str,
    org_ref: str,
    *,
    display_name: str | None = None,
    now: datetime | None = None,
) -> AdminInvitationResult:
    """Make ``email`` an administrator of ``org_ref`` (seed 000, INVITATION ADMIN).

    A person with an active user account keeps it and gains administrator access at once (the
    mail says so); anyone else receives a link to create their administrator account.
    """
    now = now or utcnow()
    address = normalise_email(email)
    key = address.lower()
    org = get_organisation(session, org_ref)
    require_organisation(actor, org, "add administrators to")
    if actor.kind == "manager":
        raise AccessDeniedError(f"{actor.describe()} may not invite administrators.")
    existing = session.scalar(select(Administrator).where(Administrator.email == key))
    if existing is not None:
        where = existing.organisation
        if existing.active:
            raise ConflictError(f"{key} is already an administrator of {where.ref} ({where.name}).")
        raise ConflictError(
            f"{key} was already invited to administer {where.ref} ({where.name}): "
            f"use selfcare-ops invite resend --email {key} to send a new link."
        )
    user = session.scalar(select(User).where(User.email_folded == key))
    if user is not None and user.status == "deactivated":
        raise InvitationError(
            f"{key} belongs to the deactivated user {user.login}: reactivate the account first."
        )
    has_account = user is not None and user.status == "active"
    admin = Administrator(
        organisation_id=org.id,
        email=key,
        display_name=display_name
        or (f"{user.first_name} {user.last_name}" if user is not None and has_account else key),
        user_id=user.id if has_account and user is not None else None,
        active=has_account,
    )
    session.add(admin)
    session.flush()
    audit.record(
        session,
        actor,
        "administrator.invite",
        "administrator",
        admin.id,
        target_label=key,
        organisation_id=org.id,
        after={
            "email": key,
            "organisation": org.ref,
            "user": user.login if has_account and user is not None else None,
            "active": has_account,
        },
    )
    target = _admin_target(admin, user if has_account else None)
    (issued,) = issue(session, actor, [target], now=now)
    return AdminInvitationResult(
        administrator_id=admin.id,
        email=key,
        organisation_ref=org.ref,
        had_account=has_account,
        invitation=InvitationResult.from_issued(issued),
        login=user.login if has_account and user is not None else None,
    )


# --- draft users (seed 003) ------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedUser:
    login: str
    user_id: int
    status: str
    invitation: InvitationResult | None


def add_user(
    session: Session,
    actor: Actor,
    client_ref: str,
    new: NewUser,
    *,
    draft: bool = False,
    now: datetime | None = None,
) -> CreatedUser:
    """Create a user; unless ``draft``, invite them at once when an email is known (seed 003)."""
    if new.email:
        new.email = normalise_email(new.email)
    user = create_user(session, actor, client_ref, new)
    invitation = None
    if not draft and user.email:
        invitation = invite_user(session, actor, user.login, now=now)
    return CreatedUser(
        login=user.login,
        user_id=user.id,
        status="invited" if invitation else user.status,
        invitation=invitation,
    )


def activate(
    session: Session,
    actor: Actor,
    login: str,
    *,
    email: str | None = None,
    now: datetime | None = None,
) -> InvitationResult:
    """Activate a draft user: it sends their invitation (seed 003: activation sends the mail)."""
    return invite_user(session, actor, login, email=email, now=now, _draft_only=True)


# --- outbox hygiene --------------------------------------------------------------------------

_LINK = re.compile(re.escape(INVITATION_PATH) + r"[A-Za-z0-9_-]{20,}")
REDACTED = INVITATION_PATH + "[redacted]"


def redact_sent_links(session: Session, *, batch: int = 1000) -> int:
    """Blank the invitation links of mails already sent; returns how many mails were redacted.

    The outbox must hold the raw link until the mail is delivered; after that the database
    needs it no more, and a copy of the database should open no account.
    """
    done = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(OutboundMessage.id, OutboundMessage.body_text, OutboundMessage.body_html)
            .where(
                OutboundMessage.status == "sent",
                OutboundMessage.kind.in_(tuple(MESSAGE_KINDS.values())),
                OutboundMessage.body_text.contains(INVITATION_PATH),
                OutboundMessage.id > last_id,
            )
            .order_by(OutboundMessage.id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        changes = []
        for row in rows:
            text_body = _LINK.sub(REDACTED, row.body_text)
            html_body = _LINK.sub(REDACTED, row.body_html) if row.body_html else row.body_html
            if text_body != row.body_text or html_body != row.body_html:
                changes.append({"id": row.id, "body_text": text_body, "body_html": html_body})
        if changes:
            session.execute(update(OutboundMessage), changes)
        done += len(changes)
        last_id = rows[-1].id


# --- demo ------------------------------------------------------------------------------------


def invite_demo_client(session: Session, actor: Actor, client_ref: str) -> int:
    """Invite every invitable user of one demo client (``make demo``); returns how many."""
    plan = plan_bulk(session, actor, client_ref=client_ref)
    outcome = apply_bulk(session, actor, plan)
    return int(outcome.attrs["invited"])
