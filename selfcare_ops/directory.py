"""Read side: clients and users as pandas DataFrames, paged in the database.

Client pages use OFFSET over the indexed ``(kind, name_folded, id)`` and take their per-status
counts from ``client_user_counts`` (kept by triggers), so a page costs its size whatever the
number of users. User pages use keyset pagination over ``(client_id, sort_name, id)``: the
cursor of a page is where the next one starts, so page 10 costs what page 1 costs.

Statements are built once per combination of filters, with bound parameters, and run on the
Core connection: a page then costs little more than the hand-written SQL (see
``bench/directory.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import pandas as pd
from babel.numbers import format_decimal
from sqlalchemy import Select, and_, bindparam, case, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor, require_organisation
from selfcare_ops.access_words import status_words
from selfcare_ops.errors import (
    AccessDeniedError,
    NotFoundError,
    PageOutOfRangeError,
    ValidationError,
)
from selfcare_ops.i18n import _, current_language
from selfcare_ops.store.models import (
    ACCOUNT_STATUSES,
    OPEN_INVITATION_STATUSES,
    ClientUserCount,
    Invitation,
    Organisation,
    SubAccount,
    User,
    utcnow,
)
from selfcare_ops.support.dates import long_date
from selfcare_ops.support.textnorm import fold, like_pattern

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
    "draft",
    "state",
    "invitation",
    "invitation_sent_at",
    "invitation_expires_at",
    "invitation_reason",
    "id",
]
#: What ``list_users(status=...)`` filters on besides the account statuses: the state of the
#: user's latest invitation (``expired``, ``bounced``) or a draft (created without activating).
STATE_FILTERS = ("draft", "pending", "sent", "expired", "bounced")
#: Every state a user's row can show (``state`` column, stable codes for programs).
USER_STATES = (
    "not_invited",
    "draft",
    "invited",
    "pending",
    "sent",
    "expired",
    "bounced",
    "active",
    "deactivated",
)
MAX_PAGE_SIZE = 1000

_org = Organisation.__table__
_users = User.__table__
_subs = SubAccount.__table__
_counts = ClientUserCount.__table__
_invitations = Invitation.__table__
#: The user's latest invitation (the one that says where their account stands); the ledger's
#: "needs a person" list reads it too.
_latest = _invitations.alias("latest")
LATEST_INVITATION_ID = (
    select(func.max(_invitations.c.id))
    .where(_invitations.c.user_id == _users.c.id, _invitations.c.kind == "user")
    .scalar_subquery()
)


@dataclass(frozen=True)
class ClientPage:
    """One page of clients: ``rows`` plus where it sits ("Page 1 / 33")."""

    rows: pd.DataFrame
    page: int
    pages: int
    total: int

    @property
    def label(self) -> str:
        return _("Page {page} / {pages}").format(page=self.page, pages=max(self.pages, 1))

    def ensure_exists(self) -> ClientPage:
        """This page, or :class:`PageOutOfRangeError` when it lies past the last one."""
        require_page(self.page, self.pages)
        return self


@dataclass(frozen=True)
class UserPage:
    """One page of users; ``next_cursor`` is None on the last page. ``page`` and ``pages``
    are set when the page was asked for by number."""

    rows: pd.DataFrame
    next_cursor: str | None
    total: int | None
    page: int | None = None
    pages: int | None = None

    def ensure_exists(self) -> UserPage:
        """This page, or :class:`PageOutOfRangeError` when it lies past the last one."""
        if self.page is not None and self.pages is not None:
            require_page(self.page, self.pages)
        return self


def require_page(page: int, pages: int) -> None:
    """Refuse a page past the last one, saying how many there are (an empty list has page 1).

    Listing services answer such a page with no rows (a dashboard whose search just narrowed
    clamps its page next time); a shell that was given the number calls this to say so.
    """
    if page > max(pages, 1):
        raise PageOutOfRangeError(page, max(pages, 1))


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(
            _("The page size must be between 1 and {limit}, not {size}.").format(
                limit=MAX_PAGE_SIZE, size=page_size
            ),
            field="page_size",
            limit=MAX_PAGE_SIZE,
            actual=page_size,
        )


#: Longest search text: names, logins and emails are shorter; a longer text can match nothing
#: and makes the LIKE pattern too complex for SQLite.
MAX_SEARCH_CHARACTERS = 200


def _check_search(text: str | None) -> None:
    if text and len(text) > MAX_SEARCH_CHARACTERS:
        raise ValidationError(
            _(
                "The search text has {count} characters; at most {limit} are searched: give "
                "part of a name, login or email."
            ).format(
                count=format_decimal(len(text), locale=current_language()),
                limit=MAX_SEARCH_CHARACTERS,
            ),
            field="search",
            limit=MAX_SEARCH_CHARACTERS,
            actual=len(text),
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scope_params(actor: Actor) -> dict[str, Any]:
    if actor.is_client_side:
        return {"scope_client": actor.organisation_id}
    return {"scope_path": _escape_like(actor.organisation_path) + "%"}


#: The columns a client list is sorted by in the database (the grid's headers offer these).
CLIENT_SORTS = ("name", "ref", "partner_name")
#: The columns a user list is sorted by in the database (keyset paging follows the sort).
USER_SORTS = ("name", "login")


def _check_sort(sort: str, allowed: tuple[str, ...]) -> None:
    if sort not in allowed:
        raise ValidationError(
            f"The list is sorted by {', '.join(allowed)}, not {sort!r}.",
            field="sort",
            actual=sort,
        )


@lru_cache(maxsize=64)
def _client_statements(
    client_side: bool,
    searching: bool,
    in_partner: bool,
    sort: str = "name",
    descending: bool = False,
) -> tuple[Select, Select]:
    """(count, page) statements for one combination of filters, built once.

    The page carries the total of matching clients (a window count), so one query answers
    "Page 2 / 33"; the count statement serves only pages past the end.
    """
    conditions = [_org.c.kind == "client"]
    if client_side:
        conditions.append(_org.c.id == bindparam("scope_client"))
    else:
        conditions.append(_org.c.path.like(bindparam("scope_path"), escape="\\"))
    if searching:
        conditions.append(
            or_(
                _org.c.name_folded.like(bindparam("pattern"), escape="\\"),
                func.lower(_org.c.ref).like(bindparam("pattern"), escape="\\"),
            )
        )
    if in_partner:
        conditions.append(_org.c.path.like(bindparam("partner_path"), escape="\\"))
    count = select(func.count()).select_from(_org).where(*conditions)
    owner = _org.alias("owner")
    key = {"name": _org.c.name_folded, "ref": _org.c.ref, "partner_name": owner.c.name_folded}[sort]
    order = (key.desc(), _org.c.id.desc()) if descending else (key, _org.c.id)
    page_ids = (
        select(_org.c.id, key.label("sort_key"), func.count().over().label("total"))
        .select_from(_org.join(owner, owner.c.id == _org.c.parent_id))
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    client, parent = _org.alias("client"), _org.alias("parent")
    per_status = [
        func.coalesce(func.sum(case((_counts.c.status == s, _counts.c.users), else_=0)), 0)
        for s in ACCOUNT_STATUSES
    ]
    page = (
        select(
            client.c.ref, client.c.name, parent.c.ref, parent.c.name, *per_status, page_ids.c.total
        )
        .select_from(page_ids)
        .join(client, client.c.id == page_ids.c.id)
        .join(parent, parent.c.id == client.c.parent_id)
        .outerjoin(_counts, _counts.c.client_id == client.c.id)
        .group_by(
            page_ids.c.sort_key,
            page_ids.c.total,
            client.c.id,
            client.c.ref,
            client.c.name,
            parent.c.ref,
            parent.c.name,
        )
        .order_by(
            *(
                (page_ids.c.sort_key.desc(), client.c.id.desc())
                if descending
                else (page_ids.c.sort_key, client.c.id)
            )
        )
    )
    return count, page


def search_clients(
    session: Session,
    actor: Actor,
    text: str | None = None,
    *,
    page: int = 1,
    page_size: int = 20,
    partner_ref: str | None = None,
    sort: str = "name",
    descending: bool = False,
) -> ClientPage:
    """Clients whose name or reference contains ``text`` (accent- and case-insensitive).

    The per-status user counts are the client's, except for a manager: their sub-account's.
    ``sort`` (one of ``CLIENT_SORTS``) orders the whole list in the database, so page 2 follows
    page 1 in that order.
    """
    _check_page_size(page_size)
    _check_sort(sort, CLIENT_SORTS)
    _check_search(text)
    if page < 1:
        raise ValidationError(
            _("Pages are numbered from 1, not {page}.").format(page=page), field="page", actual=page
        )
    params = _scope_params(actor)
    searching = bool(text and fold(text))
    if searching:
        params["pattern"] = like_pattern(text or "")
    if partner_ref:
        partner = _organisation_row(session, partner_ref, None)
        require_organisation(actor, partner, "list the clients of")  # type: ignore[arg-type]
        params["partner_path"] = _escape_like(partner.path) + "%"
    count, page_query = _client_statements(
        actor.is_client_side, searching, bool(partner_ref), sort, descending
    )
    connection = session.connection()
    params.update(limit=page_size, offset=(page - 1) * page_size)
    fetched = connection.execute(page_query, params).all()
    if actor.kind == "manager" and fetched:
        fetched = [(*row[:4], *_sub_account_counts(connection, actor), row[-1]) for row in fetched]
    records = [
        (ref, name, p_ref, p_name, a + b + c + d, a, b, c, d)
        for ref, name, p_ref, p_name, a, b, c, d, _ in fetched
    ]
    total = fetched[0][-1] if fetched else connection.execute(count, params).scalar_one()
    rows = pd.DataFrame.from_records(records, columns=CLIENT_COLUMNS)
    return ClientPage(rows, page, math.ceil(total / page_size), total)


_SUB_ACCOUNT_COUNTS = (
    select(_users.c.status, func.count())
    .where(_users.c.sub_account_id == bindparam("sub_id"))
    .group_by(_users.c.status)
)


def _sub_account_counts(connection: Any, actor: Actor) -> tuple[int, ...]:
    """A manager's users by status (in ``ACCOUNT_STATUSES`` order): a manager's view of their
    client counts their sub-account only, never the whole client's people (seed 002)."""
    counts = dict(connection.execute(_SUB_ACCOUNT_COUNTS, {"sub_id": actor.sub_account_id}).all())
    return tuple(int(counts.get(status, 0)) for status in ACCOUNT_STATUSES)


