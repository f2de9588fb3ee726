"""Issue invitations in bulk: tokens, invitation rows, their mails and audit events at once.

Every invitation path (one user, a whole client, an administrator, a resend) ends here, so the
rules hold everywhere: a fresh 256-bit token of which only the SHA-256 is stored, an expiry,
the mail queued in the outbox in the same transaction (``Invitation.message_id``)
and one audit event per invitation. Work is done with a handful of multi-row statements per
batch and each template is rendered once per language and organisation, not once per person.
The rendered template is stored once (``mail_templates``) and each message keeps only its
recipient's slot values: the mail is filled when it is delivered (:mod:`.mail.content`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor
from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import InvitationError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.mail.content import store_template
from selfcare_ops.mail.inline import from_asset
from selfcare_ops.mail.links import INVITATION_PATH, blank_links
from selfcare_ops.mail.outbox import enqueue_templated
from selfcare_ops.mail.render import (
    DEFAULT_LANGUAGE,
    MailBranding,
    MailTemplate,
    format_date,
    person_values,
)
from selfcare_ops.store.bulk_sql import insert_columns
from selfcare_ops.store.models import (
    OPEN_INVITATION_STATUSES,
    Invitation,
    Organisation,
    OutboundMessage,
    utcnow,
)
from selfcare_ops.support.batching import chunks
from selfcare_ops.support.tokens import hash_token, new_tokens, random_hex

ADMIN_PATH = "/admin/"
#: Template kind -> outbox message kind.
MESSAGE_KINDS = {
    "invitation_user": "invitation",
    "invitation_admin": "admin_invitation",
    "admin_access": "admin_access",
}


@dataclass(slots=True)  # an import makes one per invited user
class Target:
    """Someone to invite: a user (``user_id``) or an administrator (``administrator_id``)."""

    email: str
    organisation_id: int
    template: str = "invitation_user"
    user_id: int | None = None
    administrator_id: int | None = None
    login: str | None = None
    first_name: str = ""
    last_name: str = ""
    language: str | None = None
    #: ``accepted`` for a notice that needs no answer (an account that gains admin access).
    status: str = "pending"

    @classmethod
    def for_user(cls, user: Any) -> Target:
        """The invitation of a user (an ORM ``User`` or a row with the same columns)."""
        if not user.email:
            raise InvitationError(
                _("{login} has no email address to invite.").format(login=user.login)
            )
        return cls(
            email=user.email,
            organisation_id=user.client_id,
            user_id=user.id,
            login=user.login,
            first_name=user.first_name,
            last_name=user.last_name,
            language=user.language,
        )

    @property
    def kind(self) -> str:
        return "user" if self.template == "invitation_user" else "admin"


@dataclass(slots=True)  # not frozen: 100,000 of them are made per import, frozen init is slow
class Issued:
    """One invitation written: its id, message, expiry and the raw token (never stored)."""

    invitation_id: int
    message_id: int
    email: str
    expires_at: datetime
    status: str
    target: Target
    token: str = field(repr=False)
    link: str = field(repr=False)


def invitation_link(token: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"{settings.portal_url}{INVITATION_PATH}{token}"


@dataclass(frozen=True)
class _OrgMailInfo:
    name: str
    language: str
    branding: MailBranding


def _field(resolved: Any, name: str) -> Any:
    """A field of the resolved branding: a ``ResolvedField`` (``.value``) or a plain value."""
    value = getattr(resolved, name, None)
    if hasattr(value, "source") and hasattr(value, "value"):
        value = value.value
    elif isinstance(value, tuple):
        value = value[0] if value else None
    return value


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}


def mail_branding(session: Session, organisation_id: int, settings: Settings) -> MailBranding:
    """The effective logo and colours of an organisation, operator defaults when unknown."""
    try:
        from selfcare_ops.branding import asset_content, resolve_branding  # the branding feature
    except ImportError:
        return MailBranding()
    resolved = resolve_branding(session, organisation_id)
    logo = _field(resolved, "logo")
    part = None
    if logo is not None and not isinstance(logo, str):
        # Either way the mail names the asset by content hash, never copies it into a message:
        # 100,000 invitations must not store 100,000 copies of a logo. Inline, the template
        # refers to it as a cid: part that delivery reads from the assets once per template;
        # as a URL, it links the portal's copy.
        sha = getattr(logo, "sha256", None)
        if sha and settings.mail_logo == "inline":
            part = from_asset(logo, asset_content(session, logo))
            logo = f"cid:{part.content_id}"
        else:
            ext = _EXTENSIONS.get(getattr(logo, "mime", ""), "png")
            logo = f"{settings.portal_url}/assets/{sha}.{ext}" if sha else None
    defaults = MailBranding()
    return MailBranding(
        primary_color=_field(resolved, "primary_color") or defaults.primary_color,
        text_color=_field(resolved, "text_color") or defaults.text_color,
        logo_url=logo,
        brand_name=defaults.brand_name,
        logo_part=part,
    ).safe()


class MailFrames:
    """Per-batch caches: organisation language/branding, rendered templates and their ids."""

    def __init__(self, session: Session, settings: Settings, expires_at: datetime) -> None:
        self.session, self.settings, self.expires_at = session, settings, expires_at
        self._orgs: dict[int, _OrgMailInfo] = {}
        self._templates: dict[tuple[str, str, int], MailTemplate] = {}
        # Ids of stored templates by sha256, valid in one transaction (or savepoint) only: a
        # batch rolled back takes its template rows with it, so the next one looks them up again.
        self._stored: dict[str, int] = {}
        self._stored_in: object = None

    def organisation(self, organisation_id: int) -> _OrgMailInfo:
        info = self._orgs.get(organisation_id)
        if info is None:
            info = self._orgs[organisation_id] = self._load(organisation_id)
        return info

    def _load(self, organisation_id: int) -> _OrgMailInfo:
        org = self.session.get(Organisation, organisation_id)
        assert org is not None
        ids = [int(part) for part in org.path.strip("/").split("/") if part]
        languages = dict(
            self.session.execute(
                select(Organisation.id, Organisation.language).where(Organisation.id.in_(ids))
            ).all()
        )
        # Nearest language up the tree: client -> partner(s) -> operator.
        language = next((languages[i] for i in reversed(ids) if languages.get(i)), DEFAULT_LANGUAGE)
        return _OrgMailInfo(
            name=org.name,
            language=language,
            branding=mail_branding(self.session, organisation_id, self.settings),
        )

    def language_for(self, target: Target) -> str:
        return target.language or self.organisation(target.organisation_id).language

    def template(self, target: Target) -> MailTemplate:
        language = self.language_for(target)
        key = (target.template, language, target.organisation_id)
        template = self._templates.get(key)
        if template is None:
            info = self.organisation(target.organisation_id)
            frame = {
                "organisation_name": info.name,
                "branding": info.branding,
                "expires_on": format_date(self.expires_at.date(), language),
                "portal_url": self.settings.portal_url,
                "admin_url": f"{self.settings.portal_url}{ADMIN_PATH}",
            }
            template = self._templates[key] = MailTemplate(target.template, language, frame)
        return template

    def stored_id(self, session: Session, template: MailTemplate) -> int:
        """The ``mail_templates`` id of ``template``: one lookup per template and transaction."""
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is not self._stored_in:
            self._stored, self._stored_in = {}, transaction
        digest = template.sha256
        stored = self._stored.get(digest)
        if stored is None:
            stored = self._stored[digest] = store_template(session, template)
        return stored


def issue(
    session: Session,
    actor: Actor,
    targets: Sequence[Target],
    *,
    now: datetime | None = None,
    action: str = "invitation.send",
    settings: Settings | None = None,
    audit_extra: dict[str, Any] | None = None,
    frames: MailFrames | None = None,
    audit_each: bool = True,
    keep: bool = True,
) -> list[Issued]:
    """Write invitations, queue their mails and audit them, all in the caller's transaction.

    ``frames`` carries rendered templates from one batch to the next (same ``now``).
    ``audit_each=False`` is for a caller that audits the whole operation itself (a CSV import:
    its one event counts the invitations, and each invitation row keeps who sent it and when).
    ``keep=False`` returns nothing, for a caller that never reads what was issued (the same
    import: one result object per invitation costs more than the invitation row's tuple).
    """
    if not targets:
        return []
    settings = settings or get_settings()
    now = now or utcnow()
    expires_at = now + timedelta(days=settings.invitation_ttl_days)
    tokens = new_tokens(len(targets))
    key_suffixes = random_hex(len(targets), 8)
    if frames is None or frames.expires_at != expires_at:
        frames = MailFrames(session, settings, expires_at)
    hashes = [hash_token(token) for token in tokens]
    link_prefix = invitation_link("", settings)
    template_ids: dict[int, int] = {}  # id(template) -> stored id, for this call
    links = [link_prefix + token for token in tokens]
    # The mails and the invitations go to the bulk insert as columns (no dictionary per row).
    mail: dict[str, list[Any]] = {
        "message_key": [],
        "kind": [],
        "recipient": [],
        "template_id": [],
        "person": [],
        "language": [],
    }
    for target, link, key_suffix in zip(targets, links, key_suffixes, strict=True):
        template = frames.template(target)
        template_id = template_ids.get(id(template))
        if template_id is None:
            template_id = template_ids[id(template)] = frames.stored_id(session, template)
        who = f"u{target.user_id}" if target.user_id is not None else f"a{target.administrator_id}"
        # Unique per invitation, and random: the key travels in the mail's headers, so it must
        # not be derived from the token. The message is written first so that each invitation
        # row is inserted already pointing at its message.
        mail["message_key"].append(f"invitation-{who}-{key_suffix}")
        mail["kind"].append(MESSAGE_KINDS[target.template])
        mail["recipient"].append(target.email)
        mail["template_id"].append(template_id)
        # Only the slots the mail shows: a notice without a link keeps no token.
        mail["person"].append(
            person_values(
                {
                    "first_name": target.first_name,
                    "last_name": target.last_name,
                    "login": target.login or target.email,
                    "email": target.email,
                    "link": link,
                },
                template.slots,
            )
        )
        mail["language"].append(template.language)
    message_ids = enqueue_templated(session, mail, now=now)
    accepted = [now if target.status == "accepted" else None for target in targets]
    invitation_ids = insert_columns(
        session,
        Invitation.__table__,
        {
            "kind": [target.kind for target in targets],
            "user_id": [target.user_id for target in targets],
            "administrator_id": [target.administrator_id for target in targets],
            "organisation_id": [target.organisation_id for target in targets],
            "email": [target.email for target in targets],
            "token_hash": hashes,
            "status": [target.status for target in targets],
            "accepted_at": accepted,
            "closed_at": accepted,
            "message_id": message_ids,
        },
        same={"created_at": now, "expires_at": expires_at, "created_by": actor.label},
        count=len(targets),
        return_ids=True,
    )
    if not audit_each:
        if not keep:
            return []
        return _issued(targets, tokens, links, invitation_ids, message_ids, expires_at)
    audit.record_many(
        session,
        [
            audit.event_row(
                actor,
                action,
                "user" if target.kind == "user" else "administrator",
                target.user_id if target.kind == "user" else target.administrator_id,
                target_label=target.login or target.email,
                organisation_id=target.organisation_id,
                after={
                    "invitation_id": invitation_id,
                    "email": target.email,
                    "kind": target.kind,
                    "status": target.status,
                    "expires_at": expires_at,
                    "message_id": message_id,
                    **(audit_extra or {}),
                },
                occurred_at=now,
            )
            for target, invitation_id, message_id in zip(
                targets, invitation_ids, message_ids, strict=True
            )
        ],
    )
    if not keep:
        return []
    return _issued(targets, tokens, links, invitation_ids, message_ids, expires_at)


def _issued(
    targets: Sequence[Target],
    tokens: list[str],
    links: list[str],
    invitation_ids: list[int],
    message_ids: list[int],
    expires_at: datetime,
) -> list[Issued]:
    """What :func:`issue` wrote, one entry per target (the raw tokens only live here)."""
    return [
        Issued(
            invitation_id=invitation_id,
            message_id=message_id,
            email=target.email,
            expires_at=expires_at,
            status=target.status,
            target=target,
            token=token,
            link=link,
        )
        for target, token, link, invitation_id, message_id in zip(
            targets, tokens, links, invitation_ids, message_ids, strict=True
        )
    ]


def close_open_invitations(
    session: Session,
    condition: Any,
    *,
    status: str,
    now: datetime,
    cancel_reason: str | None = None,
    status_reason: str | None = None,
) -> list[tuple[int, int | None]]:
    """Close the open (pending or sent) invitations matching ``condition`` as ``status``.

    Their mails still waiting in the outbox are cancelled in the same transaction
    (``cancel_reason``, default ``status``): a link that no longer works is never mailed.
    Returns (invitation id, message id) of each closed invitation.
    """
    closed = [
        (row[0], row[1])
        for row in session.execute(
            update(Invitation)
            .where(condition, Invitation.status.in_(OPEN_INVITATION_STATUSES))
            .values(status=status, closed_at=now, status_reason=status_reason)
            .returning(Invitation.id, Invitation.message_id)
            .execution_options(synchronize_session=False)
        )
    ]
    cancel_messages(
        session, [message_id for _, message_id in closed if message_id], cancel_reason or status
    )
    return closed


def cancel_messages(session: Session, message_ids: Sequence[int], reason: str) -> int:
    """Cancel the queued messages among ``message_ids`` and blank their links; returns how many.

    A message already claimed by a deliverer (``sending``) is left to it: the deliverer checks
    the invitation before sending and cancels it then (see :mod:`.mail.deliver`).
    """
    cancelled: list[int] = []
    ids = sorted(set(message_ids))
    for chunk in chunks(ids, 1000):
        cancelled.extend(
            session.scalars(
                update(OutboundMessage)
                .where(
                    OutboundMessage.id.in_(chunk),
                    OutboundMessage.status == "queued",
                )
                .values(status="cancelled", cancel_reason=reason)
                .returning(OutboundMessage.id)
                .execution_options(synchronize_session=False)
            )
        )
    if cancelled:
        blank_links(session.connection(), cancelled)
    return len(cancelled)


def supersede_pending(
    session: Session,
    *,
    user_ids: Iterable[int] = (),
    administrator_ids: Iterable[int] = (),
    now: datetime,
    reason: str = "superseded",
) -> int:
    """Void the open invitations of these people (a new one replaces them, or their email
    changed: ``reason="email_changed"``) and cancel their unsent mails; returns how many."""
    total = 0
    for column, ids in (
        (Invitation.user_id, list(user_ids)),
        (Invitation.administrator_id, list(administrator_ids)),
    ):
        for chunk in chunks(ids, 1000):
            closed = close_open_invitations(
                session,
                column.in_(chunk),
                status="superseded",
                now=now,
                cancel_reason=reason,
            )
            total += len(closed)
    return total


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
            _("The email address '{email}' is not valid: {problem}").format(
                email=text, problem=exc
            ),
            field="email",
            actual=text,
        ) from exc
