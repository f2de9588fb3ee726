"""Who may see and change what: the one place that answers scope questions.

Operator and partner administrators act on their own subtree of the organisation tree (the
materialised ``path`` makes that a prefix test). A client administrator acts on their client,
all sub-accounts included. A sub-account manager (seed 002) sees and changes only the users of
their sub-account, may not grant the administrator role and places people only in their own
sub-account. The system actor is the operator's named administrator: full scope, audited under
its own name, and acting only when nobody is named (no ``--as``, no ``SELFCARE_OPS_ACTOR``, a job
notebook run without an ``actor``). A name given but empty is an error, never the system actor:
an unset variable in a script must not escalate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from selfcare_ops.access_words import action_words, actor_words, contracted, organisation_words
from selfcare_ops.errors import AccessDeniedError, ConfigurationError, NotFoundError
from selfcare_ops.i18n import _
from selfcare_ops.store.models import Administrator, Organisation, SubAccount, User

ActorKind = Literal["system", "operator_admin", "partner_admin", "client_admin", "manager"]
SYSTEM_ACTOR_EMAIL = "system@selfcare-ops.local"


@dataclass(frozen=True)
class Actor:
    """Who is acting; every service takes one."""

    kind: ActorKind
    label: str
    organisation_id: int
    organisation_path: str
    administrator_id: int | None = None
    user_id: int | None = None
    sub_account_id: int | None = None

    @property
    def is_client_side(self) -> bool:
        return self.kind in ("client_admin", "manager")

    def describe(self) -> str:
        """Who acts, in the current language ("client administrator alice@…")."""
        return actor_words(self.kind, self.label)


def actor_for_administrator(admin: Administrator) -> Actor:
    org = admin.organisation
    if admin.kind == "system":
        kind: ActorKind = "system"
    elif org.kind == "operator":
        kind = "operator_admin"
    elif org.kind == "partner":
        kind = "partner_admin"
    else:
        kind = "client_admin"
    return Actor(
        kind=kind,
        label=admin.email,
        organisation_id=org.id,
        organisation_path=org.path,
        administrator_id=admin.id,
        user_id=admin.user_id,
    )


def actor_for_user(user: User) -> Actor:
    """A client-side actor from a user whose role is administrator or manager."""
    if user.role == "administrator":
        kind: ActorKind = "client_admin"
    elif user.role == "manager":
        if user.sub_account_id is None:
            raise AccessDeniedError(
                _("{login} is a manager without a sub-account and cannot act on anything.").format(
                    login=user.login
                )
            )
        kind = "manager"
    else:
        raise AccessDeniedError(
            _("{login} is neither an administrator nor a manager of their client.").format(
                login=user.login
            )
        )
    if user.status != "active":
        from selfcare_ops.access_words import status_words

        raise AccessDeniedError(
            _("{login} cannot act: their account is {status}.").format(
                login=user.login, status=status_words(user.status)
            )
        )
    return Actor(
        kind=kind,
        label=user.email or user.login,
        organisation_id=user.client_id,
        organisation_path=user.client.path,
        user_id=user.id,
        sub_account_id=user.sub_account_id if kind == "manager" else None,
    )


def system_actor(session: Session) -> Actor:
    """The operator's named system actor (created with the operator by the demo loader)."""
    admin = session.scalar(select(Administrator).where(Administrator.kind == "system"))
    if admin is None:
        raise NotFoundError("system actor", SYSTEM_ACTOR_EMAIL)
    return actor_for_administrator(admin)


def check_actor_name(email: str | None) -> None:
    """Refuse a name that is given but empty (``--as ""``, ``SELFCARE_OPS_ACTOR=``).

    ``None`` means nobody was named and the system actor acts; an empty text is a mistake
    (usually an unset variable in a script), and acting as the system for it would escalate.
    """
    if email is not None and not email.strip():
        raise ConfigurationError(
            _(
                "The actor is empty (--as or SELFCARE_OPS_ACTOR): name an administrator's or "
                "manager's email, or leave both unset to act as the system actor."
            ),
            field="actor",
        )


