"""Write side of users: creation with a generated login, email changes, the derived columns.

Every writer of ``users`` (this module, CSV onboarding, the demo loader) fills the derived
columns through :func:`derived_columns`, so search and ordering behave the same everywhere.
Every change of a user's email goes through :func:`change_email`: a link mailed to the old
address must stop working, whichever path changed it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import (
    Actor,
    require_assignable,
    require_organisation,
    require_rights_change,
    require_rights_manager,
    require_user,
)
from selfcare_ops.access_words import action_words
from selfcare_ops.accounts.logins import clean_login, make_login
from selfcare_ops.errors import (
    ConflictError,
    LastAdministratorError,
    NotFoundError,
    ValidationError,
    sub_account_unknown,
)
from selfcare_ops.i18n import _
from selfcare_ops.invitations.issuing import normalise_email, supersede_pending
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import (
    CIVILITIES,
    CLIENT_ROLES,
    LANGUAGES,
    Organisation,
    SubAccount,
    User,
    utcnow,
)
from selfcare_ops.support.phones import normalise_phone
from selfcare_ops.support.textnorm import fold

USER_FIELDS = (
    "login",
    "civility",
    "first_name",
    "last_name",
    "function",
    "language",
    "email",
    "phone",
    "mobile",
    "services",
    "role",
    "sub_account_id",
    "right_manage_rights",
    "right_place_orders",
    "right_view_invoices",
    "status",
)


@lru_cache(maxsize=65536)
def folded_sort_name(last_name: str, first_name: str) -> str:
    """The stored ``sort_name``: names repeat across an import, so each pair is folded once
    (the CSV planner compares files' names with it too)."""
    return fold(f"{last_name} {first_name}")[:210]


@lru_cache(maxsize=65536)
def _folded_name(first_name: str, last_name: str) -> str:
    return fold(f"{first_name} {last_name}")


def derived_columns(first_name: str, last_name: str, login: str, email: str | None) -> dict:
    """The folded columns stored beside a user's names for search and ordering.

    The one place they are derived, for single users and 100,000-line imports alike (see
    :func:`derived_column_lists`), hence the caches: only names need the slow Unicode fold,
    and they repeat.
    """
    return {
        "sort_name": folded_sort_name(last_name, first_name),
        "search_text": _search_text(first_name, last_name, login, email),
        "email_folded": email.strip().lower() if email else None,
    }


def derived_column_lists(
    first_names: Sequence[str],
    last_names: Sequence[str],
    logins: Sequence[str],
    emails: Sequence[str | None],
) -> dict[str, list[Any]]:
    """:func:`derived_columns` of many users, column by column (a bulk insert takes columns)."""
    return {
        "sort_name": list(map(folded_sort_name, last_names, first_names)),
        "search_text": list(map(_search_text, first_names, last_names, logins, emails)),
        "email_folded": [email.strip().lower() if email else None for email in emails],
    }


def _search_text(first_name: str, last_name: str, login: str, email: str | None) -> str:
    """When the folded name, the login and the email are ASCII, folding them joined by spaces
    gives the same text as folding everything (fold works character by character and
    collapses the spaces; a property test checks it)."""
    tail = f"{login} {email or ''}"
    name = _folded_name(first_name, last_name)
    if name.isascii() and tail.isascii():
        return fold(f"{name} {tail}")[:700]
    return fold(f"{first_name} {last_name} {tail}")[:700]


def get_user(session: Session, login: str) -> User:
    user = session.scalar(select(User).where(User.login == login.strip().lower()))
    if user is None:
        raise NotFoundError("user", login)
    return user


def lock_user(session: Session, login: str) -> User:
    """The user by login, re-read under a row lock (PostgreSQL) before a state change, so two
    concurrent changes of one user serialise and each records the true "before"."""
    user = session.scalar(
        select(User)
        .where(User.login == login.strip().lower())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFoundError("user", login)
    return user


def lock_client(session: Session, client_id: int) -> None:
    """Lock a client's organisation row until the transaction ends (PostgreSQL; a no-op on
    SQLite, whose writers hold the database lock from ``BEGIN IMMEDIATE``)."""
    session.execute(
        select(Organisation.id).where(Organisation.id == client_id).with_for_update(key_share=True)
    )


def lock_user_in_client(session: Session, login: str) -> User:
    """:func:`lock_user`, after the lock of the user's client row: the order a CSV import
    takes them in (client, then its users), so a demotion and an import of the same client
    queue behind each other instead of deadlocking. A user never changes client."""
    client_id = session.scalar(select(User.client_id).where(User.login == login.strip().lower()))
    if client_id is None:
        raise NotFoundError("user", login)
    lock_client(session, client_id)
    return lock_user(session, login)


def require_administrator_left(
    session: Session,
    client_id: int,
    user_id: int,
    *,
    action: str,
    also_leaving: Collection[int] = (),
    joining: Collection[int] = (),
) -> None:
    """Refuse a change that would leave a client without an administrator (DOMAIN.md).

    The one guard every path calls before an administrator stops being one (role change,
    deactivation, removal, CSV import): it locks the client's organisation row first
    (``FOR NO KEY UPDATE`` on PostgreSQL, so two such changes of one client take turns while
    inserts of its users are not held up; SQLite writers are already serialised by
    ``BEGIN IMMEDIATE``), then reads the user and counts the other administrators with
    committed data. Without the lock, two administrators demoting each other at once would
    each see the other and both succeed.

    An active administrator needs another *active* one to remain (only an active account can
    act); an administrator who has not activated yet needs another one not deactivated, so a
    new client never loses its only administrator either. ``also_leaving`` and ``joining`` are
    users a bulk change (CSV import) demotes or promotes earlier in the same transaction,
    before its rows are written.
    """
    lock_client(session, client_id)
    user = session.execute(
        select(User.login, User.role, User.status).where(User.id == user_id)
    ).one_or_none()
    if user is None or user.role != "administrator" or user.status == "deactivated":
        return
    live = ("active",) if user.status == "active" else ("not_invited", "invited", "active")
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.client_id == client_id,
            User.id != user_id,
            User.status.in_(live),
            or_(User.role == "administrator", User.id.in_(list(joining))),
            User.id.not_in(list(also_leaving)),
        )
    )
    if others:
        return
    ref = session.scalar(select(Organisation.ref).where(Organisation.id == client_id))
    if user.status == "active":
        sentence = _(
            "{login} is the last active administrator of client {ref}: make another active "
            "user administrator before you {action} this account, so the client is never left "
            "without one."
        )
    else:
        sentence = _(
            "{login} is the last administrator of client {ref}: make another user "
            "administrator before you {action} this account, so the client is never left "
            "without one."
        )
    raise LastAdministratorError(
        sentence.format(login=user.login, ref=ref, action=action_words(action)),
        login=user.login,
        client=ref,
    )


