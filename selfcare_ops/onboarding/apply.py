"""Apply a plan: batches, each one transaction holding its users, its audit events and its
invitations, so a crash leaves whole batches only and running the import again completes it.

Idempotent: before writing, each batch looks again at the database — a create whose login now
exists, or an update whose values are already there, changes nothing. Bulk statements
(executemany) write the rows; no ORM object is made per user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops import audit
from selfcare_ops.access import Actor
from selfcare_ops.accounts.subaccounts import create_sub_account
from selfcare_ops.accounts.users import (
    derived_column_lists,
    derived_columns,
    require_administrator_left,
)
from selfcare_ops.errors import DatabaseError, LastAdministratorError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.invitations.bulk import invite_user_ids
from selfcare_ops.invitations.issuing import Target, issue, supersede_pending
from selfcare_ops.onboarding.headers import RIGHT_FIELDS
from selfcare_ops.onboarding.plan import VALUE_FIELDS, Plan, empty_counts
from selfcare_ops.onboarding.reasons import at_line
from selfcare_ops.store.bulk_sql import insert_columns, rows_where_in
from selfcare_ops.store.models import (
    OPEN_INVITATION_STATUSES,
    ImportRun,
    Invitation,
    SubAccount,
    User,
    utcnow,
)
from selfcare_ops.support.batching import chunks
from selfcare_ops.support.gcpause import collector_paused
from selfcare_ops.support.textnorm import fold

Progress = Callable[[int, int], None]
#: Called inside each batch's transaction, before it commits: ``on_batch(number, session)``.
#: Raising there rolls the batch back (used to prove a crash leaves no half-applied batch).
BatchHook = Callable[[int, Session], None]

REPORT_COLUMNS = [
    "line",
    "client",
    "action",
    "outcome",
    "login",
    "last_name",
    "first_name",
    "email",
    "changes",
    "reason",
    "reason_code",
    "invite",
    "notes",
    "user_id",
]
DEFAULT_BATCH_SIZE = 20_000
#: Keys per ``IN (...)`` (SQLite allows 32,766 bound parameters per statement).
_IN_CHUNK = 5000


@dataclass
class ImportReport:
    """Every input line with its outcome; ``counts`` as the CLI prints them."""

    frame: pd.DataFrame
    counts: dict[str, int]
    run_id: int | None = None
    dry_run: bool = False
    report_path: str | None = None
    warnings: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The counts in one sentence of the current language (what a dry run would do)."""
        c = self.counts
        if self.dry_run:
            text = ngettext(
                "{rows} row: {create} would be created, {update} would be updated, "
                "{unchanged} unchanged, {reject} rejected, {invite} to invite.",
                "{rows} rows: {create} would be created, {update} would be updated, "
                "{unchanged} unchanged, {reject} rejected, {invite} to invite.",
                c["rows"],
            )
        else:
            text = ngettext(
                "{rows} row: {create} created, {update} updated, {unchanged} unchanged, "
                "{reject} rejected, {invite} invited.",
                "{rows} rows: {create} created, {update} updated, {unchanged} unchanged, "
                "{reject} rejected, {invite} invited.",
                c["rows"],
            )
        return text.format(**{key: c[key] for key in empty_counts()})


def start_run(
    session_factory: sessionmaker[Session],
    actor: Actor,
    source_name: str,
    sha256: str | None,
    *,
    dry_run: bool,
) -> int:
    with session_factory.begin() as session:
        run = ImportRun(
            source_name=source_name[:500],
            source_sha256=sha256,
            actor_label=actor.label,
            dry_run=dry_run,
        )
        session.add(run)
        session.flush()
        return run.id


def save_progress(
    session: Session,
    actor: Actor,
    run_id: int,
    counts: dict[str, int],
    *,
    organisation_id: int | None,
    finished: bool = False,
    action: str = "import.apply",
) -> None:
    """The run's counts so far and its one audit event, in the caller's transaction.

    Called in each batch's transaction, so that from the first commit on the users an import
    created point at a run that has counts and an event (``audit list --target LOGIN`` finds
    it), even if the import is killed before it finishes (``finished`` stays false).
    """
    run = session.get(ImportRun, run_id)
    assert run is not None
    run.counts = dict(counts)
    audit.record_progress(
        session,
        actor,
        action,
        "import_run",
        run_id,
        target_label=run.source_name[:300],
        organisation_id=organisation_id,
        after={**counts, "source_sha256": run.source_sha256, "finished": finished},
    )


