"""Matching one chunk of rows against the database: what each line will do, and why.

Rows are normalised (pure, see :mod:`.normalise`), then matched chunk by chunk: existing users
by login, then by email, then (for generated logins) by the login this person got from an
earlier import. Scope, sub-accounts, duplicates inside the file and conflicts with the database
are decided here, so that apply only writes. The planner remembers what earlier chunks claimed,
so streaming a file chunk by chunk gives the same plan as planning it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from selfcare_ops.access import (
    Actor,
    can_see_organisation,
    require_assignable,
    require_organisation,
    require_rights_manager,
)
from selfcare_ops.accounts.logins import make_login
from selfcare_ops.accounts.users import folded_sort_name
from selfcare_ops.errors import AccessDeniedError, ImportFileError, NotFoundError
from selfcare_ops.i18n import _
from selfcare_ops.onboarding.headers import FIELDS, RIGHT_FIELDS, HeaderMap
from selfcare_ops.onboarding.normalise import normalise_row
from selfcare_ops.onboarding.reading import RawRow
from selfcare_ops.onboarding.reasons import Reason, at_cell, at_line, codes
from selfcare_ops.onboarding.values import AMBIGUOUS_ADMIN_WORDS, compact
from selfcare_ops.store.bulk_sql import rows_where_in
from selfcare_ops.store.models import Organisation, SubAccount, User
from selfcare_ops.support.textnorm import fold

#: Fields an import can set on a user (besides the client and the sub-account).
VALUE_FIELDS = (
    "civility",
    "last_name",
    "first_name",
    "email",
    "phone",
    "mobile",
    "function",
    "language",
    "services",
    "role",
    *RIGHT_FIELDS,
)
PLAN_COLUMNS = [
    "line",
    "client",
    "action",
    "login",
    "last_name",
    "first_name",
    "email",
    "changes",
    "reason",
    "reason_code",
    "invite",
    "notes",
    "civility",
    "phone",
    "mobile",
    "function",
    "language",
    "services",
    "role",
    "sub_account",
    *RIGHT_FIELDS,
    "user_id",
    "client_id",
    "sub_account_id",
    "new_sub_account",
]
#: A plan row before its line is planned (copied per line: cheaper than building it anew).
_EMPTY_ROW: dict[str, Any] = {
    **dict.fromkeys(PLAN_COLUMNS),
    "changes": (),
    "reason": "",
    "notes": "",
    "invite": False,
}
ACTIONS = ("create", "update", "unchanged", "reject")
_USER_COLUMNS = (
    User.id,
    User.client_id,
    User.sub_account_id,
    User.login,
    User.status,
    User.sort_name,
    User.email_folded,
    *(getattr(User, name) for name in VALUE_FIELDS),
)
#: The same columns by name, for :func:`~selfcare_ops.store.bulk_sql.rows_where_in`.
_USER_NAMES = tuple(column.key for column in _USER_COLUMNS)


def empty_counts() -> dict[str, int]:
    return {"rows": 0, "create": 0, "update": 0, "unchanged": 0, "reject": 0, "invite": 0}


def add_note(row: dict[str, Any], note: str) -> None:
    """Add ``note`` to the row's notes (several may apply: encoding, sub-account, link)."""
    row["notes"] = f"{row['notes']} | {note}" if row["notes"] else note


@dataclass(frozen=True, slots=True)
class _ClientView:
    """What the per-row code reads of a client, as plain attributes (ORM ones cost more)."""

    id: int
    ref: str
    #: lower case, or None
    login_domain: str | None
    org: Organisation