_ORG_BY_REF = select(_org.c.id, _org.c.kind, _org.c.ref, _org.c.name, _org.c.path).where(
    _org.c.ref == bindparam("ref")
)
_CLIENT_BY_REF = _ORG_BY_REF.where(_org.c.kind == "client")


def _organisation_row(session: Session, ref: str, kind: str | None) -> Any:
    """id, kind, ref, name and path of an organisation: enough for scope checks and messages."""
    query = _CLIENT_BY_REF if kind == "client" else _ORG_BY_REF
    row = session.connection().execute(query, {"ref": ref}).first()
    if row is None:
        raise NotFoundError(kind or "organisation", ref)
    return row


def _encode_cursor(sort_name: str, user_id: int) -> str:
    return f"{user_id}:{sort_name}"


def _decode_cursor(cursor: str) -> tuple[str, int]:
    user_id, sep, sort_name = cursor.partition(":")
    if not sep or not user_id.isdigit():
        raise ValidationError(
            _("The page cursor '{cursor}' is not one this directory gave out.").format(
                cursor=cursor
            ),
            field="cursor",
            actual=cursor,
        )
    return sort_name, int(user_id)


def _state_condition(state: str) -> Any:
    """Users whose row shows ``state`` (see :data:`STATE_FILTERS`), on the latest invitation."""
    u, latest = _users.c, _latest.c
    if state == "draft":
        return and_(u.status == "not_invited", u.draft.is_(True))
    open_ = latest.status.in_(OPEN_INVITATION_STATUSES)
    past = latest.expires_at <= bindparam("now")
    conditions = {
        "pending": and_(latest.status == "pending", ~past),
        "sent": and_(latest.status == "sent", ~past),
        "expired": or_(latest.status == "expired", and_(open_, past)),
        "bounced": latest.status == "bounced",
    }
    return and_(u.status == "invited", conditions[state])


