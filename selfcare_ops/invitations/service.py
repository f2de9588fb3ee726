"""Invitations: one user, a whole client (plan, then apply), an administrator; resend, revoke,
expire; draft users activated later.

The account lifecycle is ``not_invited -> invited -> active -> deactivated`` (seeds 000, 003).
Every state change is a conditional UPDATE on the user's row (``... WHERE status = ...``) taken
under the row's lock, so two analysts inviting the same client at once create each invitation
once, and applying a plan twice sends nothing twice.

Bulk invitations live in :mod:`.bulk`, administrator invitations in :mod:`.admin`, acceptance
in :mod:`.acceptance`, the writing of invitations, mails and audit events in :mod:`.issuing`;
deactivation and supervision belong to the accounts (:mod:`selfcare_ops.accounts.lifecycle`,
:mod:`selfcare_ops.accounts.supervision`). Callers import each from where it lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, cast, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops import audit
from selfcare_ops.access import (
    Actor,
    can_see_user,
    organisation_scope,
    require_mail_delivery,
    require_organisation,
    require_user,
)
from selfcare_ops.accounts.users import NewUser, change_email, create_user, lock_user
from selfcare_ops.config import Settings
from selfcare_ops.errors import (
    AccessDeniedError,
    InvitationError,
    NotFoundError,
    ValidationError,
)
from selfcare_ops.i18n import _
from selfcare_ops.invitations.admin import admin_target, pending_admin
from selfcare_ops.invitations.issuing import (
    MESSAGE_KINDS,
    InvitationResult,
    Target,
    close_open_invitations,
    issue,
    normalise_email,
    supersede_pending,
)
from selfcare_ops.mail.links import INVITATION_PATH, REDACTED, apply_changes, redacted_changes
from selfcare_ops.store.models import (
    FINAL_MESSAGE_STATUSES,
    OPEN_INVITATION_STATUSES,
    Invitation,
    Organisation,
    OutboundMessage,
    User,
    utcnow,
)
from selfcare_ops.support.batching import chunks
from selfcare_ops.support.dates import long_date

if TYPE_CHECKING:
    from selfcare_ops.mail.deliver import DeliveryReport

__all__ = [
    "CreatedUser",
    "activate",
    "add_user",
    "deliver_and_redact",
    "expire_overdue",
    "invite_user",
    "outbox_status",
    "redact_final_links",
    "redact_sent_links",
    "resend",
    "revoke",
]

#: A bulk invitation skips users invited less than this many days ago.


def _refuse_state(user: User, *, allow_invited: bool = True) -> None:
    if user.status == "active":
        raise InvitationError(
            _("{login} is already active (since {day}): there is nothing to invite.").format(
                login=user.login, day=long_date(user.activated_at)
            )
        )
    if user.status == "deactivated":
        raise InvitationError(
            _(
                "{login} is deactivated: reactivate the account first "
                "(selfcare-ops users reactivate {login})."
            ).format(login=user.login)
        )
    if user.status == "invited" and not allow_invited:
        raise InvitationError(
            _(
                "{login} was already invited on {day}: use selfcare-ops invite resend {login} "
                "to send a new link."
            ).format(login=user.login, day=long_date(user.invited_at))
        )


def _set_email(
    session: Session, actor: Actor, user: User, email: str, now: datetime | None = None
) -> None:
    """Store a newly given email on the user: the one rule of :func:`.users.change_email`
    (validated, unique, open links to the old address voided, audited)."""
    change_email(session, actor, user, email, now=now)


def _mark_invited(session: Session, user: User, now: datetime) -> None:
    """``invited`` from now; inviting a draft is its activation (seed 003)."""
    user.status, user.invited_at, user.status_changed_at = "invited", now, now
    user.draft = False
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
    user = lock_user(session, login)
    require_user(actor, user, "invite")
    _refuse_state(user, allow_invited=not _draft_only)
    if email:
        _set_email(session, actor, user, email, now)
    if not user.email:
        raise InvitationError(
            _(
                "{login} has no email address: give one (--email) to invite them; users "
                "without email cannot receive an invitation."
            ).format(login=user.login)
        )
    supersede_pending(session, user_ids=[user.id], now=now)
    _mark_invited(session, user, now)
    (issued,) = issue(session, actor, [Target.for_user(user)], now=now)
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
        raise ValidationError(_("Name the invitation to resend: a login or an email."))
    if login is None:
        assert email is not None
        admin = pending_admin(session, email)
        if admin is None:
            user_login = session.scalar(
                select(User.login).where(User.email_folded == email.strip().lower())
            )
            if user_login is None:
                raise NotFoundError(
                    "invitation",
                    email,
                    message=_("No invited user or administrator has the email '{email}'.").format(
                        email=email
                    ),
                )
            login = user_login
        else:
            require_organisation(actor, admin.organisation, "invite administrators to")
            supersede_pending(session, administrator_ids=[admin.id], now=now)
            (issued,) = issue(
                session, actor, [admin_target(admin)], now=now, action="invitation.resend"
            )
            return InvitationResult.from_issued(issued)
    user = lock_user(session, login)
    require_user(actor, user, "invite")
    if user.status == "not_invited":
        raise InvitationError(
            _("{login} has never been invited: use selfcare-ops invite user {login}.").format(
                login=user.login
            )
        )
    _refuse_state(user)
    if not user.email:
        raise InvitationError(
            _("{login} has no email address: an invitation cannot be sent.").format(
                login=user.login
            )
        )
    supersede_pending(session, user_ids=[user.id], now=now)
    _mark_invited(session, user, now)
    (issued,) = issue(session, actor, [Target.for_user(user)], now=now, action="invitation.resend")
    return InvitationResult.from_issued(issued)


# --- revoke and expire -----------------------------------------------------------------------


def revoke(
    session: Session,
    actor: Actor,
    login: str | None = None,
    *,
    email: str | None = None,
    now: datetime | None = None,
) -> int:
    """Revoke the open invitations of a user (by login) or sent to an email; returns how many.

    Revoked users go back to ``not_invited``; their link stops working and a mail not yet sent
    is cancelled, never delivered. Each revocation is audited under the user when there is one
    (``audit list --target LOGIN`` finds it), else under the invitation's address.
    """
    now = now or utcnow()
    if (login is None) == (email is None):
        raise ValidationError(_("Revoke by login or by email, one of the two."))
    labels: dict[int, str] = {}
    if login is not None:
        user = lock_user(session, login)
        require_user(actor, user, "revoke the invitation of")
        invitations = list(
            session.scalars(
                select(Invitation).where(
                    Invitation.user_id == user.id,
                    Invitation.status.in_(OPEN_INVITATION_STATUSES),
                )
            )
        )
        if not invitations:
            raise InvitationError(
                _("{login} has no pending invitation to revoke.").format(login=user.login)
            )
        labels[user.id] = user.login
    else:
        assert email is not None
        wanted = email.strip().lower()
        candidates = list(
            session.execute(
                select(Invitation, Organisation)
                .join(Organisation, Organisation.id == Invitation.organisation_id)
                .where(
                    func.lower(Invitation.email) == wanted,
                    Invitation.status.in_(OPEN_INVITATION_STATUSES),
                )
            ).tuples()
        )
        invitations = [inv for inv, org in candidates if _may_manage(session, actor, inv, org)]
        if not invitations:
            if candidates:
                sentence = _(
                    "There is no pending invitation to {email} within your scope to revoke."
                )
            else:
                sentence = _("There is no pending invitation to {email} to revoke.")
            raise InvitationError(sentence.format(email=wanted))
        user_ids = [inv.user_id for inv in invitations if inv.user_id is not None]
        if user_ids:
            rows = session.execute(select(User.id, User.login).where(User.id.in_(user_ids)))
            labels.update((user_id, user_login) for user_id, user_login in rows)
    before = {inv.id: inv.status for inv in invitations}
    closed = close_open_invitations(
        session,
        Invitation.id.in_([inv.id for inv in invitations]),
        status="revoked",
        now=now,
    )
    closed_ids = {invitation_id for invitation_id, _ in closed}
    invitations = [inv for inv in invitations if inv.id in closed_ids]
    user_ids = {inv.user_id for inv in invitations if inv.user_id is not None}
    if user_ids:
        session.execute(
            update(User)
            .where(User.id.in_(user_ids), User.status == "invited")
            .values(status="not_invited", invited_at=None, status_changed_at=now)
            .execution_options(synchronize_session=False)
        )
    # A user's revocation is recorded under the user (``audit list --target LOGIN`` finds it),
    # with the invitation and the address it went to; an administrator's under the invitation.
    audit.record_many(
        session,
        [
            audit.event_row(
                actor,
                "invitation.revoke",
                "user" if inv.user_id is not None else "invitation",
                inv.user_id if inv.user_id is not None else inv.id,
                target_label=labels.get(inv.user_id, inv.email) if inv.user_id else inv.email,
                organisation_id=inv.organisation_id,
                before={"status": before[inv.id]},
                after={"status": "revoked", "invitation_id": inv.id, "email": inv.email},
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
    """Mark every open invitation past its expiry as ``expired``; returns how many.

    Meant for the scheduled job; the users stay ``invited`` (a resend or the next bulk
    invitation gives them a new link). A mail of theirs still queued is cancelled: its link
    would not work.
    """
    now = now or utcnow()
    query = (
        select(Invitation.id, Invitation.email, Invitation.organisation_id, Invitation.status)
        .join(Organisation, Organisation.id == Invitation.organisation_id)
        .where(Invitation.status.in_(OPEN_INVITATION_STATUSES), Invitation.expires_at <= now)
        .where(organisation_scope(actor))
    )
    if actor.kind == "manager":
        query = query.join(User, User.id == Invitation.user_id).where(
            User.sub_account_id == actor.sub_account_id
        )
    overdue = list(session.execute(query).tuples())
    expired = 0
    for chunk in chunks(overdue, 1000):
        closed = close_open_invitations(
            session, Invitation.id.in_([row[0] for row in chunk]), status="expired", now=now
        )
        expired += len(closed)
        closed_ids = {invitation_id for invitation_id, _ in closed}
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
                    before={"status": status},
                    after={"status": "expired"},
                    occurred_at=now,
                )
                for inv_id, email, org_id, status in chunk
                if inv_id in closed_ids
            ],
        )
    return expired


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
    """Create a user; unless ``draft``, invite them at once when an email is known (seed 003).

    A draft stays out of every bulk invitation until it is activated (:func:`activate`).
    """
    if new.email:
        new.email = normalise_email(new.email)
    new.draft = new.draft or draft
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


def redact_sent_links(session: Session, *, batch: int = 1000, since: datetime | None = None) -> int:
    """Blank the invitation links of mails in a final state; returns how many were redacted.

    The deliverer blanks each link when it records the mail's final state, and a revocation
    when it cancels a mail: this sweep is the repair for rows written before that was so (or
    by hand). A templated message keeps its link in ``person``; an older plain one in its
    bodies.
    """
    person_text = cast(OutboundMessage.person, Text)
    done = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(
                OutboundMessage.id,
                OutboundMessage.person,
                OutboundMessage.body_text,
                OutboundMessage.body_html,
            )
            .where(
                OutboundMessage.status.in_(FINAL_MESSAGE_STATUSES),
                OutboundMessage.kind.in_(tuple(MESSAGE_KINDS.values())),
                or_(
                    OutboundMessage.body_text.contains(INVITATION_PATH),
                    and_(
                        OutboundMessage.template_id.is_not(None),
                        person_text.contains(INVITATION_PATH),
                        ~person_text.contains(REDACTED),
                    ),
                ),
                OutboundMessage.id > last_id,
                *([OutboundMessage.sent_at >= since] if since is not None else []),
            )
            .order_by(OutboundMessage.id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        changes = redacted_changes(rows)
        apply_changes(session.connection(), changes)
        done += len(changes)
        last_id = rows[-1].id


def redact_final_links(session: Session, actor: Actor) -> int:
    """:func:`redact_sent_links` over the whole outbox, for the operator's staff (audited)."""
    if actor.kind not in ("system", "operator_admin"):
        raise AccessDeniedError(
            _("{actor} may not rewrite the outbox: the operator's administrators do.").format(
                actor=actor.describe()
            )
        )
    redacted = redact_sent_links(session)
    audit.record(
        session,
        actor,
        "outbox.redact",
        "outbox",
        None,
        target_label="outbound_messages",
        after={"redacted": redacted},
    )
    return redacted