def get_visible_user(session: Session, actor: Actor, login: str, action: str = "see") -> User:
    user = get_user(session, login)
    require_user(actor, user, action)
    return user


def login_taken(session: Session, login: str) -> bool:
    return bool(session.scalar(select(exists().where(User.login == login))))


def find_sub_account(session: Session, client_id: int, name: str) -> SubAccount | None:
    return session.scalar(
        select(SubAccount).where(
            SubAccount.client_id == client_id, SubAccount.name_folded == fold(name)
        )
    )


@dataclass
class NewUser:
    """What is needed to create a user; everything but the names is optional."""

    first_name: str
    last_name: str
    email: str | None = None
    login: str | None = None
    civility: str | None = None
    function: str | None = None
    language: str | None = None
    phone: str | None = None
    mobile: str | None = None
    services: str | None = None
    role: str | None = None
    sub_account: str | None = None
    rights: dict[str, bool] = field(default_factory=dict)
    #: Created without activating (seed 003): no bulk invitation picks it up until activated.
    draft: bool = False


@dataclass(frozen=True)
class EmailChange:
    """What :func:`change_email` did: the addresses, the links voided, and whether the user
    went back from ``invited`` to ``not_invited`` (nothing valid was mailed to the new one)."""

    login: str
    before: str | None
    after: str | None
    invitations_voided: int = 0
    uninvited: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def audit_fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(before, after) for an audit event: the email, and the state it took with it."""
        before: dict[str, Any] = {"email": self.before}
        after: dict[str, Any] = {"email": self.after}
        if self.invitations_voided:
            after["invitations_voided"] = self.invitations_voided
        if self.uninvited:
            before["status"], after["status"] = "invited", "not_invited"
        return before, after


def email_taken(session: Session, email: str, *, except_user_id: int | None = None) -> bool:
    """Is this address (compared case-insensitively) already another user's?"""
    query = exists().where(User.email_folded == email.strip().lower())
    if except_user_id is not None:
        query = query.where(User.id != except_user_id)
    return bool(session.scalar(select(query)))


def change_email(
    session: Session,
    actor: Actor,
    user: User,
    email: str | None,
    *,
    now: datetime | None = None,
    record: bool = True,
) -> EmailChange:
    """Change a user's email address: the one rule every path follows (``users edit``,
    ``invite user --email``, CSV onboarding).

    The address is validated and must be no other user's. When it really changes (not just
    its case), every invitation link still open is voided — it was mailed to the old address,
    which may not be the person's — and an ``invited`` user goes back to ``not_invited``: a new
    invitation (``invite user``) reaches the new address. ``None`` or ``""`` removes the email.
    The caller holds the user's row (:func:`lock_user`); ``record=False`` lets a caller that
    changes more fields at once put :meth:`EmailChange.audit_fields` in its own single event.
    """
    require_user(actor, user, "change the email of")
    new = normalise_email(email) if email and email.strip() else None
    old = user.email
    if new == old:
        return EmailChange(user.login, old, new)
    if new is not None and email_taken(session, new, except_user_id=user.id):
        raise ConflictError(
            _("The email {email} is already used by another user.").format(email=new)
        )
    user.email = new
    for key, value in derived_columns(user.first_name, user.last_name, user.login, new).items():
        setattr(user, key, value)
    voided, uninvited = 0, False
    now = now or utcnow()
    if (old or "").lower() != (new or "").lower():
        voided = supersede_pending(session, user_ids=[user.id], now=now, reason="email_changed")
        if user.status == "invited":
            user.status, user.invited_at, user.status_changed_at = "not_invited", None, now
            uninvited = True
    session.flush()
    change = EmailChange(user.login, old, new, voided, uninvited)
    if record:
        before, after = change.audit_fields()
        audit.record(
            session,
            actor,
            "user.update",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=user.client_id,
            before=before,
            after=after,
            occurred_at=now,
        )
    return change