def resolve_actor(session: Session, email: str | None) -> Actor:
    """The actor named by an email (administrator first, then a client-side user).

    ``None`` is the system actor; an empty or blank text is refused (:func:`check_actor_name`).
    """
    check_actor_name(email)
    if email is None:
        return system_actor(session)
    wanted = email.strip().lower()
    admin = session.scalar(select(Administrator).where(Administrator.email == wanted))
    if admin is not None:
        if not admin.active:
            raise AccessDeniedError(
                _("The administrator {email} is deactivated.").format(email=wanted)
            )
        return actor_for_administrator(admin)
    user = session.scalar(
        select(User).where(User.email_folded == wanted, User.role.in_(("administrator", "manager")))
    )
    if user is None:
        raise NotFoundError("administrator or manager", wanted)
    return actor_for_user(user)


# --- organisations ---------------------------------------------------------------------------


class Placed(Protocol):
    """What the scope test reads of an organisation: an ORM one or a selected row."""

    id: int
    path: str


def can_see_organisation(actor: Actor, org: Placed) -> bool:
    """Whether ``org`` is in the actor's subtree (client-side actors: their own client)."""
    if actor.is_client_side:
        return org.id == actor.organisation_id
    return org.path.startswith(actor.organisation_path)


def require_organisation(actor: Actor, org: Organisation, action: str = "change") -> None:
    """Refuse unless ``org`` is in the actor's subtree (client-side actors: their own client)."""
    if not can_see_organisation(actor, org):
        raise AccessDeniedError(
            contracted(
                _("{actor} may not {action} {organisation}: it is outside their scope.").format(
                    actor=actor.describe(),
                    action=action_words(action),
                    organisation=organisation_words(org.kind, org.ref, org.name),
                )
            )
        )


def require_organisation_admin(actor: Actor, org: Organisation, action: str) -> None:
    """Administrators only (not managers), within scope: sub-accounts, branding, API keys."""
    require_organisation(actor, org, action)
    if actor.kind == "manager":
        raise AccessDeniedError(
            contracted(
                _("{actor} may not {action} {organisation}: only administrators may.").format(
                    actor=actor.describe(),
                    action=action_words(action),
                    organisation=organisation_words(org.kind, org.ref, org.name),
                )
            )
        )


