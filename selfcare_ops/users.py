"""Write side of users: creation with a generated login, and the derived search columns.

Every writer of ``users`` (this module, CSV onboarding, the demo loader) fills the derived
columns through :func:`derived_columns`, so search and ordering behave the same everywhere.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from . import audit
from .access import (
    Actor,
    require_assignable,
    require_organisation,
    require_rights_manager,
    require_user,
)
from .errors import ConflictError, LastAdministratorError, NotFoundError, ValidationError
from .logins import make_login
from .models import CIVILITIES, CLIENT_ROLES, LANGUAGES, Organisation, SubAccount, User
from .organisations import get_client
from .textnorm import fold

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


def derived_columns(first_name: str, last_name: str, login: str, email: str | None) -> dict:
    """The folded columns stored beside a user's names for search and ordering."""
    return {
        "sort_name": fold(f"{last_name} {first_name}")[:210],
        "search_text": fold(f"{first_name} {last_name} {login} {email or ''}")[:700],
        "email_folded": email.strip().lower() if email else None,
    }


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
    which = "active administrator" if user.status == "active" else "administrator"
    raise LastAdministratorError(
        f"{user.login} is the last {which} of client {ref}: make another "
        f"{'active ' if user.status == 'active' else ''}user administrator before you "
        f"{action} this account, so the client is never left without one.",
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


def _check_vocabulary(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(
            f"The {name} must be one of {', '.join(allowed)}, not {value!r}.",
            field=name,
            actual=value,
        )


def create_user(session: Session, actor: Actor, client_ref: str, new: NewUser) -> User:
    """Create a user (status ``not_invited``: a draft until invited or activated).

    A client's first user becomes its administrator, the seed's *gestionnaire*, unless a role
    is given.
    """
    first, last = new.first_name.strip(), new.last_name.strip()
    if not first or not last:
        raise ValidationError("A user needs a first name and a last name.", field="name")
    _check_vocabulary("civility", new.civility, CIVILITIES)
    _check_vocabulary("language", new.language, LANGUAGES)
    _check_vocabulary("role", new.role, CLIENT_ROLES)
    client = get_client(session, client_ref)
    require_organisation(actor, client, "add users to")  # before revealing its sub-accounts
    sub_account = None
    if new.sub_account:
        sub_account = find_sub_account(session, client.id, new.sub_account)
        if sub_account is None:
            raise NotFoundError(f"sub-account of client {client.ref}", new.sub_account)
    has_users = session.scalar(select(exists().where(User.client_id == client.id)))
    role = new.role or ("user" if has_users else "administrator")
    if role == "administrator":
        sub_account = None
    elif sub_account is None and actor.kind == "manager" and client.id == actor.organisation_id:
        # A manager has one sub-account: what they create goes there unless they say otherwise.
        sub_account = session.get(SubAccount, actor.sub_account_id)
    if role == "manager" and sub_account is None:
        raise ValidationError(
            "A manager needs a sub-account to manage (seed 002): give one, or choose the "
            "administrator or user role.",
            field="sub_account",
        )
    require_assignable(actor, client, role, sub_account)
    email = new.email.strip() if new.email else None
    if email and session.scalar(select(exists().where(User.email_folded == email.lower()))):
        raise ConflictError(f"The email {email} is already used by another user.")
    if new.login:
        login = new.login.strip().lower()
        if login_taken(session, login):
            raise ConflictError(f"The login {login} is already taken.")
    else:
        login = make_login(first, last, client.login_domain, lambda c: login_taken(session, c))
    rights = {f"right_{k}": bool(v) for k, v in new.rights.items()}
    unknown = set(rights) - {"right_manage_rights", "right_place_orders", "right_view_invoices"}
    if unknown:
        raise ValidationError(f"Unknown rights: {', '.join(sorted(unknown))}.", field="rights")
    if any(rights.values()):  # granting a right at creation is changing rights (seed 004)
        require_rights_manager(session, actor, "grant rights to the users they create")
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
        phone=new.phone,
        mobile=new.mobile,
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
