"""Read side: clients and users as pandas DataFrames, paged in the database.

Client pages use OFFSET over the indexed ``(kind, name_folded, id)`` and take their per-status
counts from ``client_user_counts`` (kept by triggers), so a page costs its size whatever the
number of users. User pages use keyset pagination over ``(client_id, sort_name, id)``: the
cursor of a page is where the next one starts, so page 10 costs what page 1 costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from .access import Actor, organisation_scope, require_organisation
from .errors import AccessDeniedError, ValidationError
from .models import ACCOUNT_STATUSES, ClientUserCount, Organisation, SubAccount, User
from .organisations import get_client
from .textnorm import fold, like_pattern

CLIENT_COLUMNS = ["ref", "name", "partner_ref", "partner_name", "users", *ACCOUNT_STATUSES]
USER_COLUMNS = [
    "login",
    "civility",
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "status",
    "status_changed_at",
    "invited_at",
    "activated_at",
    "deactivated_at",
    "deactivated",
    "sub_account",
    "role",
    "right_manage_rights",
    "right_place_orders",
    "right_view_invoices",
    "services",
    "function",
    "language",
    "id",
]
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class ClientPage:
    """One page of clients: ``rows`` plus where it sits ("Page 1 / 33")."""

    rows: pd.DataFrame
    page: int
    pages: int
    total: int

    @property
    def label(self) -> str:
        return f"Page {self.page} / {max(self.pages, 1)}"


@dataclass(frozen=True)
class UserPage:
    """One page of users; ``next_cursor`` is None on the last page."""

    rows: pd.DataFrame
    next_cursor: str | None
    total: int | None


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"The page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}.",
            field="page_size",
            limit=MAX_PAGE_SIZE,
            actual=page_size,
        )


def search_clients(
    session: Session,
    actor: Actor,
    text: str | None = None,
    *,
    page: int = 1,
    page_size: int = 20,
    partner_ref: str | None = None,
) -> ClientPage:
    """Clients whose name or reference contains ``text`` (accent- and case-insensitive)."""
    _check_page_size(page_size)
    if page < 1:
        raise ValidationError(f"Pages are numbered from 1, not {page}.", field="page", actual=page)
    conditions = [Organisation.kind == "client", organisation_scope(actor)]
    if text and fold(text):
        pattern = like_pattern(text)
        conditions.append(
            or_(
                Organisation.name_folded.like(pattern, escape="\\"),
                func.lower(Organisation.ref).like(pattern, escape="\\"),
            )
        )
    if partner_ref:
        partner = session.scalar(select(Organisation).where(Organisation.ref == partner_ref))
        if partner is None:
            return ClientPage(pd.DataFrame(columns=CLIENT_COLUMNS), page, 0, 0)
        require_organisation(actor, partner, "list the clients of")
        conditions.append(Organisation.path.startswith(partner.path, autoescape=True))
    total = session.scalar(select(func.count()).select_from(Organisation).where(*conditions)) or 0
    page_ids = (
        select(Organisation.id, Organisation.name_folded)
        .where(*conditions)
        .order_by(Organisation.name_folded, Organisation.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
        .subquery()
    )
    client = aliased(Organisation)
    parent = aliased(Organisation)
    per_status = [
        func.coalesce(
            func.sum(case((ClientUserCount.status == s, ClientUserCount.users), else_=0)), 0
        ).label(s)
        for s in ACCOUNT_STATUSES
    ]
    query = (
        select(client.ref, client.name, parent.ref, parent.name, *per_status)
        .select_from(page_ids)
        .join(client, client.id == page_ids.c.id)
        .join(parent, parent.id == client.parent_id)
        .outerjoin(ClientUserCount, ClientUserCount.client_id == client.id)
        .group_by(
            page_ids.c.name_folded, client.id, client.ref, client.name, parent.ref, parent.name
        )
        .order_by(page_ids.c.name_folded, client.id)
    )
    records = []
    for ref, name, p_ref, p_name, *counts in session.execute(query):
        counts = [int(c) for c in counts]
        records.append((ref, name, p_ref, p_name, sum(counts), *counts))
    rows = pd.DataFrame.from_records(records, columns=CLIENT_COLUMNS)
    return ClientPage(rows, page, math.ceil(total / page_size), total)


def _encode_cursor(sort_name: str, user_id: int) -> str:
    return f"{user_id}:{sort_name}"


def _decode_cursor(cursor: str) -> tuple[str, int]:
    user_id, sep, sort_name = cursor.partition(":")
    if not sep or not user_id.isdigit():
        raise ValidationError(
            f"The page cursor {cursor!r} is not one this directory gave out.",
            field="cursor",
            actual=cursor,
        )
    return sort_name, int(user_id)


def list_users(
    session: Session,
    actor: Actor,
    client_ref: str,
    *,
    status: str | None = None,
    has_email: bool | None = None,
    sub_account: str | None = None,
    search: str | None = None,
    page_size: int = 50,
    cursor: str | None = None,
    with_total: bool = True,
) -> UserPage:
    """One page of a client's users (deactivated ones included and flagged), in name order."""
    _check_page_size(page_size)
    if status is not None and status not in ACCOUNT_STATUSES:
        raise ValidationError(
            f"The status must be one of {', '.join(ACCOUNT_STATUSES)}, not {status!r}.",
            field="status",
            actual=status,
        )
    client = get_client(session, client_ref)
    require_organisation(actor, client, "list the users of")
    conditions = [User.client_id == client.id]
    if actor.kind == "manager":
        conditions.append(User.sub_account_id == actor.sub_account_id)
    if status:
        conditions.append(User.status == status)
    if has_email is True:
        conditions.append(User.email.is_not(None))
    elif has_email is False:
        conditions.append(User.email.is_(None))
    if sub_account:
        wanted = session.scalar(
            select(SubAccount.id).where(
                SubAccount.client_id == client.id, SubAccount.name_folded == fold(sub_account)
            )
        )
        if wanted is None:
            raise ValidationError(
                f"Client {client.ref} has no sub-account named {sub_account!r}.",
                field="sub_account",
                actual=sub_account,
            )
        if actor.kind == "manager" and wanted != actor.sub_account_id:
            raise AccessDeniedError(f"{actor.describe()} may only list their own sub-account.")
        conditions.append(User.sub_account_id == wanted)
    if search and fold(search):
        conditions.append(User.search_text.like(like_pattern(search), escape="\\"))
    page_conditions = list(conditions)
    if cursor:
        after_name, after_id = _decode_cursor(cursor)
        page_conditions.append(tuple_(User.sort_name, User.id) > tuple_(after_name, after_id))
    query = (
        select(
            User.login,
            User.civility,
            User.first_name,
            User.last_name,
            User.email,
            User.phone,
            User.mobile,
            User.status,
            User.status_changed_at,
            User.invited_at,
            User.activated_at,
            User.deactivated_at,
            SubAccount.name,
            User.role,
            User.right_manage_rights,
            User.right_place_orders,
            User.right_view_invoices,
            User.services,
            User.function,
            User.language,
            User.id,
            User.sort_name,
        )
        .outerjoin(SubAccount, SubAccount.id == User.sub_account_id)
        .where(and_(*page_conditions))
        .order_by(User.sort_name, User.id)
        .limit(page_size + 1)
    )
    fetched = session.execute(query).all()
    more = len(fetched) > page_size
    fetched = fetched[:page_size]
    records = [(*row[:12], row[7] == "deactivated", *row[12:21]) for row in fetched]
    rows = pd.DataFrame.from_records(records, columns=USER_COLUMNS)
    next_cursor = _encode_cursor(fetched[-1][21], fetched[-1][20]) if more else None
    total = (
        _count_users(
            session,
            client.id,
            conditions,
            status,
            only_status=not (
                has_email is not None or sub_account or search or actor.kind == "manager"
            ),
        )
        if with_total
        else None
    )
    return UserPage(rows, next_cursor, total)


def _count_users(
    session: Session, client_id: int, conditions: list, status: str | None, *, only_status: bool
) -> int:
    if only_status:  # the trigger-kept counters answer without touching users
        query = select(func.coalesce(func.sum(ClientUserCount.users), 0)).where(
            ClientUserCount.client_id == client_id
        )
        if status:
            query = query.where(ClientUserCount.status == status)
        return int(session.scalar(query) or 0)
    return int(session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0)


def iter_users(
    session: Session, actor: Actor, client_ref: str, *, page_size: int = 500, **filters: object
) -> pd.DataFrame:
    """Every matching user of a client, fetched page by page (for exports and bulk plans)."""
    frames = []
    cursor = None
    while True:
        page = list_users(
            session,
            actor,
            client_ref,
            page_size=page_size,
            cursor=cursor,
            with_total=False,
            **filters,
        )  # type: ignore[arg-type]
        frames.append(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