def _check_vocabulary(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(
            {
                "civility": _("The civility must be one of {known}, not '{value}'."),
                "language": _("The language must be one of {known}, not '{value}'."),
                "role": _("The role must be one of {known}, not '{value}'."),
            }[name].format(known=", ".join(allowed), value=value),
            field=name,
            actual=value,
        )


def create_user(session: Session, actor: Actor, client_ref: str, new: NewUser) -> User:
    """Create a user (status ``not_invited``: a draft until invited or activated).

    A client's first user becomes its administrator, the seed's *gestionnaire*, unless a role
    is given. Phones are stored in E.164; a login given is checked like a typed one; rights
    granted at once follow the rule of ``rights set`` (seed 004: the invite form sets them).
    """
    first, last = new.first_name.strip(), new.last_name.strip()
    if not first or not last:
        raise ValidationError(_("A user needs a first name and a last name."), field="name")
    _check_vocabulary("civility", new.civility, CIVILITIES)
    _check_vocabulary("language", new.language, LANGUAGES)
    _check_vocabulary("role", new.role, CLIENT_ROLES)
    client = get_client(session, client_ref)
    require_organisation(actor, client, "add users to")  # before revealing its sub-accounts
    sub_account = None
    if new.sub_account:
        sub_account = find_sub_account(session, client.id, new.sub_account)
        if sub_account is None:
            raise NotFoundError(
                "sub-account",
                new.sub_account,
                message=sub_account_unknown(client.ref, new.sub_account),
            )
    has_users = session.scalar(select(exists().where(User.client_id == client.id)))
    role = new.role or ("user" if has_users else "administrator")
    if role == "administrator":
        sub_account = None
    elif sub_account is None and actor.kind == "manager" and client.id == actor.organisation_id:
        # A manager has one sub-account: what they create goes there unless they say otherwise.
        sub_account = session.get(SubAccount, actor.sub_account_id)
    if role == "manager" and sub_account is None:
        raise ValidationError(
            _(
                "A manager needs a sub-account to manage: give one, or choose the "
                "administrator or user role."
            ),
            field="sub_account",
        )
    require_assignable(actor, client, role, sub_account)
    email = new.email.strip() if new.email else None
    if email and email_taken(session, email):
        raise ConflictError(
            _("The email {email} is already used by another user.").format(email=email)
        )
    if new.login:
        login = clean_login(new.login)
        if login_taken(session, login):
            raise ConflictError(_("The login {login} is already taken.").format(login=login))
    else:
        login = make_login(first, last, client.login_domain, lambda c: login_taken(session, c))
    rights = {f"right_{k}": bool(v) for k, v in new.rights.items()}
    unknown = set(rights) - {"right_manage_rights", "right_place_orders", "right_view_invoices"}
    if unknown:
        raise ValidationError(
            _("Unknown rights: {names}.").format(names=", ".join(sorted(unknown))), field="rights"
        )
    if any(rights.values()):  # granting a right at creation is changing rights (seed 004)
        require_rights_manager(session, actor, "grant rights to the users they create")
    phone = normalise_phone(new.phone) if new.phone and new.phone.strip() else None
    mobile = (
        normalise_phone(new.mobile, field_name="mobile", mobile=True)
        if new.mobile and new.mobile.strip()
        else None
    )
    user = User(
        client_id=client.id,
        sub_account_id=sub_account.id if sub_account else None,
        login=login,
        civility=new.civility,
        first_name=first,
        last_name=last,
        function=new.function,
        language=new.language,
        email=email,
        phone=phone,
        mobile=mobile,
        services=new.services,
        role=role,
        status="not_invited",
        draft=new.draft,
        **{
            "right_manage_rights": False,
            "right_place_orders": False,
            "right_view_invoices": False,
            **rights,
        },
        **derived_columns(first, last, login, email),
    )
    session.add(user)
    session.flush()
    if any(rights.values()):  # granting rights at creation follows the rule of ``rights set``
        require_rights_change(actor, user)
    audit.record(
        session,
        actor,
        "user.create",
        "user",
        user.id,
        target_label=login,
        organisation_id=client.id,
        after=audit.snapshot(user, USER_FIELDS),
    )
    return user


def user_summary(user: User) -> dict[str, Any]:
    return audit.snapshot(user, USER_FIELDS)