def finish_run(
    session_factory: sessionmaker[Session],
    actor: Actor,
    run_id: int,
    counts: dict[str, int],
    *,
    report_path: str | None,
    dry_run: bool,
    organisation_id: int | None = None,
    strict_refused: bool = False,
) -> None:
    """Close the run with its counts and bring the import's one audit event to its end."""
    with session_factory.begin() as session:
        run = session.get(ImportRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.counts = dict(counts)
        run.report_path = report_path
        if not dry_run:
            save_progress(
                session,
                actor,
                run_id,
                counts,
                organisation_id=organisation_id,
                finished=True,
                action="import.refused" if strict_refused else "import.apply",
            )


def _create_sub_accounts(
    session: Session, actor: Actor, rows: list[dict[str, Any]], client_refs: dict[int, str]
) -> None:
    """Create the sub-accounts the rows ask for (once each) and point the rows at them."""
    wanted: dict[tuple[int, str], str] = {}
    for row in rows:
        if row["new_sub_account"]:
            wanted.setdefault(
                (row["client_id"], fold(row["new_sub_account"])), row["new_sub_account"]
            )
    ids: dict[tuple[int, str], int] = {}
    for (client_id, folded), name in wanted.items():
        found = session.scalar(
            select(SubAccount.id).where(
                SubAccount.client_id == client_id, SubAccount.name_folded == folded
            )
        )
        if found is None:
            found = create_sub_account(session, actor, client_refs[client_id], name).id
        ids[(client_id, folded)] = found
    for row in rows:
        if row["new_sub_account"]:
            row["sub_account_id"] = ids[(row["client_id"], fold(row["new_sub_account"]))]


def _insert_users(
    session: Session, rows: list[dict[str, Any]], now: Any, run_id: int, invite: bool
) -> None:
    """Insert the batch's new users through the one bulk insert (ids come back in order).

    Users to invite are written ``invited`` at once (their invitations follow in the same
    transaction); the client counts follow from the insert itself (see ``ClientUserCount``).
    The rows go to the insert column by column: no dictionary per user to take apart again.
    """
    columns: dict[str, list[Any]] = {
        name: [row[name] for row in rows]
        for name in (*VALUE_FIELDS, "client_id", "sub_account_id", "login")
    }
    for name in RIGHT_FIELDS:
        columns[name] = [bool(value) for value in columns[name]]
    invited = [
        invite and bool(row["invite"]) and bool(email)
        for row, email in zip(rows, columns["email"], strict=True)
    ]
    columns["status"] = ["invited" if flag else "not_invited" for flag in invited]
    columns["invited_at"] = [now if flag else None for flag in invited]
    columns.update(
        derived_column_lists(
            columns["first_name"], columns["last_name"], columns["login"], columns["email"]
        )
    )
    same = {
        "import_run_id": run_id,
        "status_changed_at": now,
        "created_at": now,
        "updated_at": now,
    }
    ids = insert_columns(
        session, User.__table__, columns, same=same, count=len(rows), return_ids=True
    )
    for row, user_id in zip(rows, ids, strict=True):
        row["user_id"] = user_id


def _invite_new_users(
    session: Session, actor: Actor, rows: list[dict[str, Any]], now: Any
) -> set[int]:
    """Invitations for users this batch created ``invited``: nothing to claim or supersede.

    Audited by the import's own event (its counts) and by each invitation row (sent by whom,
    when), not by one more audit row per invitation.
    """
    targets = [
        Target(
            email=row["email"],
            organisation_id=row["client_id"],
            user_id=row["user_id"],
            login=row["login"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            language=row["language"],
        )
        for row in rows
    ]
    issue(session, actor, targets, now=now, audit_each=False, keep=False)
    return {row["user_id"] for row in rows}


def apply_batch(
    session: Session,
    actor: Actor,
    rows: list[dict[str, Any]],
    *,
    run_id: int,
    invite: bool,
) -> dict[int, tuple[str, bool]]:
    """Write one batch in the caller's transaction; line -> (outcome, invited).

    Created users are traced to the import by ``users.import_run_id`` (the import's one audit
    event holds the counts); updates get an audit event each, with the fields before and after.
    """
    now = utcnow()
    outcomes: dict[int, tuple[str, bool]] = {}
    client_refs = {row["client_id"]: row["client"] for row in rows}
    if any(row["new_sub_account"] for row in rows):
        _create_sub_accounts(session, actor, rows, client_refs)
    creates = [row for row in rows if row["action"] == "create"]
    updates = [row for row in rows if row["action"] == "update"]
    invited: set[int] = set()
    fresh: list[dict[str, Any]] = []
    if creates:
        logins = [r["login"] for r in creates]
        present = {
            row["login"]
            for row in rows_where_in(session, User.__table__, ("login",), "login", logins)
        }
        fresh = [row for row in creates if row["login"] not in present]
        for row in creates:
            if row["login"] in present:
                row["user_id"] = None  # someone else's now: the invitation is not for them
                outcomes[row["line"]] = ("unchanged", False)
        if fresh:
            _insert_users(session, fresh, now, run_id, invite)
            for row in fresh:
                outcomes[row["line"]] = ("created", False)
            if invite:
                new_invites = [row for row in fresh if row["invite"] and row["email"]]
                if new_invites:
                    invited |= _invite_new_users(session, actor, new_invites, now)
    if updates:
        audit.record_many(session, _apply_updates(session, actor, updates, outcomes, run_id, now))
    if invite:
        fresh_ids = {row["user_id"] for row in fresh}
        wanted = [
            int(row["user_id"])
            for row in rows
            if row["invite"] and row["user_id"] is not None and row["user_id"] not in fresh_ids
        ]
        if wanted:
            invite_user_ids(session, actor, wanted)
            invited |= set(
                session.scalars(
                    select(User.id).where(User.id.in_(wanted), User.status == "invited")
                )
            )
    for row in rows:
        if row["user_id"] in invited:
            outcome = outcomes.get(row["line"], ("unchanged", False))[0]
            outcomes[row["line"]] = (outcome, True)
        outcomes.setdefault(row["line"], ("unchanged", False))
    return outcomes


def _void_links(session: Session, user_ids: list[int], now: Any) -> tuple[dict[int, int], set[int]]:
    """Void the open invitations of users whose email changed; (links voided per user, users
    moved back from ``invited`` to ``not_invited``).

    Their links went to the old address: none stays valid, and an invited user is no longer
    invited at their current address (``--invite`` sends a new link to the new one).
    """
    voided: dict[int, int] = {}
    for part in chunks(user_ids, _IN_CHUNK):
        voided.update(
            session.execute(
                select(Invitation.user_id, func.count())
                .where(
                    Invitation.user_id.in_(part),
                    Invitation.status.in_(OPEN_INVITATION_STATUSES),
                )
                .group_by(Invitation.user_id)
            ).all()
        )
    supersede_pending(session, user_ids=user_ids, now=now, reason="email_changed")
    reset: set[int] = set()
    for part in chunks(user_ids, _IN_CHUNK):
        reset.update(
            session.scalars(
                update(User)
                .where(User.id.in_(part), User.status == "invited")
                .values(status="not_invited", invited_at=None, status_changed_at=now)
                .returning(User.id)
                .execution_options(synchronize_session=False)
            )
        )
    return voided, reset


def _apply_updates(
    session: Session,
    actor: Actor,
    rows: list[dict[str, Any]],
    outcomes: dict[int, tuple[str, bool]],
    run_id: int,
    now: Any,
) -> list[dict[str, Any]]:
    """Write the batch's updates; returns their audit events (fields before and after).

    Values are compared again with the database (idempotence). A line that would demote a
    client's last administrator is rejected
    (:func:`~selfcare_ops.accounts.users.require_administrator_left`); an email change voids
    the user's invitation links and cancels their unsent mails.
    """
    ids = [int(row["user_id"]) for row in rows]
    columns = (
        User.id,
        User.login,
        User.sub_account_id,
        User.email_folded,
        User.status,
        *(getattr(User, name) for name in VALUE_FIELDS),
    )
    current = {r.id: r._mapping for r in session.execute(select(*columns).where(User.id.in_(ids)))}
    pending: list[tuple[dict[str, Any], Any, dict[str, Any]]] = []
    # Administrators this batch makes count for the guard wherever their line is in the file.
    admins = {
        "leaving": set(),
        "joining": {int(r["user_id"]) for r in rows if r["role"] == "administrator"},
    }
    for row in rows:
        old = current.get(int(row["user_id"]))
        if old is None:
            outcomes[row["line"]] = ("unchanged", False)
            continue
        new: dict[str, Any] = {}
        for name in row["changes"]:
            if name == "sub_account":
                if row["sub_account_id"] != old["sub_account_id"]:
                    new["sub_account_id"] = row["sub_account_id"]
            elif name == "email":
                if (row["email"] or "").lower() != (old["email_folded"] or ""):
                    new["email"] = row["email"]
            elif row[name] != old[name]:
                new[name] = row[name]
        if new.get("role") == "administrator" or (
            row["role"] == "administrator" and old["sub_account_id"] is not None
        ):
            new["sub_account_id"] = None
        if "role" in new and _demotes_last_administrator(session, row, old, new, admins):
            outcomes[row["line"]] = ("rejected", False)
            continue
        if not new:
            outcomes[row["line"]] = ("unchanged", False)
            continue
        pending.append((row, old, new))
    moved = [old["id"] for _, old, new in pending if "email" in new]
    voided, reset = _void_links(session, moved, now) if moved else ({}, set())
    changes: list[dict[str, Any]] = []
    events = []
    for row, old, new in pending:
        merged = {**dict(old), **new}
        before = {k: old[k] for k in new if k in old}
        after = {k: v for k, v in new.items() if k in old}
        if "email" in new:
            after["links_voided"] = voided.get(old["id"], 0)
            if old["id"] in reset:
                before["status"], after["status"] = old["status"], "not_invited"
        new.update(
            derived_columns(
                merged["first_name"], merged["last_name"], old["login"], merged["email"]
            )
        )
        new["updated_at"] = now
        changes.append({"_id": old["id"], **new})
        outcomes[row["line"]] = ("updated", False)
        events.append(
            audit.event_row(
                actor,
                "user.import.update",
                "user",
                old["id"],
                target_label=old["login"],
                organisation_id=row["client_id"],
                before={"import_run": run_id, "line": row["line"], **before},
                after={"import_run": run_id, "line": row["line"], **after},
                occurred_at=now,
            )
        )
    # One statement per set of changed columns keeps executemany working on every database.
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_keys.setdefault(tuple(sorted(change)), []).append(change)
    table = User.__table__
    for keys, params in by_keys.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({k: bindparam(k) for k in keys if k != "_id"})
        )
        session.execute(statement, params)
    return events


def _demotes_last_administrator(
    session: Session,
    row: dict[str, Any],
    old: Any,
    new: dict[str, Any],
    admins: dict[str, set[int]],
) -> bool:
    """Whether this line's role change is refused by the last-administrator guard (then its
    reason names the line); the batch's promotions and earlier demotions count as applied."""
    if old["role"] != "administrator" or new["role"] == "administrator":
        return False
    try:
        require_administrator_left(
            session,
            row["client_id"],
            old["id"],
            action="demote",
            also_leaving=admins["leaving"],
            joining=admins["joining"],
        )
    except LastAdministratorError as error:
        reason = at_line("last_administrator", row["line"], str(error))
        row.update(reason=reason, reason_code=reason.code, invite=False)
        return True
    admins["leaving"].add(old["id"])
    return False


def _report_row(row: dict[str, Any], outcome: str, invited: bool) -> dict[str, Any]:
    out = {name: row.get(name) for name in REPORT_COLUMNS}
    out["outcome"] = outcome
    out["invite"] = invited
    return out


def planned_report_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report rows of a dry run: the outcome is what would happen."""
    planned = {
        "create": "would be created",
        "update": "would be updated",
        "unchanged": "unchanged",
        "reject": "rejected",
    }
    return [_report_row(row, planned[row["action"]], bool(row["invite"])) for row in rows]


def apply_rows(
    session_factory: sessionmaker[Session],
    actor: Actor,
    rows: list[dict[str, Any]],
    *,
    run_id: int,
    invite: bool,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    on_batch: BatchHook | None = None,
    first_batch: int = 1,
    done_before: int = 0,
    total: int | None = None,
    single_transaction: bool = False,
    organisation_id: int | None = None,
    counts_before: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Apply planned rows in batches; returns (report rows, batches used).

    Each batch's transaction also saves the counts so far (``counts_before``, from earlier
    chunks of a streamed file, plus this call's lines up to the batch's last one) on the run
    and its audit event: see :func:`save_progress`.
    """
    total = total if total is not None else len(rows)
    outcomes: dict[int, tuple[str, bool]] = {}
    positions = [
        index for index, r in enumerate(rows) if r["action"] in ("create", "update") or r["invite"]
    ]
    number = first_batch - 1
    done = done_before
    report: list[dict[str, Any]] = []
    so_far = dict(counts_before) if counts_before is not None else empty_counts()

    def report_until(end: int) -> list[dict[str, Any]]:
        """Report rows up to ``rows[end - 1]`` (every outcome there is known)."""
        start = len(report)
        for row in rows[start:end]:
            if row["action"] == "reject":
                report.append(_report_row(row, "rejected", False))
            else:
                outcome, invited = outcomes.get(row["line"], ("unchanged", False))
                report.append(_report_row(row, outcome, invited))
        return report[start:]

    def run(session: Session, batch: list[int], number: int) -> None:
        outcomes.update(
            apply_batch(session, actor, [rows[i] for i in batch], run_id=run_id, invite=invite)
        )
        count_outcomes(report_until(batch[-1] + 1), so_far)
        save_progress(session, actor, run_id, so_far, organisation_id=organisation_id)
        if on_batch is not None:
            on_batch(number, session)

    with collector_paused():  # see gcpause: the batch's rows all live until it is written
        try:
            if single_transaction:
                with session_factory.begin() as session:
                    for batch in chunks(positions, batch_size):
                        number += 1
                        run(session, batch, number)
                        done += len(batch)
                        if progress:
                            progress(done, total)
            else:
                for batch in chunks(positions, batch_size):
                    number += 1
                    with session_factory.begin() as session:
                        run(session, batch, number)
                    done += len(batch)
                    if progress:
                        progress(done, total)
        except SQLAlchemyError as exc:
            first, last = rows[batch[0]]["line"], rows[batch[-1]]["line"]
            raise DatabaseError(
                _(
                    "Batch {number} (lines {first} to {last}) could not be written and was "
                    "rolled back: {problem}. Earlier batches are saved; run the same import "
                    "again to complete it."
                ).format(
                    number=number,
                    first=first,
                    last=last,
                    problem=exc.orig if hasattr(exc, "orig") else exc,
                )
            ) from exc
    if progress and done < total:
        progress(total, total)  # the lines with nothing to write are done too
    report_until(len(rows))
    return report, number


def count_outcomes(report_rows: Iterable[dict[str, Any]], counts: dict[str, int]) -> None:
    names = {
        "created": "create",
        "updated": "update",
        "unchanged": "unchanged",
        "rejected": "reject",
    }
    for row in report_rows:
        counts["rows"] += 1
        key = names.get(row["outcome"])
        if key:
            counts[key] += 1
        elif row["outcome"].startswith("would be "):
            counts[
                {"would be created": "create", "would be updated": "update"}[row["outcome"]]
            ] += 1
        counts["invite"] += bool(row["invite"])


def apply_plan(
    session_factory: sessionmaker[Session],
    actor: Actor,
    plan: Plan,
    *,
    strict: bool = False,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchHook | None = None,
) -> ImportReport:
    """Apply ``plan`` (from :func:`build_plan`); returns every line with its outcome.

    Rejected lines never block the others, unless ``strict``: then any rejected line means
    nothing is written (and the whole plan is one transaction).
    """
    rows = plan.records()
    run_id = start_run(session_factory, actor, plan.source_name, plan.sha256, dry_run=False)
    counts = empty_counts()
    refused = strict and plan.counts["reject"] > 0
    organisation_ids = {row["client_id"] for row in rows if row["client_id"] is not None}
    organisation_id = organisation_ids.pop() if len(organisation_ids) == 1 else None
    if refused:
        report_rows = [
            _report_row(row, "rejected" if row["action"] == "reject" else "not applied", False)
            for row in rows
        ]
    else:
        report_rows, _batches = apply_rows(
            session_factory,
            actor,
            rows,
            run_id=run_id,
            invite=plan.invite,
            batch_size=batch_size,
            progress=progress,
            on_batch=on_batch,
            single_transaction=strict,
            organisation_id=organisation_id,
        )
    count_outcomes(report_rows, counts)
    finish_run(
        session_factory,
        actor,
        run_id,
        counts,
        report_path=None,
        dry_run=False,
        organisation_id=organisation_id,
        strict_refused=refused,
    )
    return ImportReport(
        frame=pd.DataFrame(report_rows, columns=REPORT_COLUMNS),
        counts=counts,
        run_id=run_id,
        warnings=list(plan.warnings),
        unknown_columns=list(plan.unknown_columns),
    )