@lru_cache(maxsize=256)
def _user_conditions(
    manager: bool, status: str | None, has_email: bool | None, sub_account: bool, searching: bool
) -> tuple:
    conditions = [_users.c.client_id == bindparam("client_id")]
    if manager:
        conditions.append(_users.c.sub_account_id == bindparam("scope_sub"))
    if status in STATE_FILTERS:
        conditions.append(_state_condition(status))
    elif status:
        conditions.append(_users.c.status == bindparam("status"))
    if has_email is True:
        conditions.append(_users.c.email.is_not(None))
    elif has_email is False:
        conditions.append(_users.c.email.is_(None))
    if sub_account:
        conditions.append(_users.c.sub_account_id == bindparam("sub_id"))
    if searching:
        conditions.append(_users.c.search_text.like(bindparam("pattern"), escape="\\"))
    return tuple(conditions)


_USERS_FROM = _users.outerjoin(_subs, _subs.c.id == _users.c.sub_account_id).outerjoin(
    _latest, _latest.c.id == LATEST_INVITATION_ID
)


def user_state(
    status: str, draft: bool, invitation: str | None, expires_at: Any, now: datetime
) -> str:
    """Where a user's account stands, as a stable code (one of :data:`USER_STATES`).

    An invited user's state is their latest invitation's: queued (``pending``), accepted by
    the mail server (``sent``), refused by it (``bounced``) or past its expiry (``expired``,
    whether or not the expiry job has run yet).
    """
    if status == "not_invited":
        return "draft" if draft else "not_invited"
    if status != "invited" or invitation is None:
        return status
    if invitation == "bounced":
        return "bounced"
    if invitation == "expired" or (expires_at is not None and expires_at <= now):
        return "expired"
    if invitation in ("pending", "sent"):
        return invitation
    return "pending"


