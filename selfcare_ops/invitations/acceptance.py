"""The invitee's side: look at an invitation link, then complete the account with it.

Opening the link (a GET, or a mail scanner following it) only *inspects* the token and never
spends it; the token is spent by a successful :func:`accept`, in the same transaction as the
account's activation, by a conditional UPDATE so that two submissions cannot both win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor
from selfcare_ops.accounts.passwords import check_password, hash_password
from selfcare_ops.errors import InvitationError, TokenError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.store.models import (
    CIVILITIES,
    OPEN_INVITATION_STATUSES,
    Administrator,
    Invitation,
    Organisation,
    User,
    utcnow,
)
from selfcare_ops.support.dates import long_date_time
from selfcare_ops.support.phones import normalise_phone
from selfcare_ops.support.tokens import hash_token

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_CIVILITY_ALIASES = {
    "m": "M.",
    "m.": "M.",
    "mr": "M.",
    "mr.": "M.",
    "monsieur": "M.",
    "mme": "Mme",
    "mme.": "Mme",
    "mrs": "Mme",
    "ms": "Mme",
    "madame": "Mme",
}


@dataclass(frozen=True)
class TokenInfo:
    """What the portal shows on the page behind an invitation link (nothing is spent)."""

    invitation_id: int
    kind: str
    email: str
    login: str | None
    organisation_name: str
    expires_at: datetime


@dataclass(frozen=True)
class AcceptResult:
    kind: str
    email: str
    login: str | None
    user_id: int | None
    administrator_id: int | None
    activated_at: datetime


def _day(moment: datetime | None) -> str:
    return long_date_time(moment) if moment else _("an unknown date")


def _find(session: Session, token: str, *, lock: bool, now: datetime) -> Invitation:
    """The pending, unexpired invitation of ``token``; else a TokenError saying why."""
    token = (token or "").strip()
    if "/" in token:  # a whole link was pasted
        token = token.rstrip("/").rsplit("/", 1)[-1]
    invalid = TokenError(
        _(
            "This invitation link is not valid: check that it was copied whole, or ask your "
            "administrator for a new invitation."
        ),
        reason="invalid",
    )
    if not _TOKEN_SHAPE.match(token):
        raise invalid
    query = select(Invitation).where(Invitation.token_hash == hash_token(token))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    invitation = session.scalar(query)
    if invitation is None:
        raise invalid
    if invitation.status == "superseded":
        raise TokenError(
            _(
                "This invitation link was replaced by a newer one on {day}: use the link in the "
                "most recent invitation mail."
            ).format(day=_day(invitation.closed_at)),
            reason="superseded",
        )
    if invitation.status == "revoked":
        raise TokenError(
            _(
                "This invitation link was revoked by an administrator on {day}: ask them for a "
                "new invitation."
            ).format(day=_day(invitation.closed_at)),
            reason="revoked",
        )
    if invitation.status == "bounced":
        raise TokenError(
            _(
                "The mail of this invitation was refused by the mail server, so this link was "
                "closed: ask your administrator to check your email address and invite you again."
            ),
            reason="bounced",
        )
    if invitation.status == "accepted":
        raise TokenError(
            _(
                "This invitation link was already used on {day}: sign in with your login and "
                "password instead."
            ).format(day=_day(invitation.accepted_at)),
            reason="used",
        )
    if invitation.status == "expired" or invitation.expires_at <= now:
        raise TokenError(
            _(
                "This invitation link expired on {day}: ask your administrator to resend the "
                "invitation."
            ).format(day=_day(invitation.expires_at)),
            reason="expired",
        )
    return invitation


def inspect_token(session: Session, token: str, *, now: datetime | None = None) -> TokenInfo:
    """Check a link without spending it (what opening the link does). Read-only."""
    invitation = _find(session, token, lock=False, now=now or utcnow())
    login = None
    if invitation.user_id is not None:
        login = session.scalar(select(User.login).where(User.id == invitation.user_id))
    name = session.scalar(
        select(Organisation.name).where(Organisation.id == invitation.organisation_id)
    )
    return TokenInfo(
        invitation_id=invitation.id,
        kind=invitation.kind,
        email=invitation.email,
        login=login,
        organisation_name=name or "",
        expires_at=invitation.expires_at,
    )


def normalise_civility(civility: str) -> str:
    value = _CIVILITY_ALIASES.get((civility or "").strip().lower())
    if value is None:
        raise ValidationError(
            _("The civility must be one of {known}, not '{value}'.").format(
                known=", ".join(CIVILITIES), value=civility
            ),
            field="civility",
            actual=civility,
        )
    return value


def _invitee(invitation: Invitation, label: str) -> Actor:
    # The invitee acts on their own account; the audit trail records them as such.
    return Actor(
        kind="system", label=label, organisation_id=invitation.organisation_id, organisation_path=""
    )


def accept(
    session: Session,
    token: str,
    *,
    civility: str,
    phone: str,
    password: str,
    now: datetime | None = None,
) -> AcceptResult:
    """Complete an account from an invitation: civility, phone and password -> ``active``.

    Every input is checked before anything is written; the token is spent only on success.
    """
    now = now or utcnow()
    invitation = _find(session, token, lock=True, now=now)
    civility = normalise_civility(civility)
    phone_e164 = normalise_phone(phone or "")
    user = admin = None
    if invitation.user_id is not None and invitation.kind == "user":
        user = session.scalar(
            select(User)
            .where(User.id == invitation.user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert user is not None
        if user.status == "deactivated":
            raise InvitationError(
                _(
                    "The account {login} was deactivated after this invitation was sent: ask "
                    "your administrator to reactivate it."
                ).format(login=user.login)
            )
        check_password(password, login=user.login, email=user.email)
    else:
        admin = session.get(Administrator, invitation.administrator_id)
        assert admin is not None
        check_password(password, email=admin.email)
    spent = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status.in_(OPEN_INVITATION_STATUSES))
        .values(status="accepted", accepted_at=now, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise TokenError(_("This invitation link was already used."), reason="used")
    password_hash = hash_password(password)
    if user is not None:
        before = {"status": user.status}
        user.civility, user.phone, user.password_hash = civility, phone_e164, password_hash
        user.status, user.activated_at, user.status_changed_at = "active", now, now
        label, target_type, target_id = user.login, "user", user.id
        after = {"status": "active", "civility": civility, "phone": phone_e164}
    else:
        assert admin is not None
        before = {"active": admin.active}
        admin.active, admin.password_hash = True, password_hash
        label, target_type, target_id = admin.email, "administrator", admin.id
        after = {"active": True, "civility": civility, "phone": phone_e164}
    session.flush()
    session.expire(invitation)
    row = audit.event_row(
        _invitee(invitation, invitation.email),
        "invitation.accept",
        target_type,
        target_id,
        target_label=label,
        organisation_id=invitation.organisation_id,
        before=before,
        after={**after, "invitation_id": invitation.id},
        occurred_at=now,
    )
    row["actor_kind"] = "invitee"
    audit.record_many(session, [row])
    return AcceptResult(
        kind=invitation.kind,
        email=invitation.email,
        login=user.login if user is not None else None,
        user_id=user.id if user is not None else None,
        administrator_id=admin.id if admin is not None else invitation.administrator_id,
        activated_at=now,
    )
