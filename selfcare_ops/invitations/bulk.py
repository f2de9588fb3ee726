"""Bulk invitations: a plan (who gets an invitation, who is left out and why), then apply.

A plan (:class:`BulkPlan`) carries a DataFrame an analyst can read, filter and keep, with its
counts and what applying it needs (when it was made, the minimum days between invitations);
applying it moves each planned user
to ``invited`` with one conditional UPDATE per batch (``... WHERE status = 'not_invited' OR
invited before the plan``), so the same plan applied twice, or two analysts inviting the same
client at once, invite each user once. The winners of each batch get their invitations and mails
through :func:`.issuing.issue` (a handful of multi-row statements per batch).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, require_organisation, user_scope
from selfcare_ops.accounts.users import find_sub_account
from selfcare_ops.config import get_settings
from selfcare_ops.errors import NotFoundError, ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.invitations.issuing import MailFrames, Target, issue, supersede_pending
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import Invitation, Organisation, SubAccount, User, utcnow
from selfcare_ops.support.batching import chunks

#: A bulk invitation skips users invited less than this many days ago.
DEFAULT_MIN_DAYS = 3
CHUNK = 500
PLAN_COLUMNS = [
    "user_id",
    "login",
    "email",
    "status",
    "invited_at",
    "action",
    "reason",
    "reason_code",
]
OUTCOME_COLUMNS = [
    "user_id",
    "login",
    "email",
    "action",
    "outcome",
    "reason",
    "reason_code",
    "invitation_id",
]
#: Why a user is left out: stable codes for programs (``reason_code``); people read
#: :func:`reason_text` (``reason``), in their language.
REASON_NO_EMAIL = "no_email"
REASON_ACTIVE = "already_active"
REASON_DEACTIVATED = "deactivated"
REASON_OUT_OF_SCOPE = "out_of_scope"
REASON_UNKNOWN = "unknown_user"
REASON_DRAFT = "draft"
REASON_BOUNCED = "address_refused"
REASON_RECENT = "invited_recently"
REASON_INVITED_SINCE_PLAN = "invited_since_plan"
REASON_NO_LONGER_ELIGIBLE = "no_longer_eligible"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class BulkPlan:
    """Who a bulk invitation would reach, before anything is sent.

    ``frame`` has one row per user considered (:data:`PLAN_COLUMNS`; ``action`` is ``invite``
    or ``skip`` with the reason). The counts are read from the frame, so a plan narrowed with
    :meth:`where` still counts right; ``planned_at`` and ``min_days`` tell :func:`apply_bulk`
    who was already invited when the plan was made.
    """

    frame: pd.DataFrame
    planned_at: datetime
    min_days: int = DEFAULT_MIN_DAYS
    client_ref: str | None = None
    sub_account: str | None = None

    @property
    def to_send(self) -> int:
        """How many invitations applying the plan would send."""
        return int((self.frame["action"] == "invite").sum())

    @property
    def left_out(self) -> int:
        """How many users the plan leaves out (each with its reason)."""
        return len(self.frame) - self.to_send

    def where(self, mask: pd.Series) -> BulkPlan:
        """The same plan for the rows ``mask`` keeps (an analyst's selection)."""
        return replace(self, frame=self.frame[mask])


@dataclass(frozen=True, eq=False)
class BulkOutcome:
    """What applying a bulk plan did: ``frame`` has one row per plan row
    (:data:`OUTCOME_COLUMNS`; ``outcome`` is ``invited`` or ``skipped`` with the reason)."""

    frame: pd.DataFrame

    @property
    def invited(self) -> int:
        """How many users were invited (their mails are queued)."""
        return int((self.frame["outcome"] == "invited").sum())

    @property
    def skipped(self) -> int:
        """How many plan rows were not invited, each with its reason."""
        return len(self.frame) - self.invited


# --- bulk: plan then apply -------------------------------------------------------------------


def reason_text(code: str, min_days: int = DEFAULT_MIN_DAYS) -> str:
    """The sentence people read for a reason code, in the current language ('' for none)."""
    if not code:
        return ""
    if code == REASON_RECENT:
        return ngettext(
            "invited less than {days} day ago", "invited less than {days} days ago", min_days
        ).format(days=min_days)
    texts = {
        REASON_NO_EMAIL: _("no email"),
        REASON_ACTIVE: _("already active"),
        REASON_DEACTIVATED: _("deactivated"),
        REASON_OUT_OF_SCOPE: _("out of scope"),
        REASON_UNKNOWN: _("unknown user"),
        REASON_DRAFT: _("draft: created without activating (users activate LOGIN sends it)"),
        REASON_BOUNCED: _("address refused by the mail server: correct the email first"),
        REASON_INVITED_SINCE_PLAN: _("invited since the plan was made"),
        REASON_NO_LONGER_ELIGIBLE: _("no longer eligible"),
    }
    return texts.get(code, code)


def reason_count(code: str, count: int) -> str:
    """'290 already active', '54 deactivated': a count of left-out users with the words agreeing
    with it in the current language ("290 déjà actifs")."""
    forms = {
        REASON_ACTIVE: ngettext("{count} already active", "{count} already active", count),
        REASON_DEACTIVATED: ngettext("{count} deactivated", "{count} deactivated", count),
        REASON_NO_EMAIL: ngettext("{count} no email", "{count} no email", count),
        REASON_OUT_OF_SCOPE: ngettext("{count} out of scope", "{count} out of scope", count),
        REASON_UNKNOWN: ngettext("{count} unknown user", "{count} unknown users", count),
        REASON_DRAFT: ngettext("{count} draft", "{count} drafts", count),
        REASON_BOUNCED: ngettext("{count} address refused", "{count} addresses refused", count),
        REASON_RECENT: ngettext("{count} invited recently", "{count} invited recently", count),
    }
    text = forms.get(code)
    return text.format(count=count) if text else f"{count} {reason_text(code)}"


def _reason(
    status: str,
    email: str | None,
    invited_at: datetime | None,
    cutoff: datetime,
    min_days: int,
    *,
    draft: bool = False,
    bounced: bool = False,
) -> str:
    """Why a user in scope is left out of a bulk invitation, as a code ('' when invited)."""
    if status == "deactivated":
        return REASON_DEACTIVATED
    if status == "active":
        return REASON_ACTIVE
    if draft and status == "not_invited":
        return REASON_DRAFT
    if not email:
        return REASON_NO_EMAIL
    if bounced:
        return REASON_BOUNCED
    if status == "invited" and invited_at is not None and invited_at >= cutoff:
        return REASON_RECENT
    return ""


#: An invitation to the user's current address was refused for good: sending again is useless.
_BOUNCED_HERE = exists().where(
    Invitation.user_id == User.id,
    Invitation.status == "bounced",
    func.lower(Invitation.email) == User.email_folded,
)

_USER_COLUMNS = (
    User.id,
    User.login,
    User.email,
    User.status,
    User.invited_at,
    User.client_id,
    User.sub_account_id,
    Organisation.path,
    User.draft,
    _BOUNCED_HERE.label("bounced"),
)


def _selected_users(session: Session, users: Any) -> tuple[list[Any], list[str]]:
    """Rows for a DataFrame / Series / list of logins or ids; unknown keys are returned apart."""
    if isinstance(users, pd.DataFrame):
        column = next((c for c in ("user_id", "id", "login") if c in users.columns), None)
        if column is None:
            raise ValidationError(
                _(
                    "The users to invite need a 'login', 'user_id' or 'id' column; the table has "
                    "{columns}."
                ).format(columns=", ".join(map(str, users.columns)) or _("no columns"))
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
    for chunk in chunks(wanted, CHUNK):
        rows.extend(
            session.execute(
                select(*_USER_COLUMNS)
                .join(Organisation, Organisation.id == User.client_id)
                .where(key_column.in_(chunk))
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
) -> BulkPlan:
    """Who a bulk invitation would reach, and why each left-out user is left out.

    The plan's frame has one row per user considered (``user_id, login, email, status,
    invited_at, action, reason``; ``action`` is ``invite`` or ``skip``). Select a whole client
    (``client_ref``), one of its sub-accounts, or ``users`` (a DataFrame with a
    ``login``/``user_id`` column, or a list of logins or ids).
    """
    if (client_ref is None) == (users is None):
        raise ValidationError(_("Plan a bulk invitation for a client or for a list of users."))
    if sub_account is not None and client_ref is None:
        raise ValidationError(_("A sub-account is chosen within a client: give the client too."))
    if min_days < 0:
        raise ValidationError(
            _("The minimum days between invitations cannot be negative ({days}).").format(
                days=min_days
            ),
            field="min_days",
            limit=0,
            actual=min_days,
        )
    now = now or utcnow()
    cutoff = now - timedelta(days=min_days)
    records: list[dict[str, Any]] = []
    if client_ref is not None:
        client = get_client(session, client_ref)
        require_organisation(actor, client, _("invite the users of"))
        query = (
            select(*_USER_COLUMNS)
            .join(Organisation, Organisation.id == User.client_id)
            .where(User.client_id == client.id, user_scope(actor))
            .order_by(User.sort_name, User.id)
        )
        if sub_account is not None:
            sub: SubAccount | None = find_sub_account(session, client.id, sub_account)
            if sub is None:
                raise NotFoundError(
                    _("sub-account of client {ref}").format(ref=client.ref), sub_account
                )
            query = query.where(User.sub_account_id == sub.id)
        rows = session.execute(query).all()
        unknown: list[str] = []
    else:
        rows, unknown = _selected_users(session, users)
    for row in rows:
        if not _in_scope(actor, row):
            reason = REASON_OUT_OF_SCOPE
        else:
            reason = _reason(
                row.status,
                row.email,
                row.invited_at,
                cutoff,
                min_days,
                draft=row.draft,
                bounced=bool(row.bounced),
            )
        records.append(
            {
                "user_id": row.id,
                "login": row.login,
                "email": row.email if reason != REASON_OUT_OF_SCOPE else None,
                "status": row.status if reason != REASON_OUT_OF_SCOPE else None,
                "invited_at": row.invited_at if reason != REASON_OUT_OF_SCOPE else None,
                "action": "skip" if reason else "invite",
                "reason": reason_text(reason, min_days),
                "reason_code": reason,
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
                "reason": reason_text(REASON_UNKNOWN),
                "reason_code": REASON_UNKNOWN,
            }
        )
    plan = pd.DataFrame.from_records(records, columns=PLAN_COLUMNS)
    plan["user_id"] = plan["user_id"].astype("Int64")
    return BulkPlan(
        frame=plan,
        planned_at=now,
        min_days=min_days,
        client_ref=client_ref,
        sub_account=sub_account,
    )


def plan_message(plan: BulkPlan) -> str:
    """The sentence shown before sending: 'N invitations à envoyer (M utilisateurs écartés)'."""
    to_send, left_out = plan.to_send, plan.left_out
    sending = ngettext("{count} invitation to send", "{count} invitations to send", to_send).format(
        count=to_send
    )
    leaving = ngettext("{count} user left out", "{count} users left out", left_out).format(
        count=left_out
    )
    return f"{sending} ({leaving})"


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
            User.draft.is_(False),
            ~_BOUNCED_HERE,
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
            targets = [Target.for_user(w) for w in winners]
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
    for chunk in chunks(wanted, CHUNK):
        kept.extend(
            session.scalars(
                select(User.id)
                .join(Organisation, Organisation.id == User.client_id)
                .where(User.id.in_(chunk), user_scope(actor))
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

    Users out of the actor's scope, without email, drafts, active, deactivated, whose address
    bounced or invited less than ``min_days`` ago are skipped silently (use :func:`plan_bulk`
    to see who and why).
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
    plan: BulkPlan,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> BulkOutcome:
    """Send the invitations of a plan; one outcome row per plan row.

    Idempotent: a user is invited only if they were not invited since the plan was made, so
    applying the same plan twice (or two plans at once) sends nothing twice. ``outcome`` is
    ``invited`` or ``skipped`` (with the reason).
    """
    now = now or utcnow()
    planned_at, min_days = plan.planned_at, plan.min_days
    cutoff = min(now - timedelta(days=min_days), planned_at)
    frame = plan.frame
    wanted = [int(i) for i in frame.loc[frame["action"] == "invite", "user_id"].dropna()]
    ids = _scoped(session, actor, wanted)
    invited = _invite_scoped_ids(session, actor, ids, cutoff=cutoff, now=now, progress=progress)
    missed = [i for i in wanted if i not in invited]
    current: dict[int, str] = {}
    for chunk in chunks(missed, CHUNK):
        for row in session.execute(
            select(
                User.id,
                User.status,
                User.email,
                User.invited_at,
                User.draft,
                _BOUNCED_HERE.label("bounced"),
            ).where(User.id.in_(chunk))
        ):
            recent = now - timedelta(days=min_days)
            reason = _reason(
                row.status,
                row.email,
                row.invited_at,
                recent,
                min_days,
                draft=row.draft,
                bounced=bool(row.bounced),
            )
            if not reason and row.invited_at is not None and row.invited_at >= planned_at:
                reason = REASON_INVITED_SINCE_PLAN
            current[row.id] = reason or REASON_NO_LONGER_ELIGIBLE
    outcome = frame[["user_id", "login", "email", "action", "reason", "reason_code"]].copy()
    outcomes, reasons, codes, invitation_ids = [], [], [], []
    for user_id, action, reason, code in zip(
        outcome["user_id"],
        outcome["action"],
        outcome["reason"],
        outcome["reason_code"],
        strict=True,
    ):
        key = None if pd.isna(user_id) else int(user_id)
        if action == "invite" and key in invited:
            outcomes.append("invited")
            reasons.append("")
            codes.append("")
            invitation_ids.append(invited[key])
        elif action == "invite":
            outcomes.append("skipped")
            code = current.get(key, REASON_OUT_OF_SCOPE) if key else REASON_UNKNOWN
            reasons.append(reason_text(code, min_days))
            codes.append(code)
            invitation_ids.append(None)
        else:
            outcomes.append("skipped")
            reasons.append(reason)
            codes.append(code)
            invitation_ids.append(None)
    outcome["outcome"] = outcomes
    outcome["reason"] = reasons
    outcome["reason_code"] = codes
    outcome["invitation_id"] = pd.array(invitation_ids, dtype="Int64")
    return BulkOutcome(frame=outcome[OUTCOME_COLUMNS])