#: The server's own words at the end of a refusal ("... : 550 5.1.1 Unknown user.").
_SERVER_REPLY = re.compile(r"\b([45]\d\d[ -].*?)\.?$")


def server_reply(reason: Any) -> str:
    """The mail server's own words in a bounce reason (``550 5.1.1 Unknown user``), else the
    whole reason."""
    reply = _SERVER_REPLY.search(str(reason or ""))
    return reply.group(1) if reply else str(reason or _("unknown reason"))


def role_words(role: Any) -> str:
    """A user's role (a stable code) as a word in the current language ('' when none)."""
    words = {
        "administrator": _("administrator"),
        "manager": _("manager"),
        "user": _("user"),
    }
    return words.get(role, role) if isinstance(role, str) else ""


def state_label(
    state: str,
    sent_at: Any = None,
    expires_at: Any = None,
    reason: Any = None,
    invited_at: Any = None,
) -> str:
    """The state as an analyst reads it in a listing ("invited (sent on December 1, 2026)").

    ``invited`` alone is a user marked invited with no invitation on record (data loaded from
    elsewhere): it shows the date they were marked.
    """
    if state == "sent":
        return _("invited (sent on {day})").format(day=long_date(sent_at))
    if state == "pending":
        return _("invited (waiting to be sent)")
    if state == "expired":
        return _("invitation expired (on {day})").format(day=long_date(expires_at))
    if state == "bounced":
        return _("address refused: {reply}").format(reply=server_reply(reason))
    if state == "draft":
        return _("draft (created without activation)")
    if state == "invited" and invited_at is not None and invited_at == invited_at:
        return _("invited ({day})").format(day=long_date(invited_at))
    return status_words(state)


