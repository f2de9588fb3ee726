"""Per-user rights, restrictions and client-side roles (seeds 001, 002 and 004).

Rights are three independent switches (*manage rights*, *place orders*, *view invoices*):
each change is saved at once, audited with the values before and after, and the user is not
told (seed 004: "Les utilisateurs ne reçoivent aucun message"). Restrictions narrow a user to
some contracts, billing accounts or applications (seed 001); no restriction of a kind means
"all of that kind". Roles follow seed 002: an administrator sees every sub-account (so has
none), a manager has exactly one and acts only inside it, and may not grant administrator.

Who may change all this: administrators in scope (system, operator, partner, client) and
managers for the users of their own sub-account. A manager changes rights and restrictions only
while their own *manage rights* is on (seed 004, ``access.require_rights_manager``); client
administrators, the seed's *gestionnaire* who grants that right, do not need it.
Client-side actors do not change their own rights, restrictions or role: another administrator
does, so that nobody widens their own access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import (
    Actor,
    require_assignable,
    require_organisation,
    require_organisation_admin,
    require_rights_change,
    require_rights_manager,
)
from selfcare_ops.access_words import contracted
from selfcare_ops.accounts.users import (
    find_sub_account,
    get_visible_user,
    lock_user_in_client,
    require_administrator_left,
)
from selfcare_ops.directory import role_words
from selfcare_ops.errors import NotFoundError, ValidationError, sub_account_unknown
from selfcare_ops.i18n import _
from selfcare_ops.store.models import (
    CLIENT_ROLES,
    RESTRICTION_KINDS,
    Organisation,
    SubAccount,
    User,
    UserRestriction,
)

RIGHTS = ("manage_rights", "place_orders", "view_invoices")
RIGHT_LABELS = {
    "manage_rights": "manage rights",
    "place_orders": "place orders",
    "view_invoices": "view invoices",
}
RESTRICTION_LABELS = {
    "contract": "contract",
    "billing_account": "billing account",
    "application": "application",
}
MAX_RESTRICTION_LENGTH = 120


def right_words(name: str) -> str:
    """A right's name for people, in the current language (the code stays for programs)."""
    words = {
        "manage_rights": _("manage rights"),
        "place_orders": _("place orders"),
        "view_invoices": _("view invoices"),
    }
    return words.get(name, name)


def restriction_words(kind: str) -> str:
    """A kind of restriction for people, in the current language."""
    words = {
        "contract": _("contract"),
        "billing_account": _("billing account"),
        "application": _("application"),
    }
    return words.get(kind, kind)


def on_off_words(value: bool) -> str:
    """'on' or 'off' in the current language."""
    return _("on") if value else _("off")


@dataclass(frozen=True)
class RightsResult:
    """The user's three rights after the change, and what actually changed."""

    login: str
    rights: dict[str, bool]
    changed: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.changed:
            return contracted(
                _("The rights of {login} were already as asked: nothing changed.").format(
                    login=self.login
                )
            )
        parts = [
            f"{right_words(name)} {on_off_words(after)}"
            for name, (_before, after) in self.changed.items()
        ]
        return contracted(
            _("Rights of {login} saved: {changes} (the user is not notified).").format(
                login=self.login, changes=", ".join(parts)
            )
        )


@dataclass(frozen=True)
class RestrictionsResult:
    """The user's restrictions after the change (kind -> sorted values)."""

    login: str
    restrictions: dict[str, list[str]]
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        if not self.added and not self.removed:
            return contracted(
                _("The restrictions of {login} were already as asked: nothing changed.").format(
                    login=self.login
                )
            )
        parts = [f"+{restriction_words(k)} {v}" for k, v in self.added]
        parts += [f"-{restriction_words(k)} {v}" for k, v in self.removed]
        return contracted(
            _("Restrictions of {login} saved: {changes}.").format(
                login=self.login, changes=", ".join(parts)
            )
        )


