"""Administrator invitations (seed 000, INVITATION ADMIN).

A person who already has an active user account keeps it and gains administrator access at once
(the mail says so, and there is nothing to accept); anyone else receives a link to create their
administrator account, accepted like a user invitation.

An address is one person's identity: an administrator row is matched before a user when someone
acts (``access.resolve_actor``), so an invitation never takes over an account the inviter may
not manage, nor moves a user's identity away from their own client. A user may only become an
administrator of their own client or of a partner above it. Refusals about accounts outside the
inviter's scope all read the same and name nothing (no login, organisation or state).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, can_see_organisation, can_see_user, require_organisation
from selfcare_ops.errors import AccessDeniedError, ConflictError, InvitationError
from selfcare_ops.i18n import _
from selfcare_ops.invitations.issuing import InvitationResult, Target, issue, normalise_email
from selfcare_ops.organisations import get_organisation
from selfcare_ops.store.models import Administrator, Organisation, User, utcnow


def pending_admin(session: Session, email: str) -> Administrator | None:
    return session.scalar(
        select(Administrator).where(
            Administrator.email == email.strip().lower(),
            Administrator.active.is_(False),
            Administrator.user_id.is_(None),
        )
    )


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


def admin_target(admin: Administrator, user: User | None = None) -> Target:
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


def _used_elsewhere(actor: Actor, key: str, org: Organisation) -> AccessDeniedError:
    """One sentence for every account outside the inviter's scope: it names no login, no
    organisation and no state, whatever the account is."""
    return AccessDeniedError(
        _(
            "The address {email} cannot be invited to administer {ref} ({name}): it is already "
            "in use outside the scope of {actor}."
        ).format(email=key, ref=org.ref, name=org.name, actor=actor.describe()),
        email=key,
        organisation=org.ref,
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
        raise AccessDeniedError(
            _("{actor} may not invite administrators.").format(actor=actor.describe())
        )
    existing = session.scalar(select(Administrator).where(Administrator.email == key))
    if existing is not None:
        where = existing.organisation
        if not can_see_organisation(actor, where):
            raise _used_elsewhere(actor, key, org)
        if existing.active:
            raise ConflictError(
                _("{email} is already an administrator of {ref} ({name}).").format(
                    email=key, ref=where.ref, name=where.name
                )
            )
        raise ConflictError(
            _(
                "{email} was already invited to administer {ref} ({name}): use selfcare-ops "
                "invite resend --email {email} to send a new link."
            ).format(email=key, ref=where.ref, name=where.name)
        )
    user = session.scalar(select(User).where(User.email_folded == key))
    if user is not None and not user.client.path.startswith(org.path):
        if not can_see_user(actor, user):
            raise _used_elsewhere(actor, key, org)
        raise ConflictError(
            _(
                "{email} is the address of {login}, a user of client {client}: their account "
                "may administer that client or a partner above it, not {ref} ({name}); invite "
                "another address."
            ).format(
                email=key, login=user.login, client=user.client.ref, ref=org.ref, name=org.name
            )
        )
    if user is not None and user.status == "deactivated":
        raise InvitationError(
            _(
                "{email} belongs to the deactivated user {login}: reactivate the account first."
            ).format(email=key, login=user.login)
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
    target = admin_target(admin, user if has_account else None)
    (issued,) = issue(session, actor, [target], now=now)
    return AdminInvitationResult(
        administrator_id=admin.id,
        email=key,
        organisation_ref=org.ref,
        had_account=has_account,
        invitation=InvitationResult.from_issued(issued),
        login=user.login if has_account and user is not None else None,
    )