def organisation_scope(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause limiting ``organisations`` to what the actor may see."""
    if actor.is_client_side:
        return Organisation.id == actor.organisation_id
    if actor.organisation_path == "/":
        return true()
    return Organisation.path.startswith(actor.organisation_path, autoescape=True)


# --- whole-tree work -------------------------------------------------------------------------


def can_deliver_mail(actor: Actor) -> bool:
    """Who may run the outbox: the system actor, operator and partner administrators.

    Delivery sends every queued message, whoever queued it (the outbox is one queue for the
    whole tree), and its counts show the whole tree's mail traffic: so client-side actors
    (client administrators and managers) neither deliver nor read the outbox. Their
    invitations go out with the next scheduled ``invitation_maintenance`` or ``mail deliver``.
    """
    return actor.kind in ("system", "operator_admin", "partner_admin")


def require_mail_delivery(actor: Actor, action: str = "deliver the queued mail") -> None:
    """Refuse client-side actors (see :func:`can_deliver_mail`) with one sentence."""
    if not can_deliver_mail(actor):
        raise AccessDeniedError(
            _(
                "{actor} may not {action}: the outbox holds every client's mail, so only "
                "operator and partner administrators (or the system actor) may."
            ).format(actor=actor.describe(), action=action_words(action))
        )


def require_operator(actor: Actor, action: str) -> None:
    """Operator-wide work (the schema, the demo data, the counters): the system actor and
    operator administrators only."""
    if actor.kind not in ("system", "operator_admin"):
        raise AccessDeniedError(
            _("{actor} may not {action}: only operator administrators may.").format(
                actor=actor.describe(), action=action_words(action)
            )
        )


# --- users -----------------------------------------------------------------------------------


def can_see_user(actor: Actor, user: User, client: Organisation | None = None) -> bool:
    client = client or user.client
    if not can_see_organisation(actor, client):
        return False
    if actor.kind == "manager":
        return user.sub_account_id == actor.sub_account_id
    return True


def require_user(actor: Actor, user: User, action: str = "change") -> None:
    if not can_see_user(actor, user):
        if actor.kind == "manager":
            sentence = _("{actor} may not {action} {login}: outside their sub-account.")
        else:
            sentence = _("{actor} may not {action} {login}: outside their scope.")
        raise AccessDeniedError(
            contracted(
                sentence.format(
                    actor=actor.describe(), action=action_words(action), login=user.login
                )
            )
        )


def require_rights_change(actor: Actor, user: User, what: str = "rights") -> None:
    """Who may set a user's rights, restrictions or role (seed 004), at creation or later:
    whoever may change the user (a manager: in their sub-account), except that a client-side
    actor never changes their own, so that nobody widens their own access."""
    require_user(actor, user, f"change the {what} of")
    if actor.is_client_side and actor.user_id == user.id:
        own = {
            "rights": _(
                "{actor} may not change their own rights: another administrator of the "
                "client must do it."
            ),
            "restrictions": _(
                "{actor} may not change their own restrictions: another "
                "administrator of the client must do it."
            ),
            "role": _(
                "{actor} may not change their own role: another administrator of the "
                "client must do it."
            ),
        }
        raise AccessDeniedError(own.get(what, own["rights"]).format(actor=actor.describe()))


def user_scope(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause on ``users`` (joined to its client as ``Organisation``) for this actor."""
    if actor.kind == "manager":
        return User.sub_account_id == actor.sub_account_id
    if actor.kind == "client_admin":
        return User.client_id == actor.organisation_id
    return organisation_scope(actor)


def require_rights_manager(session: Session, actor: Actor, action: str) -> None:
    """Seed 004's *manage rights* (``right_manage_rights``) is what lets a manager change
    other people's rights and restrictions; without it they may not.

    Client administrators do not need it: they are the seed's *gestionnaire*, who grants the
    right to others, and a client always keeps one, so rights stay manageable. Operator and
    partner administrators (and the system actor) are not client users and keep their power.
    The right is read from the database at each change, so switching it off takes effect at
    once, even for a dashboard opened before.
    """
    if actor.kind != "manager":
        return
    has_right = session.scalar(
        select(User.right_manage_rights).where(User.id == actor.user_id, User.status == "active")
    )
    if not has_right:
        raise AccessDeniedError(
            _(
                "{actor} may not {action}: their right 'manage rights' is off; an "
                "administrator of the client can switch it on."
            ).format(actor=actor.describe(), action=action_words(action))
        )


def require_assignable(
    actor: Actor, client: Organisation, role: str, sub_account: SubAccount | None
) -> None:
    """May the actor put a person with ``role`` into ``sub_account`` of ``client``?"""
    require_organisation(actor, client, "add users to")
    if sub_account is not None and sub_account.client_id != client.id:
        raise AccessDeniedError(
            _("The sub-account '{name}' does not belong to client {ref}.").format(
                name=sub_account.name, ref=client.ref
            )
        )
    if actor.kind != "manager":
        return
    if role == "administrator":
        raise AccessDeniedError(
            _(
                "{actor} may not grant the administrator role: a manager adds only managers "
                "and users."
            ).format(actor=actor.describe())
        )
    if sub_account is None:
        raise AccessDeniedError(
            _("{actor} may add people only to their own sub-account, not without one.").format(
                actor=actor.describe()
            )
        )
    if sub_account.id != actor.sub_account_id:
        raise AccessDeniedError(
            _("{actor} may add people only to their own sub-account, not to '{name}'.").format(
                actor=actor.describe(), name=sub_account.name
            )
        )
