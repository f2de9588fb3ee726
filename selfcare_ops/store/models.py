"""The domain model: organisation tree, users and everything the Selfcare administration stores.

Rules that must hold whoever writes to the database live in it too: unique logins, foreign
keys, check constraints on every state column, and indexes for the listing queries. Per-client
user counts by status are kept as users change (see :class:`ClientUserCount`) so that the client
list costs the size of the page, not of the user table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    delete,
    event,
    false,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from selfcare_ops.store.bulk_sql import BulkRows, register_after_insert, upsert_insert

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ORG_KINDS = ("operator", "partner", "client")
ACCOUNT_STATUSES = ("not_invited", "invited", "active", "deactivated")
CLIENT_ROLES = ("administrator", "manager", "user")
CIVILITIES = ("M.", "Mme")
LANGUAGES = ("fr", "en")
ADMIN_KINDS = ("administrator", "system")
RESTRICTION_KINDS = ("contract", "billing_account", "application")
INVITATION_KINDS = ("user", "admin")
INVITATION_STATUSES = (
    "pending",
    "sent",
    "bounced",
    "accepted",
    "revoked",
    "expired",
    "superseded",
)
#: An invitation whose link still works: queued (``pending``) or accepted by the mail server.
OPEN_INVITATION_STATUSES = ("pending", "sent")
MESSAGE_STATUSES = ("queued", "sending", "sent", "failed", "cancelled")
#: States a message does not leave: its link is blanked when it reaches one of them.
FINAL_MESSAGE_STATUSES = ("sent", "failed", "cancelled")
#: Why a queued message was cancelled before it left (stable codes, shown translated).
CANCEL_REASONS = ("revoked", "superseded", "expired", "deactivated", "removed", "email_changed")
JOB_STATUSES = ("running", "succeeded", "failed")
MODULE_KEYS = (
    "mes_telephones",
    "documentations",
    "gestion_des_appels",
    "journaux_d_appels",
    "messagerie_vocale",
    "contacts",
    "com_unifiees",
    "offres_mobiles",
)


def utcnow() -> datetime:
    """Aware UTC now; every timestamp the toolkit writes comes from here."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone: naive values are UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Organisation(Base):
    """Operator (root), partner (reseller, may nest) or client (customer company)."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(_in("kind", ORG_KINDS), name="kind"),
        CheckConstraint("(kind = 'operator') = (parent_id IS NULL)", name="operator_is_root"),
        CheckConstraint("language IS NULL OR " + _in("language", LANGUAGES), name="language"),
        Index("ix_organisations_kind_name_folded", "kind", "name_folded", "id"),
        Index("ix_organisations_parent_id", "parent_id"),
        Index("ix_organisations_path", "path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(String(200))
    #: Materialised path of ids, "/1/4/17/": subtree tests are one indexed prefix match.
    path: Mapped[str] = mapped_column(String(400))
    login_domain: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])


class ClientUserCount(Base):
    """Users of one client by account status, kept in the transaction that changes users.

    The one rule, whoever writes:

    * status changes and deletions are counted by database triggers on ``users`` (see the
      first migration), so no UPDATE or DELETE can forget them;
    * inserts are counted by :func:`count_new_users`, which the two ways of inserting users
      call themselves: the ORM (an ``after_insert`` hook, for single users) and
      :func:`~selfcare_ops.store.bulk_sql.insert_rows` (a hook registered below, for every bulk
      writer: CSV onboarding, the demo loader). No writer calls it: there is nothing to
      remember. A row trigger would make a 100,000-user insert several times slower on SQLite.
    * hand-written SQL goes around both: ``selfcare-ops db recount`` (:func:`recount_users`)
      rebuilds the counts afterwards; the tests insert through every path and check that it
      finds nothing to correct.
    """

    __tablename__ = "client_user_counts"
    __table_args__ = (CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),)

    client_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    users: Mapped[int] = mapped_column(Integer, default=0)


class SubAccount(Base):
    """A named division inside a client (seed 002)."""

    __tablename__ = "sub_accounts"
    __table_args__ = (UniqueConstraint("client_id", "name_folded"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    name_folded: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person of a client, with their Selfcare account state."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),
        CheckConstraint(_in("role", CLIENT_ROLES), name="role"),
        CheckConstraint("civility IS NULL OR " + _in("civility", CIVILITIES), name="civility"),
        CheckConstraint("language IS NULL OR " + _in("language", LANGUAGES), name="language"),
        CheckConstraint("status <> 'invited' OR invited_at IS NOT NULL", name="invited_has_date"),
        CheckConstraint("status <> 'active' OR activated_at IS NOT NULL", name="active_has_date"),
        CheckConstraint(
            "status <> 'deactivated' OR deactivated_at IS NOT NULL", name="deactivated_has_date"
        ),
        CheckConstraint(
            "role <> 'administrator' OR sub_account_id IS NULL",
            name="administrator_all_subaccounts",
        ),
        Index("ix_users_client_sort", "client_id", "sort_name", "id"),
        Index("ix_users_client_status_sort", "client_id", "status", "sort_name", "id"),
        Index("ix_users_email_folded", "email_folded"),
        Index("ix_users_sub_account_id", "sub_account_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    sub_account_id: Mapped[int | None] = mapped_column(ForeignKey("sub_accounts.id"))
    login: Mapped[str] = mapped_column(String(254), unique=True)
    civility: Mapped[str | None] = mapped_column(String(8))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    #: Folded "last first" used to order listings, the same on every database.
    sort_name: Mapped[str] = mapped_column(String(210))
    #: Folded names, login and email for accent-insensitive free-text search.
    search_text: Mapped[str] = mapped_column(String(700))
    function: Mapped[str | None] = mapped_column(String(150))
    language: Mapped[str | None] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(254))
    email_folded: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    mobile: Mapped[str | None] = mapped_column(String(32))
    services: Mapped[str | None] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(16), default="user")
    right_manage_rights: Mapped[bool] = mapped_column(Boolean, default=False)
    right_place_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    right_view_invoices: Mapped[bool] = mapped_column(Boolean, default=False)
    notification_prefs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="not_invited")
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    invited_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
    password_hash: Mapped[str | None] = mapped_column(String(200))
    #: Created "without activating" (seed 003): left out of bulk invitations until activated.
    draft: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The CSV import that created this user (its one audit event holds the counts).
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    client: Mapped[Organisation] = relationship()
    sub_account: Mapped[SubAccount | None] = relationship()


class UserRestriction(Base):
    """Restricts a user to some contracts, billing accounts or applications (seed 001)."""

    __tablename__ = "user_restrictions"
    __table_args__ = (
        CheckConstraint(_in("kind", RESTRICTION_KINDS), name="kind"),
        UniqueConstraint("user_id", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(120))


class Administrator(Base):
    """Staff of the operator or a partner (or a client) who administers a subtree.

    ``kind='system'`` is the named actor of the CLI and of scheduled jobs. An administrator
    who also has a user account keeps it (``user_id``).
    """

    __tablename__ = "administrators"
    __table_args__ = (CheckConstraint(_in("kind", ADMIN_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="administrator")
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: argon2 hash, for an administrator invited without a user account (seed 000).
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class Invitation(Base):
    """One invitation mail and its single-use token (only the token's hash is stored)."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(_in("kind", INVITATION_KINDS), name="kind"),
        CheckConstraint(_in("status", INVITATION_STATUSES), name="status"),
        CheckConstraint("user_id IS NOT NULL OR administrator_id IS NOT NULL", name="has_target"),
        Index("ix_invitations_user_status", "user_id", "status"),
        Index("ix_invitations_status_expires", "status", "expires_at"),
        Index("ix_invitations_message_id", "message_id"),
        Index("ix_invitations_organisation_id", "organisation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), default="user")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    administrator_id: Mapped[int | None] = mapped_column(ForeignKey("administrators.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    #: When the mail server accepted the invitation's mail (status ``sent``).
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    #: Why it closed, for people: the server's refusal of a ``bounced`` mail, say.
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_messages.id"))


class SupervisionSession(Base):
    """An administrator 'connecting directly' to a user's Selfcare, time-limited and audited."""

    __tablename__ = "supervision_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(500))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    #: When the link was first opened in the portal (audited once).
    opened_at: Mapped[datetime | None]


LINK_REQUEST_OUTCOMES = ("queued", "refused")


class InvitationAttempt(Base):
    """One failed submission of an invitation form: counted per token to stop guessing, in the
    database so that the limit holds across server processes."""

    __tablename__ = "invitation_attempts"
    __table_args__ = (Index("ix_invitation_attempts_invitation_at", "invitation_id", "failed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkRequest(Base):
    """An invitee's "send me a new link" from an expired or superseded link (once per user per
    24 hours), with what came of it, for the analysts' ledger."""

    __tablename__ = "link_requests"
    __table_args__ = (
        CheckConstraint(_in("outcome", LINK_REQUEST_OUTCOMES), name="outcome"),
        Index("ix_link_requests_user_requested", "user_id", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    new_invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    #: Why a request was refused, for people (the user is no longer invitable, say).
    reason: Mapped[str | None] = mapped_column(Text)


class Asset(Base):
    """An uploaded image (logo or banner), validated and re-encoded, stored once per content."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BrandingSetting(Base):
    """Personalisation of one organisation; every NULL column inherits from the parent."""

    __tablename__ = "branding_settings"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    logo_asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    #: '' means "explicitly no gradient here", NULL inherits.
    gradient_color: Mapped[str | None] = mapped_column(String(7))
    text_color: Mapped[str | None] = mapped_column(String(7))
    banner_asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    banner_link: Mapped[str | None] = mapped_column(String(2000))
    banner_message: Mapped[str | None] = mapped_column(String(150))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModuleSetting(Base):
    """One module toggle of one organisation; no row means inherit."""

    __tablename__ = "module_settings"
    __table_args__ = (CheckConstraint(_in("module", MODULE_KEYS), name="module"),)

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    module: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A client's API key (seed 003): shown once, stored hashed, revocable."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254))
    revoked_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Who did what to what, with the state before and after; written with the change."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_target", "target_type", "target_id"),
        Index("ix_audit_events_organisation_id", "organisation_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[str | None] = mapped_column(String(64))
    target_label: Mapped[str | None] = mapped_column(String(300))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MailTemplateRecord(Base):
    """A rendered mail template with its slot markers, stored once for every message using it.

    100,000 invitations of one client share one row here instead of carrying 100,000 copies of
    the same HTML; each message keeps only its recipient's slot values (``person``).
    """

    __tablename__ = "mail_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Of kind, language, subject, text and HTML: the same content is stored once.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboundMessage(Base):
    """A mail waiting in, or gone through, the outbox.

    Either plain (``subject`` and ``body_text`` hold the mail) or templated (``template_id``
    names a :class:`MailTemplateRecord`, ``person`` holds the recipient's slot values); read
    either with :func:`selfcare_ops.mail.content.message_content`.
    """

    __tablename__ = "outbound_messages"
    __table_args__ = (
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint(
            "template_id IS NOT NULL OR (subject IS NOT NULL AND body_text IS NOT NULL)",
            name="has_content",
        ),
        Index("ix_outbound_messages_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("mail_templates.id"))
    #: Slot values of a templated message; ``None`` is SQL NULL (a plain message), not 'null'.
    person: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    language: Mapped[str] = mapped_column(String(2), default="fr")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Why a message was ``cancelled`` before it left (one of ``CANCEL_REASONS``).
    cancel_reason: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    #: Loaded with the messages (one IN query for all of them): a message read in a session
    #: can still say what it contains once the session is closed.
    template: Mapped[MailTemplateRecord | None] = relationship(lazy="selectin")


class ImportRun(Base):
    """One CSV onboarding run: its source, counts and outcome."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(500))
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    actor_label: Mapped[str] = mapped_column(String(254))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report_path: Mapped[str | None] = mapped_column(String(1000))


class JobRun(Base):
    """One run of a scheduled notebook job."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        Index("ix_job_runs_job_started", "job_name", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_name: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    output_path: Mapped[str | None] = mapped_column(String(1000))
    failed_cell: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    #: Who started the run (the notebook acts as them).
    actor_label: Mapped[str | None] = mapped_column(String(254))


class JobLock(Base):
    """Held by the running job of a name; the row's existence is the lock on every database."""

    __tablename__ = "job_locks"

    job_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id"))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    holder: Mapped[str] = mapped_column(String(200))


def count_new_users(connection: Connection, added: Mapping[tuple[int, str], int]) -> None:
    """Add newly inserted users to ``client_user_counts``: (client id, status) -> how many.

    Called in the inserting transaction by the ORM hook and the bulk insert hook (see
    :class:`ClientUserCount`): one upsert per client and status, whatever the number of rows.
    """
    rows = [
        {"client_id": client_id, "status": status, "users": number}
        for (client_id, status), number in added.items()
        if number
    ]
    if not rows:
        return
    table = ClientUserCount.__table__
    statement = upsert_insert(connection, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.client_id, table.c.status],
        set_={"users": table.c.users + statement.excluded.users},
    )
    connection.execute(statement, rows)


def recount_users(connection: Connection) -> dict[tuple[int, str], int]:
    """Rebuild ``client_user_counts`` from ``users`` (after hand-written SQL inserted users).

    Returns the rows that were wrong: (client id, status) -> the count they held before.
    """
    counts = ClientUserCount.__table__
    users = User.__table__
    before = {
        (client_id, status): number
        for client_id, status, number in connection.execute(
            select(counts.c.client_id, counts.c.status, counts.c.users)
        )
    }
    actual = {
        (client_id, status): number
        for client_id, status, number in connection.execute(
            select(users.c.client_id, users.c.status, func.count()).group_by(
                users.c.client_id, users.c.status
            )
        )
    }
    wrong = {
        key: before.get(key, 0)
        for key in before.keys() | actual.keys()
        if before.get(key, 0) != actual.get(key, 0)
    }
    if wrong:
        connection.execute(delete(counts))
        if actual:
            connection.execute(
                insert(counts),
                [{"client_id": c, "status": s, "users": n} for (c, s), n in actual.items()],
            )
    return wrong


@event.listens_for(User, "after_insert")
def _count_orm_user(_mapper: Any, connection: Connection, user: User) -> None:
    count_new_users(connection, {(user.client_id, user.status): 1})


def _count_bulk_users(connection: Connection, rows: BulkRows) -> None:
    """Count the users a bulk insert (:mod:`~selfcare_ops.store.bulk_sql`) just wrote (bulk
    rows give every column, ``status`` included)."""
    pairs = zip(rows.values("client_id"), rows.values("status"), strict=True)
    count_new_users(connection, Counter(pairs))


register_after_insert(User.__table__, _count_bulk_users)