def deliver_and_redact(
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    *,
    actor: Actor,
    **options: Any,
) -> DeliveryReport:
    """Deliver the outbox (:func:`~selfcare_ops.mail.deliver.deliver`); every caller that
    delivers (CLI, jobs, dashboards) goes through here. The deliverer blanks each link as it
    records the mail's final state; the sweep after it repairs older rows of this run's span.

    Only the system actor and operator or partner administrators deliver (the outbox is the
    whole tree's: :func:`~selfcare_ops.access.can_deliver_mail`); a run that attempted
    anything is audited as ``mail.deliver`` with its counts.
    """
    from selfcare_ops.mail.deliver import (
        deliver,  # the SMTP machinery loads only when mail goes out
    )

    require_mail_delivery(actor)
    scope = options.get("organisation_ids")
    started = utcnow() - timedelta(minutes=1)
    report = deliver(session_factory, settings, **options)
    if report.sent or report.attempted or report.error:
        with session_factory.begin() as session:
            if report.sent:
                redact_sent_links(session, since=started)
            audit.record(
                session,
                actor,
                "mail.deliver",
                "outbox",
                None,
                target_label=report.transport,
                after={
                    "sent": report.sent,
                    "retried": report.retried,
                    "failed": report.failed,
                    "error": report.error,
                    # a client's dashboard delivers that client's mail only
                    **({"organisation_ids": list(scope)} if scope is not None else {}),
                },
            )
    return report


def outbox_status(session: Session, actor: Actor) -> dict[str, int]:
    """How many messages the outbox holds in each state, for those who may deliver it."""
    from selfcare_ops.mail.deliver import mail_status

    require_mail_delivery(actor, "read the outbox counts")
    return mail_status(session)


# --- demo ------------------------------------------------------------------------------------