@dataclass(frozen=True)
class RoleResult:
    """The user's role and sub-account after the change."""

    login: str
    role: str
    sub_account: str | None
    previous_role: str
    previous_sub_account: str | None

    @property
    def changed(self) -> bool:
        return (self.role, self.sub_account) != (self.previous_role, self.previous_sub_account)

    def describe(self) -> str:
        values = {
            "login": self.login,
            "role": role_words(self.role),
            "sub_account": self.sub_account,
            "previous": role_words(self.previous_role),
        }
        if not self.changed:
            if self.sub_account:
                sentence = _(
                    "{login} already is {role} of sub-account {sub_account}: nothing changed."
                )
            else:
                sentence = _("{login} already is {role}: nothing changed.")
        elif self.sub_account:
            sentence = _("{login} is now {role} of sub-account {sub_account} (was {previous}).")
        else:
            sentence = _("{login} is now {role} (was {previous}).")
        return sentence.format(**values)


# --- who may act -----------------------------------------------------------------------------


def require_client_administrator(actor: Actor, client: Organisation, verb: str) -> None:
    """Administrators in scope only (not managers), with a sentence that reads well either way.

    ``verb`` is what is attempted, written to be followed by the client ("create sub-accounts
    in"): the scope refusal names the client after it, the manager refusal names it too.
    """
    require_organisation(actor, client, verb)
    require_organisation_admin(actor, client, verb)


def _require_rights_actor(actor: Actor, user: User, what: str) -> None:
    """Who sets rights: the rule shared with user creation (``access.require_rights_change``)."""
    require_rights_change(actor, user, what)


def _visible_user(session: Session, actor: Actor, login: str, action: str) -> User:
    return get_visible_user(session, actor, login, action)


def _locked_user(
    session: Session, actor: Actor, login: str, action: str, *, client_first: bool = False
) -> User:
    """The user in scope, re-read under a row lock (PostgreSQL) so that two people changing
    the same user one after the other record true before/after values. ``client_first``
    locks the client's row before the user's, the order every change that may demote an
    administrator takes (:func:`~selfcare_ops.accounts.users.lock_user_in_client`)."""
    user = get_visible_user(session, actor, login, action)
    if client_first:
        return lock_user_in_client(session, login)
    session.refresh(user, with_for_update=True)
    return user


# --- rights ----------------------------------------------------------------------------------


def rights_of(user: User) -> dict[str, bool]:
    return {name: bool(getattr(user, f"right_{name}")) for name in RIGHTS}


def set_rights(
    session: Session,
    actor: Actor,
    login: str,
    *,
    manage_rights: bool | None = None,
    place_orders: bool | None = None,
    view_invoices: bool | None = None,
) -> RightsResult:
    """Switch any of the three rights of one user; ``None`` leaves a right as it is.

    Saved at once (one audit event with the changed rights before and after); no mail.
    """
    wanted = {
        "manage_rights": manage_rights,
        "place_orders": place_orders,
        "view_invoices": view_invoices,
    }
    wanted = {name: value for name, value in wanted.items() if value is not None}
    if not wanted:
        raise ValidationError(
            _("Name at least one right to change: manage_rights, place_orders or view_invoices."),
            field="rights",
        )
    for name, value in wanted.items():
        if not isinstance(value, bool):
            raise ValidationError(
                _("The right {name} is switched on or off (True or False), not {value}.").format(
                    name=name, value=repr(value)
                ),
                field=name,
                actual=value,
            )
    require_rights_manager(session, actor, "change the rights of others")
    user = _locked_user(session, actor, login, "change the rights of")
    _require_rights_actor(actor, user, "rights")
    before = rights_of(user)
    changed = {
        name: (before[name], value) for name, value in wanted.items() if before[name] != value
    }
    for name, (_old, value) in changed.items():
        setattr(user, f"right_{name}", value)
    if changed:
        session.flush()
        audit.record(
            session,
            actor,
            "user.rights",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=user.client_id,
            before={f"right_{n}": old for n, (old, _new) in changed.items()},
            after={f"right_{n}": new for n, (_old, new) in changed.items()},
        )
    return RightsResult(user.login, rights_of(user), changed)


# --- restrictions ----------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    normalised = kind.strip().lower().replace("-", "_").replace(" ", "_")
    if normalised not in RESTRICTION_KINDS:
        raise ValidationError(
            _("A restriction is on one of {known}, not '{kind}'.").format(
                known=", ".join(RESTRICTION_KINDS), kind=kind
            ),
            field="kind",
            actual=kind,
        )
    return normalised