@lru_cache(maxsize=256)
def _user_page_statement(
    filters: tuple, after: bool, sort: str = "name", descending: bool = False
) -> Select:
    conditions = list(_user_conditions(*filters))
    key = _users.c.sort_name if sort == "name" else _users.c.login
    if after:
        mine = tuple_(key, _users.c.id)
        theirs = tuple_(bindparam("after_name"), bindparam("after_id"))
        conditions.append(mine < theirs if descending else mine > theirs)
    u = _users.c
    return (
        select(
            u.login,
            u.civility,
            u.first_name,
            u.last_name,
            u.email,
            u.phone,
            u.mobile,
            u.status,
            u.status_changed_at,
            u.invited_at,
            u.activated_at,
            u.deactivated_at,
            literal_column("0"),
            _subs.c.name,
            u.role,
            u.right_manage_rights,
            u.right_place_orders,
            u.right_view_invoices,
            u.services,
            u.function,
            u.language,
            u.draft,
            _latest.c.status,
            _latest.c.sent_at,
            _latest.c.expires_at,
            _latest.c.status_reason,
            u.id,
            u.sort_name,
        )
        .select_from(_USERS_FROM)
        .where(and_(*conditions))
        .order_by(*((key.desc(), u.id.desc()) if descending else (key, u.id)))
        .limit(bindparam("limit"))
    )


@lru_cache(maxsize=256)
def _user_count_statement(filters: tuple) -> Select:
    source = _USERS_FROM if filters[1] in STATE_FILTERS else _users
    return select(func.count()).select_from(source).where(*_user_conditions(*filters))