class Planner:
    """Turns chunks of raw rows into plan rows, remembering what earlier chunks claimed.

    Holds no session: each :meth:`plan_chunk` call gets one, so apply can commit in between
    (streaming imports). Logins and emails claimed by earlier lines, and users already matched,
    are remembered so that duplicates inside the file are caught across chunks.
    """

    def __init__(
        self,
        actor: Actor,
        header: HeaderMap,
        *,
        client_ref: str | None = None,
        create_sub_accounts: bool = False,
        invite: bool = False,
    ) -> None:
        self.actor = actor
        self.header = header
        self.labels = {name: header.labels.get(name, FIELDS[name][0]) for name in FIELDS}
        self.client_ref = client_ref
        self.create_sub_accounts = create_sub_accounts
        self.invite = invite
        self.counts = empty_counts()
        self.default_client: Organisation | None = None
        self._clients: dict[str, Organisation | Reason] = {}
        self._subs: dict[int, dict[str, SubAccount]] = {}
        self._new_subs: set[tuple[int, str]] = set()
        self._has_users: dict[int, bool] = {}
        self._by_login: dict[str, dict[str, Any] | None] = {}
        self._by_email: dict[str, dict[str, Any] | None] = {}
        self._domains: set[str | None] = set()
        self._claimed_logins: dict[str, int] = {}
        self._claimed_emails: dict[str, int] = {}
        self._claimed_users: dict[int, int] = {}
        #: every login known to exist or claimed by a line: make_login's fast membership test
        self._taken: set[str] = set()
        #: make_login's per-stem numbers (valid because ``_taken`` only grows)
        self._login_hints: dict[tuple[str, str], int] = {}
        #: known users by (client id, sort name): the only ones a generated login may reuse
        self._by_name: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self._scope: dict[tuple[int, str, int | None], str | None] = {}
        self._new_clients_seen: set[int] = set()
        self._views: dict[int, _ClientView] = {}
        #: why this actor may not set rights (a manager without seed 004's right), or None
        self._rights_refusal: str | None = None
        if not header.has("client") and not client_ref:
            raise ImportFileError(
                _(
                    "The file has no client column (Client / Référence client): say which "
                    "client the users belong to (--client REF)."
                )
            )

    # --- lookups ---------------------------------------------------------------------------

    def _view(self, client: Organisation) -> _ClientView:
        view = self._views.get(id(client))
        if view is None:
            domain = client.login_domain.lower() if client.login_domain else None
            view = self._views[id(client)] = _ClientView(client.id, client.ref, domain, client)
        return view

    def prepare(self, session: Session) -> None:
        """Resolve the default client once: an unknown or out-of-scope client stops the import."""
        if self.client_ref and self.default_client is None:
            client = self._find_client(session, self.client_ref)
            if client is None:
                raise NotFoundError("client", self.client_ref)
            require_organisation(self.actor, client, "add users to")
            self.default_client = client
        if self.actor.kind == "manager":
            try:
                require_rights_manager(session, self.actor, "set rights through an import")
            except AccessDeniedError as exc:
                self._rights_refusal = str(exc).rstrip(".")

    def _find_client(self, session: Session, ref: str) -> Organisation | None:
        found = session.scalars(
            select(Organisation).where(
                Organisation.kind == "client",
                or_(Organisation.ref == ref, Organisation.ref == ref.upper()),
            )
        ).first()
        if found is None:
            named = session.scalars(
                select(Organisation)
                .where(Organisation.kind == "client", Organisation.name_folded == fold(ref))
                .limit(2)
            ).all()
            found = named[0] if len(named) == 1 else None
        return found

    def _client(self, session: Session, ref: str) -> Organisation | Reason:
        """The client named in a row, or the sentence saying why it cannot be used."""
        key = ref.strip()
        if key not in self._clients:
            client = self._find_client(session, key)
            if client is None:
                self._clients[key] = Reason(
                    "unknown_client", _("no client is known as {ref}").format(ref=repr(key))
                )
            elif not can_see_organisation(self.actor, client):
                self._clients[key] = Reason(
                    "out_of_scope",
                    _(
                        "{actor} may not add users to client {ref}: it is outside their scope"
                    ).format(actor=self.actor.describe(), ref=client.ref),
                )
            else:
                self._clients[key] = client
        return self._clients[key]

    def _sub_accounts(self, session: Session, client_id: int) -> dict[str, SubAccount]:
        if client_id not in self._subs:
            self._subs[client_id] = {
                sub.name_folded: sub
                for sub in session.scalars(
                    select(SubAccount).where(SubAccount.client_id == client_id)
                )
            }
        return self._subs[client_id]

    def _client_has_users(self, session: Session, client_id: int) -> bool:
        if client_id not in self._has_users:
            self._has_users[client_id] = bool(
                session.scalar(select(exists().where(User.client_id == client_id)))
            )
        return self._has_users[client_id]

    def _remember(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            user = dict(row)
            if user["login"] in self._taken:
                continue
            self._by_login[user["login"]] = user
            self._taken.add(user["login"])
            self._by_name.setdefault((user["client_id"], user["sort_name"]), []).append(user)
            if user["email_folded"]:
                self._by_email.setdefault(user["email_folded"], user)

    def _prefetch(self, session: Session, logins: set[str], emails: set[str]) -> None:
        logins = {login for login in logins if login not in self._by_login}
        emails = {email for email in emails if email not in self._by_email}
        table = User.__table__
        self._remember(rows_where_in(session, table, _USER_NAMES, "login", sorted(logins)))
        self._remember(rows_where_in(session, table, _USER_NAMES, "email_folded", sorted(emails)))
        for login in logins:
            self._by_login.setdefault(login, None)
        for email in emails:
            self._by_email.setdefault(email, None)

    def _load_domain(self, session: Session, domain: str | None) -> None:
        """Every login at ``domain`` (generated logins are checked against them in memory)."""
        if domain in self._domains:
            return
        self._domains.add(domain)
        if domain:
            where = User.login.endswith(f"@{domain}", autoescape=True)
        else:
            where = ~User.login.contains("@")
        self._remember(row._mapping for row in session.execute(select(*_USER_COLUMNS).where(where)))

    def _owner(self, session: Session, login: str, domain: str | None) -> dict[str, Any] | None:
        if login in self._by_login:
            return self._by_login[login]
        if domain in self._domains:
            return None
        self._prefetch(session, {login}, set())
        return self._by_login[login]

    # --- one chunk -------------------------------------------------------------------------

    def plan_chunk(self, session: Session, raw_rows: list[RawRow]) -> list[dict[str, Any]]:
        """Plan rows for these raw rows, in order; counts are accumulated on the planner."""
        self.prepare(session)
        normalised = [normalise_row(raw, self.labels) for raw in raw_rows]
        logins, emails = set(), set()
        for values, errors in normalised:
            if not errors:
                if values.get("login"):
                    logins.add(values["login"])
                if values.get("email"):
                    emails.add(values["email"].lower())
        self._prefetch(session, logins, emails)
        out = [
            self._plan_row(session, raw, values, errors)
            for raw, (values, errors) in zip(raw_rows, normalised, strict=True)
        ]
        self._keep_an_administrator(session, out)
        for row in out:
            self.counts["rows"] += 1
            self.counts[row["action"]] += 1
            self.counts["invite"] += bool(row["invite"])
        return out

    def _keep_an_administrator(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """Reject the lines that would leave a client without an administrator, as apply will.

        The same rule as :func:`~selfcare_ops.accounts.users.require_administrator_left` and
        the same reading as apply's batch: a promotion anywhere in the chunk counts, demotions
        count in line order. So a dry run says what apply does; apply checks again under the lock.
        """
        changed = [row for row in rows if row["action"] == "update" and "role" in row["changes"]]
        if not changed:
            return
        ids = {int(row["user_id"]) for row in changed}
        clients = {row["client_id"] for row in changed}
        people = {
            user_id: (client_id, role, status)
            for user_id, client_id, role, status in session.execute(
                select(User.id, User.client_id, User.role, User.status).where(
                    or_(User.id.in_(ids), User.client_id.in_(clients)),
                    or_(User.role == "administrator", User.id.in_(ids)),
                )
            )
        }
        joining = {int(row["user_id"]) for row in changed if row["role"] == "administrator"}
        leaving: set[int] = set()
        for row in changed:
            user_id = int(row["user_id"])
            client_id, was, status = people[user_id]
            if row["role"] == "administrator" or was != "administrator":
                continue
            if status == "deactivated":
                continue
            live = ("active",) if status == "active" else ("not_invited", "invited", "active")
            others = [
                other
                for other, (other_client, other_role, other_status) in people.items()
                if other_client == client_id
                and other != user_id
                and other not in leaving
                and other_status in live
                and (other_role == "administrator" or other in joining)
            ]
            if others:
                leaving.add(user_id)
                continue
            self._reject(
                row,
                None,
                [
                    at_line(
                        "last_administrator",
                        row["line"],
                        _(
                            "{login} is the last active administrator of client {client}: make "
                            "another active user administrator before you demote this account, "
                            "so the client is never left without one."
                        ).format(login=row["login"], client=row["client"]),
                    )
                ],
            )

    def _reject(
        self, row: dict[str, Any], raw: RawRow | None, reasons: list[str]
    ) -> dict[str, Any]:
        """Mark the row rejected; cells that could not be cleaned are shown as written."""
        row["action"] = "reject"
        row["reason"] = " | ".join(reasons)
        row["reason_code"] = codes(reasons)
        row["invite"] = False
        for name in ("last_name", "first_name", "email", "login"):
            if raw is not None and row.get(name) is None and raw.values.get(name):
                row[name] = raw.values[name].strip()[:200]
        return row

    def _plan_row(
        self, session: Session, raw: RawRow, values: dict[str, Any], errors: list[str]
    ) -> dict[str, Any]:
        line = raw.line
        row: dict[str, Any] = _EMPTY_ROW.copy()  # values never hold these keys (FIELDS)
        row.update(values)
        row["line"] = line
        row["notes"] = raw.note or ""
        client_cell = values.pop("client", None)
        if (
            values.get("role") == "administrator"
            and values.get("sub_account")
            and compact(raw.values["role"]) in AMBIGUOUS_ADMIN_WORDS
        ):
            errors = [
                *errors,
                at_cell(
                    "ambiguous_role",
                    line,
                    self.labels["role"],
                    _(
                        "{value} with the sub-account {sub_account} is ambiguous: write "
                        "'Administrateur' for the client's administrator (every sub-account) or "
                        "'Responsable de sous-compte' for the manager of {sub_account}"
                    ).format(
                        value=repr(raw.values["role"].strip()),
                        sub_account=repr(values["sub_account"]),
                    ),
                ),
            ]
        client: Organisation | Reason | None
        if client_cell:
            client = self._client(session, client_cell)
        else:
            client = self.default_client
            if client is None:
                errors = [
                    *errors,
                    at_cell(
                        "missing_client",
                        line,
                        self.labels["client"],
                        _("the client is missing (fill the column or pass --client)"),
                    ),
                ]
        view = None
        if isinstance(client, Reason):
            errors = [*errors, at_cell(client.code, line, self.labels["client"], client)]
            row["client"] = client_cell
        elif client is not None:
            view = self._view(client)
            row["client"] = view.ref
            row["client_id"] = view.id
        if errors or view is None:
            return self._reject(row, raw, errors)
        return self._match(session, row, values, view)

    def _match(
        self, session: Session, row: dict[str, Any], values: dict[str, Any], client: _ClientView
    ) -> dict[str, Any]:
        line = row["line"]
        labels = self.labels
        email = values.get("email")
        folded_email = email.lower() if email else None
        given_login = values.get("login")
        if given_login and "@" not in given_login and client.login_domain:
            given_login = f"{given_login}@{client.login_domain}"
        if folded_email and folded_email in self._claimed_emails:
            return self._reject(
                row,
                None,
                [
                    at_cell(
                        "duplicate_in_file",
                        line,
                        labels["email"],
                        _("{value} already appears on line {other} (duplicate in the file)").format(
                            value=email, other=self._claimed_emails[folded_email]
                        ),
                    )
                ],
            )
        if given_login and given_login in self._claimed_logins:
            return self._reject(
                row,
                None,
                [
                    at_cell(
                        "duplicate_in_file",
                        line,
                        labels["login"],
                        _("{value} already appears on line {other} (duplicate in the file)").format(
                            value=given_login, other=self._claimed_logins[given_login]
                        ),
                    )
                ],
            )
        by_email = self._by_email.get(folded_email) if folded_email else None
        existing: dict[str, Any] | None = None
        if given_login:
            existing = self._owner(session, given_login, None)
            login = given_login
            if existing is None and by_email is not None:
                return self._reject(
                    row,
                    None,
                    [
                        at_cell(
                            "email_taken",
                            line,
                            labels["email"],
                            _("{email} is already the email of {who}, not of {login}").format(
                                email=email, who=self._who(by_email, client), login=given_login
                            ),
                        )
                    ],
                )
        elif by_email is not None:
            existing, login = by_email, by_email["login"]
            same_person = by_email["sort_name"] == folded_sort_name(
                values["last_name"], values["first_name"]
            )
            if by_email["client_id"] == client.id and not same_person:
                return self._reject(
                    row,
                    None,
                    [
                        at_cell(
                            "email_taken",
                            line,
                            labels["email"],
                            _(
                                "{email} is already the email of the user {login} ({first_name} "
                                "{last_name}); to change that user's name, give their login in "
                                "the {column} column"
                            ).format(
                                email=email,
                                login=by_email["login"],
                                first_name=by_email["first_name"],
                                last_name=by_email["last_name"],
                                column=repr(labels["login"]),
                            ),
                        )
                    ],
                )
        else:
            login, existing = self._generate_login(session, values, client, folded_email)
        if existing is not None:
            if existing["client_id"] != client.id:
                if given_login:
                    column = labels["login"]
                    problem = _("this login belongs to a user of another client")
                else:
                    column = labels["email"]
                    problem = _("this email belongs to a user of another client")
                return self._reject(row, None, [at_cell("other_client", line, column, problem)])
            if given_login and _another_person(values, existing):
                return self._reject(
                    row,
                    None,
                    [
                        at_cell(
                            "another_person",
                            line,
                            labels["login"],
                            _(
                                "the login {login} is {first_name} {last_name}'s ({email}), but "
                                "this line's first name, last name and email all differ: it "
                                "looks like another person, so that account is left unchanged "
                                "(check the login, or leave it empty to create a new user)"
                            ).format(
                                login=given_login,
                                first_name=existing["first_name"],
                                last_name=existing["last_name"],
                                email=existing["email"] or _("no email"),
                            ),
                        )
                    ],
                )
            if existing["id"] in self._claimed_users:
                return self._reject(
                    row,
                    None,
                    [
                        at_line(
                            "duplicate_in_file",
                            line,
                            _(
                                "the user {login} is already imported by line {other} "
                                "(duplicate in the file)"
                            ).format(
                                login=existing["login"], other=self._claimed_users[existing["id"]]
                            ),
                        )
                    ],
                )
            if folded_email and by_email is not None and by_email["id"] != existing["id"]:
                return self._reject(
                    row,
                    None,
                    [
                        at_cell(
                            "email_taken",
                            line,
                            labels["email"],
                            _("{email} is already the email of {who}").format(
                                email=email, who=self._who(by_email, client)
                            ),
                        )
                    ],
                )
        row["login"] = login
        self._claimed_logins[login] = line
        self._taken.add(login)
        if folded_email:
            self._claimed_emails[folded_email] = line
        if existing is not None:
            self._claimed_users[existing["id"]] = line
            row["user_id"] = existing["id"]
            return self._update(session, row, values, client, existing)
        return self._create(session, row, values, client)

    def _who(self, user: dict[str, Any], client: _ClientView) -> str:
        if user["client_id"] == client.id:
            return _("the user {login}").format(login=user["login"])
        return _("a user of another client")

    def _generate_login(
        self,
        session: Session,
        values: dict[str, Any],
        client: _ClientView,
        folded_email: str | None,
    ) -> tuple[str, dict[str, Any] | None]:
        """The generated login; an existing same-named user holding it is this person again."""
        domain = client.login_domain
        self._load_domain(session, domain)
        sort_name = folded_sort_name(values["last_name"], values["first_name"])
        found: list[dict[str, Any]] = []
        namesakes = self._by_name.get((client.id, sort_name))
        if not namesakes or all(u["id"] in self._claimed_users for u in namesakes):
            # Nobody this person could already be: any known or claimed login is taken.
            login = make_login(
                values["first_name"],
                values["last_name"],
                domain,
                self._taken,
                hints=self._login_hints,
            )
            return login, None

        def taken(candidate: str) -> bool:
            if candidate in self._claimed_logins:
                return True
            owner = self._owner(session, candidate, domain)
            if owner is None:
                return False
            if (
                owner["client_id"] == client.id
                and owner["sort_name"] == sort_name
                and owner["id"] not in self._claimed_users
                and (owner["email_folded"] is None or folded_email is None)
            ):
                found.append(owner)
                return False
            return True

        login = make_login(values["first_name"], values["last_name"], domain, taken)
        return login, (found[-1] if found and found[-1]["login"] == login else None)

    def _sub_account(
        self, session: Session, row: dict[str, Any], client: _ClientView, name: str | None
    ) -> tuple[SubAccount | None, Reason | None]:
        """(existing sub-account, or None) and the refusal sentence, if any."""
        if not name:
            return None, None
        sub = self._sub_accounts(session, client.id).get(_folded(name))
        if sub is not None:
            return sub, None
        label = self.labels["sub_account"]
        if not self.create_sub_accounts:
            known = sorted(s.name for s in self._sub_accounts(session, client.id).values())
            shown = ", ".join(repr(n) for n in known[:10]) or _("none yet")
            return None, at_cell(
                "unknown_sub_account",
                row["line"],
                label,
                _(
                    "client {ref} has no sub-account {name} (existing: {known}); pass "
                    "--create-sub-accounts to create it"
                ).format(ref=client.ref, name=repr(name), known=shown),
            )
        if self.actor.kind == "manager":
            return None, at_cell(
                "not_allowed",
                row["line"],
                label,
                _(
                    "the sub-account {name} does not exist and {actor} may not create "
                    "sub-accounts (administrators only)"
                ).format(name=repr(name), actor=self.actor.describe()),
            )
        row["new_sub_account"] = name
        key = (client.id, _folded(name))
        if key not in self._new_subs:
            self._new_subs.add(key)
            add_note(row, _("the sub-account {name} will be created").format(name=repr(name)))
        return None, None

    def _assignable(
        self, row: dict[str, Any], client: _ClientView, role: str, sub: SubAccount | None
    ) -> Reason | None:
        key = (client.id, role, sub.id if sub else None)
        if key not in self._scope:
            try:
                require_assignable(self.actor, client.org, role, sub)
                self._scope[key] = None
            except AccessDeniedError as exc:
                self._scope[key] = str(exc).rstrip(".")
        refusal = self._scope[key]
        if not refusal:
            return None
        # The column to fix: the role a manager may not grant, else the sub-account.
        if self.actor.kind == "manager" and role == "administrator":
            column = self.labels["role"]
        else:
            column = self.labels["sub_account"]
        return at_cell("not_allowed", row["line"], column, refusal)

    def _create(
        self, session: Session, row: dict[str, Any], values: dict[str, Any], client: _ClientView
    ) -> dict[str, Any]:
        role = values.get("role")
        if role is None:
            first = (
                self.actor.kind != "manager"
                and not self._client_has_users(session, client.id)
                and client.id not in self._new_clients_seen
            )
            role = "administrator" if first else "user"
        self._new_clients_seen.add(client.id)
        sub_name = values.get("sub_account")
        if role == "administrator" and sub_name:
            add_note(row, _administrator_note())
            sub_name = None
            row["sub_account"] = None
        if role == "manager" and not sub_name:
            return self._reject(row, None, [self._manager_without_sub_account(row)])
        sub, refusal = self._sub_account(session, row, client, sub_name)
        if refusal is None:
            refusal = self._assignable(row, client, role, sub)
        if refusal:
            return self._reject(row, None, [refusal])
        for name in RIGHT_FIELDS:
            if row[name] is None:
                row[name] = False
        if self._rights_refusal and any(row[name] for name in RIGHT_FIELDS):
            return self._reject(
                row, None, [at_line("not_allowed", row["line"], self._rights_refusal)]
            )
        row.update(action="create", role=role, sub_account_id=sub.id if sub else None)
        row["invite"] = bool(self.invite and values.get("email"))
        return row

    def _update(
        self,
        session: Session,
        row: dict[str, Any],
        values: dict[str, Any],
        client: _ClientView,
        existing: dict[str, Any],
    ) -> dict[str, Any]:
        line = row["line"]
        if self.actor.kind == "manager" and existing["sub_account_id"] != self.actor.sub_account_id:
            return self._reject(
                row,
                None,
                [
                    at_line(
                        "out_of_scope",
                        line,
                        _("{actor} may not change {login}: outside their sub-account").format(
                            actor=self.actor.describe(), login=existing["login"]
                        ),
                    )
                ],
            )
        changes = []
        for name in VALUE_FIELDS:
            if name not in values or name == "role":
                continue
            new, old = values[name], existing[name]
            if name == "email":
                if (new or "").lower() != (existing["email_folded"] or ""):
                    changes.append(name)
            elif new != old:
                changes.append(name)
        role = values.get("role") or existing["role"]
        if role != existing["role"]:
            changes.append("role")
        sub_name = values.get("sub_account")
        sub: SubAccount | None = None
        sub_id = existing["sub_account_id"]
        if role == "administrator":
            if sub_name:
                add_note(row, _administrator_note())
            sub_id = None
        elif sub_name:
            sub, refusal = self._sub_account(session, row, client, sub_name)
            if refusal:
                return self._reject(row, None, [refusal])
            sub_id = sub.id if sub else None
        elif "sub_account" in values:  # '-': out of any sub-account
            sub_id = None
        elif sub_id is not None:
            known = self._sub_accounts(session, client.id).values()
            sub = next((candidate for candidate in known if candidate.id == sub_id), None)
        if role == "manager" and sub_id is None and not row["new_sub_account"]:
            return self._reject(row, None, [self._manager_without_sub_account(row)])
        if sub_id != existing["sub_account_id"] or row["new_sub_account"]:
            changes.append("sub_account")
        if "role" in changes or "sub_account" in changes:
            refusal = self._assignable(row, client, role, sub)
            if refusal:
                return self._reject(row, None, [refusal])
        if self._rights_refusal and set(changes) & set(RIGHT_FIELDS):
            return self._reject(row, None, [at_line("not_allowed", line, self._rights_refusal)])
        row.update(role=role, sub_account_id=sub_id, changes=tuple(changes))
        row["action"] = "update" if changes else "unchanged"
        email = values["email"] if "email" in values else existing["email"]
        email_changed = "email" in changes
        status = existing["status"]
        row["invite"] = bool(
            self.invite
            and email
            and (status == "not_invited" or (email_changed and status == "invited"))
        )
        if email_changed and status == "invited":
            if row["invite"]:
                then = _("a new invitation goes to the new address")
            elif email:
                then = _(
                    "the user goes back to not invited (import with --invite to send a new link)"
                )
            else:
                then = _(
                    "the user goes back to not invited and, without an email, cannot be invited"
                )
            add_note(
                row,
                _(
                    "the email changes: the invitation link sent to the old address is voided; "
                    "{then}"
                ).format(then=then),
            )
        if "email" not in values:
            row["email"] = existing["email"]
        for name in ("last_name", "first_name"):
            row[name] = row[name] or existing[name]
        return row

    def _manager_without_sub_account(self, row: dict[str, Any]) -> Reason:
        return at_cell(
            "missing_value",
            row["line"],
            self.labels["sub_account"],
            _(
                "a manager (responsable de sous-compte) acts in exactly one sub-account, and "
                "this line names none: give the sub-account, or make the line administrateur or "
                "utilisateur"
            ),
        )


def _administrator_note() -> str:
    return _("an administrator covers every sub-account: the sub-account is ignored")


def _another_person(values: dict[str, Any], existing: dict[str, Any]) -> bool:
    """Do the line's first name, last name and email all differ from the stored user's?

    Names are compared folded (a corrected accent or case is the same person); an empty email
    cell keeps the stored email, so it does not differ.
    """
    if "email" not in values:
        return False
    if (values["email"] or "").lower() == (existing["email_folded"] or ""):
        return False
    return _folded(values["last_name"]) != _folded(existing["last_name"]) and _folded(
        values["first_name"]
    ) != _folded(existing["first_name"])


#: Sub-account names repeat on every line: fold each distinct one once.
_folded = lru_cache(maxsize=4096)(fold)