def _clean_value(kind: str, value: str) -> str:
    text = " ".join(str(value).split())
    if not text:
        raise ValidationError(
            _("A restriction on {kind} needs a value, not an empty text.").format(
                kind=restriction_words(kind)
            ),
            field=kind,
            actual=value,
        )
    if len(text) > MAX_RESTRICTION_LENGTH:
        raise ValidationError(
            _(
                "A reference of {kind} has at most {limit} characters; '{start}'... has {count}."
            ).format(
                kind=restriction_words(kind),
                limit=MAX_RESTRICTION_LENGTH,
                start=text[:30],
                count=len(text),
            ),
            field=kind,
            limit=MAX_RESTRICTION_LENGTH,
            actual=len(text),
        )
    return text


def _normalise(items: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for kind, values in (items or {}).items():
        checked = _check_kind(kind)
        if isinstance(values, str):
            values = [values]
        bucket = result.setdefault(checked, [])
        for value in values:
            cleaned = _clean_value(checked, value)
            if cleaned not in bucket:
                bucket.append(cleaned)
    return result


def _current_restrictions(session: Session, user_id: int) -> dict[str, list[str]]:
    rows = session.execute(
        select(UserRestriction.kind, UserRestriction.value)
        .where(UserRestriction.user_id == user_id)
        .order_by(UserRestriction.kind, UserRestriction.value)
    ).all()
    current: dict[str, list[str]] = {}
    for kind, value in rows:
        current.setdefault(kind, []).append(value)
    return current


def list_restrictions(session: Session, actor: Actor, login: str) -> dict[str, list[str]]:
    """The user's restrictions by kind (a kind absent means no restriction of that kind)."""
    user = _visible_user(session, actor, login, "see the restrictions of")
    return _current_restrictions(session, user.id)


def change_restrictions(
    session: Session,
    actor: Actor,
    login: str,
    *,
    add: Mapping[str, Iterable[str]] | None = None,
    remove: Mapping[str, Iterable[str]] | None = None,
    replace: Mapping[str, Iterable[str]] | None = None,
) -> RestrictionsResult:
    """Add, remove, or replace (per kind) the user's restrictions in one audited save.

    Adding a value already there changes nothing; removing one that is not there is an error
    (it is usually a typo). ``replace={"contract": []}`` lifts every contract restriction.
    """
    add_n, remove_n, replace_n = _normalise(add), _normalise(remove), _normalise(replace)
    if not (add_n or remove_n or replace_n):
        raise ValidationError(
            _(
                "Name at least one contract, billing account or application to add, remove or "
                "replace."
            ),
            field="restrictions",
        )
    if set(replace_n) & (set(add_n) | set(remove_n)):
        raise ValidationError(
            _(
                "A kind of restriction is either replaced as a whole or edited value by value, "
                "not both in one change."
            ),
            field="restrictions",
        )
    require_rights_manager(session, actor, "change the restrictions of others")
    user = _locked_user(session, actor, login, "change the restrictions of")
    _require_rights_actor(actor, user, "restrictions")
    before = _current_restrictions(session, user.id)
    for kind, values in remove_n.items():
        missing = [v for v in values if v not in before.get(kind, [])]
        if missing:
            present = ", ".join(before.get(kind, []))
            if present:
                sentence = _("{login} has no restriction on {kind} '{value}' (present: {present}).")
            else:
                sentence = _("{login} has no restriction on {kind} '{value}' (present: none).")
            raise NotFoundError(
                "restriction",
                missing[0],
                message=sentence.format(
                    login=user.login,
                    kind=restriction_words(kind),
                    value=missing[0],
                    present=present,
                ),
            )
    target = {kind: list(values) for kind, values in before.items()}
    for kind, values in replace_n.items():
        target[kind] = list(values)
    for kind, values in add_n.items():
        bucket = target.setdefault(kind, [])
        bucket.extend(v for v in values if v not in bucket)
    for kind, values in remove_n.items():
        target[kind] = [v for v in target.get(kind, []) if v not in values]
    old_pairs = {(k, v) for k, vs in before.items() for v in vs}
    new_pairs = {(k, v) for k, vs in target.items() for v in vs}
    added = sorted(new_pairs - old_pairs)
    removed = sorted(old_pairs - new_pairs)
    for kind, value in removed:
        session.execute(
            delete(UserRestriction).where(
                UserRestriction.user_id == user.id,
                UserRestriction.kind == kind,
                UserRestriction.value == value,
            )
        )
    session.add_all(UserRestriction(user_id=user.id, kind=k, value=v) for k, v in added)
    session.flush()
    after = _current_restrictions(session, user.id)
    if added or removed:
        kinds = sorted({k for k, _v in added} | {k for k, _v in removed})
        audit.record(
            session,
            actor,
            "user.restrictions",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=user.client_id,
            before={k: before.get(k, []) for k in kinds},
            after={k: after.get(k, []) for k in kinds},
        )
    return RestrictionsResult(user.login, after, added, removed)


def add_restrictions(
    session: Session, actor: Actor, login: str, kind: str, values: Iterable[str]
) -> RestrictionsResult:
    return change_restrictions(session, actor, login, add={kind: list(values)})


def remove_restrictions(
    session: Session, actor: Actor, login: str, kind: str, values: Iterable[str]
) -> RestrictionsResult:
    return change_restrictions(session, actor, login, remove={kind: list(values)})


def replace_restrictions(
    session: Session, actor: Actor, login: str, kind: str, values: Iterable[str]
) -> RestrictionsResult:
    return change_restrictions(session, actor, login, replace={kind: list(values)})


# --- roles -----------------------------------------------------------------------------------


def _sub_account_name(session: Session, sub_account_id: int | None) -> str | None:
    if sub_account_id is None:
        return None
    return session.scalar(select(SubAccount.name).where(SubAccount.id == sub_account_id))


def change_role(
    session: Session, actor: Actor, login: str, role: str, *, sub_account: str | None = None
) -> RoleResult:
    """Make a user administrator, manager or user of their client (seed 002).

    An administrator has no sub-account (they see them all); a manager has exactly one (the
    one given, else the one they are in); a user keeps their sub-account unless one is given.
    A manager may not grant administrator and places people only in their own sub-account.
    The last administrator of a client cannot be demoted: the client would be left unmanaged.
    """
    if role not in CLIENT_ROLES:
        raise ValidationError(
            _("The role must be one of {known}, not '{value}'.").format(
                known=", ".join(CLIENT_ROLES), value=role
            ),
            field="role",
            actual=role,
        )
    user = _locked_user(session, actor, login, "change the role of", client_first=True)
    _require_rights_actor(actor, user, "role")
    client = user.client
    previous_role, previous_sub = user.role, _sub_account_name(session, user.sub_account_id)
    target: SubAccount | None
    if role == "administrator":
        if sub_account:
            raise ValidationError(
                _(
                    "An administrator sees every sub-account of {ref}, so the sub-account "
                    "'{name}' does not apply; leave it out."
                ).format(ref=client.ref, name=sub_account),
                field="sub_account",
                actual=sub_account,
            )
        target = None
    elif sub_account:
        target = find_sub_account(session, client.id, sub_account)
        if target is None:
            raise NotFoundError(
                "sub-account", sub_account, message=sub_account_unknown(client.ref, sub_account)
            )
    else:
        target = user.sub_account
        if role == "manager" and target is None:
            raise ValidationError(
                _(
                    "A manager acts in exactly one sub-account: give --sub-account to make "
                    "{login} a manager of {ref}."
                ).format(login=user.login, ref=client.ref),
                field="sub_account",
            )
    require_assignable(actor, client, role, target)
    if previous_role == "administrator" and role != "administrator":
        require_administrator_left(session, client.id, user.id, action="demote")
    user.role = role
    user.sub_account_id = target.id if target else None
    session.flush()
    result = RoleResult(
        user.login, role, target.name if target else None, previous_role, previous_sub
    )
    if result.changed:
        audit.record(
            session,
            actor,
            "user.role",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=client.id,
            before={"role": previous_role, "sub_account": previous_sub},
            after={"role": role, "sub_account": result.sub_account},
        )
    return result


# --- read side -------------------------------------------------------------------------------


def describe_access(session: Session, actor: Actor, login: str) -> dict[str, Any]:
    """Everything that decides what a user may do: role, sub-account, rights, restrictions."""
    user = _visible_user(session, actor, login, "see the rights of")
    return {
        "login": user.login,
        "client": user.client.ref,
        "status": user.status,
        "role": user.role,
        "sub_account": _sub_account_name(session, user.sub_account_id),
        "rights": rights_of(user),
        "restrictions": _current_restrictions(session, user.id),
    }
