"""Sub-accounts of a client (seed 002): list, create, rename, and moving users between them.

Only administrators create and rename sub-accounts ("Seuls les administrateurs peuvent ajouter
et modifier des sous-comptes"). Names are unique per client ignoring case, accents and extra
spaces (``name_folded``), so "Siège" and "siege" are the same sub-account. A manager sees only
their own sub-account and moves people only into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor, require_assignable, require_organisation
from selfcare_ops.accounts.rights import require_client_administrator
from selfcare_ops.accounts.users import find_sub_account, get_visible_user
from selfcare_ops.errors import ConflictError, NotFoundError, ValidationError, sub_account_unknown
from selfcare_ops.i18n import _
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import Organisation, SubAccount, User
from selfcare_ops.support.textnorm import clean_label, fold

MAX_NAME_LENGTH = 120
SUB_ACCOUNT_COLUMNS = ["name", "users", "active", "managers", "created_at"]


@dataclass(frozen=True)
class SubAccountResult:
    """A sub-account after a create or rename."""

    client_ref: str
    id: int
    name: str
    previous_name: str | None = None

    def describe(self) -> str:
        if self.previous_name is None:
            sentence = _("Sub-account '{name}' created in client {ref}.")
        elif self.previous_name == self.name:
            sentence = _("Sub-account '{name}' of {ref} already has that name.")
        else:
            sentence = _("Sub-account '{previous}' of client {ref} renamed '{name}'.")
        return sentence.format(name=self.name, ref=self.client_ref, previous=self.previous_name)


@dataclass(frozen=True)
class MoveResult:
    login: str
    sub_account: str | None
    previous_sub_account: str | None

    def describe(self) -> str:
        where = f"'{self.sub_account}'" if self.sub_account else _("no sub-account")
        if self.sub_account == self.previous_sub_account:
            return _("{login} already is in {where}: nothing changed.").format(
                login=self.login, where=where
            )
        was = f"'{self.previous_sub_account}'" if self.previous_sub_account else _("none")
        return _("{login} moved to {where} (was {was}).").format(
            login=self.login, where=where, was=was
        )


def clean_name(name: str) -> str:
    """A sub-account name trimmed, inner spaces collapsed, length and characters checked."""
    text = clean_label(name, what="A sub-account", limit=MAX_NAME_LENGTH)
    if any(not ch.isprintable() for ch in text):
        raise ValidationError(
            _("The sub-account name '{name}' contains control characters.").format(name=text),
            field="name",
            actual=text,
        )
    return text


def _require_sub_account(session: Session, client: Organisation, name: str) -> SubAccount:
    found = find_sub_account(session, client.id, name)
    if found is None:
        names = session.scalars(
            select(SubAccount.name)
            .where(SubAccount.client_id == client.id)
            .order_by(SubAccount.name_folded)
        ).all()
        raise NotFoundError(
            "sub-account", name, message=sub_account_unknown(client.ref, name, list(names))
        )
    return found


def _refuse_duplicate(
    session: Session, client: Organisation, name: str, own_id: int | None
) -> None:
    existing = find_sub_account(session, client.id, name)
    if existing is not None and existing.id != own_id:
        raise ConflictError(
            _(
                "Client {ref} already has a sub-account named '{existing}'; names are compared "
                "ignoring case and accents, so '{name}' would be the same one."
            ).format(ref=client.ref, existing=existing.name, name=name)
        )


def _flush_unique(session: Session, client: Organisation, name: str) -> None:
    """Flush, turning a lost race on the unique (client, name_folded) into the same sentence."""
    try:
        session.flush()
    except IntegrityError as error:
        raise ConflictError(
            _(
                "Client {ref} already has a sub-account named like '{name}' (created at the "
                "same moment by someone else)."
            ).format(ref=client.ref, name=name)
        ) from error


def list_sub_accounts(session: Session, actor: Actor, client_ref: str) -> pd.DataFrame:
    """The client's sub-accounts with their users counted (managers see only their own).

    ``frame.attrs["without_sub_account"]`` counts the client's users in no sub-account
    (administrators, and users not placed yet); it is absent for managers.
    """
    client = get_client(session, client_ref)
    require_organisation(actor, client, "list the sub-accounts of")
    query = (
        select(
            SubAccount.name,
            func.count(User.id),
            func.coalesce(func.sum(case((User.status == "active", 1), else_=0)), 0),
            func.coalesce(func.sum(case((User.role == "manager", 1), else_=0)), 0),
            SubAccount.created_at,
        )
        .outerjoin(User, User.sub_account_id == SubAccount.id)
        .where(SubAccount.client_id == client.id)
        .group_by(SubAccount.id, SubAccount.name, SubAccount.name_folded, SubAccount.created_at)
        .order_by(SubAccount.name_folded)
    )
    if actor.kind == "manager":
        query = query.where(SubAccount.id == actor.sub_account_id)
    frame = pd.DataFrame(
        [tuple(row) for row in session.execute(query)], columns=SUB_ACCOUNT_COLUMNS
    ).astype({"users": "int64", "active": "int64", "managers": "int64"})
    if actor.kind != "manager":
        frame.attrs["without_sub_account"] = int(
            session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.client_id == client.id, User.sub_account_id.is_(None))
            )
            or 0
        )
    return frame


def create_sub_account(
    session: Session, actor: Actor, client_ref: str, name: str
) -> SubAccountResult:
    """A new sub-account of the client; administrators only, name unique in the client."""
    text = clean_name(name)
    client = get_client(session, client_ref)
    require_client_administrator(actor, client, "create sub-accounts in")
    _refuse_duplicate(session, client, text, None)
    sub = SubAccount(client_id=client.id, name=text, name_folded=fold(text))
    session.add(sub)
    _flush_unique(session, client, text)
    audit.record(
        session,
        actor,
        "subaccount.create",
        "sub_account",
        sub.id,
        target_label=f"{client.ref}/{text}",
        organisation_id=client.id,
        after={"name": text},
    )
    return SubAccountResult(client.ref, sub.id, text)


def rename_sub_account(
    session: Session, actor: Actor, client_ref: str, old_name: str, new_name: str
) -> SubAccountResult:
    """Rename a sub-account; administrators only. Fixing only case or accents is allowed."""
    text = clean_name(new_name)
    client = get_client(session, client_ref)
    require_client_administrator(actor, client, "rename the sub-accounts of")
    sub = _require_sub_account(session, client, old_name)
    previous = sub.name
    if previous == text:
        return SubAccountResult(client.ref, sub.id, text, previous)
    _refuse_duplicate(session, client, text, sub.id)
    sub.name, sub.name_folded = text, fold(text)
    _flush_unique(session, client, text)
    audit.record(
        session,
        actor,
        "subaccount.rename",
        "sub_account",
        sub.id,
        target_label=f"{client.ref}/{text}",
        organisation_id=client.id,
        before={"name": previous},
        after={"name": text},
    )
    return SubAccountResult(client.ref, sub.id, text, previous)


def move_user(session: Session, actor: Actor, login: str, sub_account: str | None) -> MoveResult:
    """Place a user in a sub-account of their client (``None``: in none).

    Administrators are in no sub-account (change their role instead); a manager must stay in
    one; a manager-actor moves people only into their own sub-account.
    """
    user = get_visible_user(session, actor, login, "move")
    client = user.client
    previous = user.sub_account.name if user.sub_account else None
    target = _require_sub_account(session, client, sub_account) if sub_account else None
    if user.role == "administrator" and target is not None:
        raise ValidationError(
            _(
                "{login} is an administrator of {ref} and sees every sub-account; change their "
                "role first to place them in one."
            ).format(login=user.login, ref=client.ref),
            field="sub_account",
            actual=sub_account,
        )
    if user.role == "manager" and target is None:
        raise ValidationError(
            _(
                "{login} is a manager and must stay in exactly one sub-account; name the "
                "sub-account to move them to."
            ).format(login=user.login),
            field="sub_account",
        )
    require_assignable(actor, client, user.role, target)
    result = MoveResult(user.login, target.name if target else None, previous)
    if user.sub_account_id != (target.id if target else None):
        user.sub_account_id = target.id if target else None
        session.flush()
        audit.record(
            session,
            actor,
            "user.move",
            "user",
            user.id,
            target_label=user.login,
            organisation_id=client.id,
            before={"sub_account": previous},
            after={"sub_account": result.sub_account},
        )
    return result