_COUNTS_OF_CLIENT = select(func.coalesce(func.sum(_counts.c.users), 0)).where(
    _counts.c.client_id == bindparam("client_id")
)
_COUNTS_OF_CLIENT_STATUS = _COUNTS_OF_CLIENT.where(_counts.c.status == bindparam("status"))
_SUB_ACCOUNT_ID = select(_subs.c.id).where(
    _subs.c.client_id == bindparam("client_id"), _subs.c.name_folded == bindparam("name")
)


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
    page: int | None = None,
    sort: str = "name",
    descending: bool = False,
) -> UserPage:
    """One page of a client's users (deactivated ones included and flagged), in name order
    or by ``sort`` (one of ``USER_SORTS``).

    Pages follow each other by ``cursor`` (keyset: page 10 costs what page 1 costs); a cursor
    is only valid with the sort that made it. ``page`` asks for one by number instead (an
    OFFSET, and the total), for a person who types it.
    """
    _check_page_size(page_size)
    _check_sort(sort, USER_SORTS)
    _check_search(search)
    if page is not None and (page < 1 or cursor):
        raise ValidationError(
            _(
                "Ask for a page by a number from 1 or by a cursor, not {page} and '{cursor}'."
            ).format(page=page, cursor=cursor),
            field="page",
            actual=page,
        )
    if status is not None and status not in (*ACCOUNT_STATUSES, *STATE_FILTERS):
        known = ", ".join((*ACCOUNT_STATUSES, *STATE_FILTERS))
        raise ValidationError(
            _("The status must be one of {known}, not '{status}'.").format(
                known=known, status=status
            ),
            field="status",
            actual=status,
        )
    now = utcnow()
    client = _organisation_row(session, client_ref, "client")
    require_organisation(actor, client, "list the users of")
    connection = session.connection()
    params: dict[str, Any] = {"client_id": client.id, "status": status, "now": now}
    manager = actor.kind == "manager"
    if manager:
        params["scope_sub"] = actor.sub_account_id
    if sub_account:
        sub_id = connection.execute(
            _SUB_ACCOUNT_ID, {"client_id": client.id, "name": fold(sub_account)}
        ).scalar()
        if sub_id is None:
            raise ValidationError(
                _("Client {ref} has no sub-account named '{name}'.").format(
                    ref=client.ref, name=sub_account
                ),
                field="sub_account",
                actual=sub_account,
            )
        if manager and sub_id != actor.sub_account_id:
            raise AccessDeniedError(
                _("{actor} may only list their own sub-account.").format(actor=actor.describe())
            )
        params["sub_id"] = sub_id
    searching = bool(search and fold(search))
    if searching:
        params["pattern"] = like_pattern(search or "")
    filters = (manager, status, has_email, bool(sub_account), searching)
    if cursor:
        params["after_name"], params["after_id"] = _decode_cursor(cursor)
    params["limit"] = page_size + 1
    statement = _user_page_statement(filters, bool(cursor), sort, descending)
    if page is not None:
        statement = statement.offset((page - 1) * page_size)
        with_total = True
    fetched = connection.execute(statement, params).all()
    more = len(fetched) > page_size
    fetched = fetched[:page_size]
    rows = pd.DataFrame.from_records(
        [
            (
                *row[:12],
                row[7] == "deactivated",
                *row[13:22],
                user_state(row[7], row[21], row[22], row[24], now),
                *row[22:27],
            )
            for row in fetched
        ],
        columns=USER_COLUMNS,
    )
    last = fetched[-1] if more else None
    next_cursor = (
        _encode_cursor(last[27] if sort == "name" else last[0], last[26]) if last else None
    )
    total = None
    if with_total:
        if filters[0] or status in STATE_FILTERS or filters[2:] != (None, False, False):
            total = connection.execute(_user_count_statement(filters), params).scalar_one()
        else:  # the trigger-kept counters answer without touching users
            query = _COUNTS_OF_CLIENT_STATUS if status else _COUNTS_OF_CLIENT
            total = connection.execute(query, params).scalar_one()
    if total is None:
        return UserPage(rows, next_cursor, None)
    pages = math.ceil(total / page_size) if page is not None else None
    return UserPage(rows, next_cursor, int(total), page, pages)


def state_counts(session: Session, actor: Actor, client_ref: str) -> dict[str, int]:
    """How many of a client's users (a manager: of their sub-account) are in each state.

    Every code of :data:`USER_STATES` is present, zeros included: the invitations that left
    (``sent``), bounced or expired can be counted and filtered on, not only ``invited``.
    """
    client = _organisation_row(session, client_ref, "client")
    require_organisation(actor, client, "count the users of")
    now = utcnow()
    u, latest = _users.c, _latest.c
    past = case((latest.expires_at <= bindparam("now", now), 1), else_=0).label("past")
    query = (
        select(u.status, u.draft, latest.status, past, func.count())
        .select_from(_users.outerjoin(_latest, latest.id == LATEST_INVITATION_ID))
        .where(u.client_id == client.id)
        .group_by(u.status, u.draft, latest.status, past)
    )
    if actor.kind == "manager":
        query = query.where(u.sub_account_id == actor.sub_account_id)
    counts = dict.fromkeys(USER_STATES, 0)
    for status, draft, invitation, past, number in session.execute(query):
        state = user_state(status, bool(draft), invitation, now if past else None, now)
        counts[state] += number
    return counts


def iter_users(
    session: Session, actor: Actor, client_ref: str, *, page_size: int = 500, **filters: Any
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
        )
        frames.append(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


__all__ = [
    "STATE_FILTERS",
    "USER_STATES",
    "ClientPage",
    "UserPage",
    "iter_users",
    "list_users",
    "LATEST_INVITATION_ID",
    "require_page",
    "search_clients",
    "server_reply",
    "state_counts",
    "state_label",
    "role_words",
    "status_words",
    "user_state",
]
