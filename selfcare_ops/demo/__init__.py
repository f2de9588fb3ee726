"""Load the demo data packaged with selfcare_ops (``selfcare_ops/demo/data/*.csv``) into the
database, idempotently.

A second load adds nothing: organisations are matched by reference, sub-accounts by client and
name, users by login, administrators by email. The files are package data (read through
:mod:`importlib.resources`), so ``selfcare-ops demo`` works from an installed wheel too.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.resources.abc import Traversable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import system_actor
from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.errors import ImportFileError
from selfcare_ops.organisations import create_operator
from selfcare_ops.store.bulk_sql import insert_rows
from selfcare_ops.store.models import Administrator, Organisation, SubAccount, User
from selfcare_ops.support.resources import DEMO_DIR
from selfcare_ops.support.textnorm import fold

DEMO_CLIENT_REF = "C0001"


@dataclass(frozen=True)
class DemoSummary:
    organisations_added: int
    sub_accounts_added: int
    users_added: int
    administrators_added: int
    organisations: int
    users: int


def _rows(path: Traversable) -> Iterator[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    except OSError as exc:
        raise ImportFileError(f"The demo file {path} cannot be read: {exc.strerror}.") from exc


def _dt(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def load_demo(session: Session, demo_dir: Traversable = DEMO_DIR) -> DemoSummary:
    """Insert whatever part of the demo data is missing (from ``demo_dir``: the packaged
    folder, or any folder with the same four files); commit is the caller's."""
    org_rows = list(_rows(demo_dir / "organisations.csv"))
    added_orgs = 0
    operator = session.scalar(select(Organisation).where(Organisation.kind == "operator"))
    if operator is None:
        root = next(r for r in org_rows if r["kind"] == "operator")
        operator, _ = create_operator(
            session,
            root["ref"],
            root["name"],
            login_domain=root["login_domain"] or None,
            language=root["language"] or "fr",
        )
        added_orgs += 1
    actor = system_actor(session)
    by_ref = {
        ref: (oid, path)
        for ref, oid, path in session.execute(
            select(Organisation.ref, Organisation.id, Organisation.path)
        )
    }
    for row in org_rows:
        if row["ref"] in by_ref or row["kind"] == "operator":
            continue
        parent_id, parent_path = by_ref[row["parent_ref"] or operator.ref]
        org = Organisation(
            kind=row["kind"],
            parent_id=parent_id,
            ref=row["ref"],
            name=row["name"],
            name_folded=fold(row["name"]),
            path=parent_path,
            login_domain=row["login_domain"] or None,
            language=row["language"] or None,
        )
        session.add(org)
        session.flush()
        org.path = f"{parent_path}{org.id}/"
        by_ref[org.ref] = (org.id, org.path)
        added_orgs += 1
    session.flush()

    existing_subs = {
        (cid, name)
        for cid, name in session.execute(select(SubAccount.client_id, SubAccount.name_folded))
    }
    new_subs = []
    for row in _rows(demo_dir / "sub_accounts.csv"):
        key = (by_ref[row["client_ref"]][0], fold(row["name"]))
        if key not in existing_subs:
            existing_subs.add(key)
            new_subs.append({"client_id": key[0], "name": row["name"], "name_folded": key[1]})
    if new_subs:
        insert_rows(session, SubAccount.__table__, new_subs)
    sub_ids = {
        (cid, name): sid
        for sid, cid, name in session.execute(
            select(SubAccount.id, SubAccount.client_id, SubAccount.name_folded)
        )
    }

    logins = set(session.scalars(select(User.login)))
    new_users = []
    for row in _rows(demo_dir / "users.csv"):
        if row["login"] in logins:
            continue
        client_id = by_ref[row["client_ref"]][0]
        email = row["email"] or None
        status = row["status"]
        changed = {
            "invited": row["invited_at"],
            "active": row["activated_at"],
            "deactivated": row["deactivated_at"],
        }.get(status) or row["created_at"]
        new_users.append(
            {
                "client_id": client_id,
                "sub_account_id": sub_ids.get((client_id, fold(row["sub_account"])))
                if row["sub_account"]
                else None,
                "login": row["login"],
                "civility": row["civility"] or None,
                "first_name": row["first_name"],
                "last_name": row["last_name"],
                "function": row["function"] or None,
                "language": row["language"] or None,
                "email": email,
                "phone": row["phone"] or None,
                "mobile": row["mobile"] or None,
                "services": row["services"] or None,
                "role": row["role"],
                "right_manage_rights": row["right_manage_rights"] == "1",
                "right_place_orders": row["right_place_orders"] == "1",
                "right_view_invoices": row["right_view_invoices"] == "1",
                "status": status,
                "status_changed_at": _dt(changed),
                "invited_at": _dt(row["invited_at"]),
                "activated_at": _dt(row["activated_at"]),
                "deactivated_at": _dt(row["deactivated_at"]),
                "created_at": _dt(row["created_at"]),
                "updated_at": _dt(row["created_at"]),
                **derived_columns(row["first_name"], row["last_name"], row["login"], email),
            }
        )
        logins.add(row["login"])
    insert_rows(session, User.__table__, new_users)  # counted per client by the insert itself

    admins = set(session.scalars(select(Administrator.email)))
    new_admins = 0
    for row in _rows(demo_dir / "administrators.csv"):
        if row["email"] not in admins:
            session.add(
                Administrator(
                    organisation_id=by_ref[row["org_ref"]][0],
                    email=row["email"],
                    display_name=row["display_name"],
                )
            )
            new_admins += 1
    session.flush()
    summary = DemoSummary(
        organisations_added=added_orgs,
        sub_accounts_added=len(new_subs),
        users_added=len(new_users),
        administrators_added=new_admins,
        organisations=session.scalar(select(func.count()).select_from(Organisation)) or 0,
        users=session.scalar(select(func.count()).select_from(User)) or 0,
    )
    if added_orgs or new_subs or new_users or new_admins:
        audit.record(
            session,
            actor,
            "demo.load",
            "database",
            None,
            target_label=str(demo_dir.name),
            organisation_id=operator.id,
            after={
                "organisations": added_orgs,
                "sub_accounts": len(new_subs),
                "users": len(new_users),
                "administrators": new_admins,
            },
        )
    return summary
