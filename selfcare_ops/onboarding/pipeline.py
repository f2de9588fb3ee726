"""The whole import in one call (what the CLI and scheduled jobs run), streamed in chunks.

Chunk after chunk: plan (read-only session), apply (batched transactions), append the report.
Memory stays bounded by the chunk size plus what the planner remembers to catch duplicates
(the logins and emails of the file), so a file of a million lines fits comfortably. ``strict``
needs the whole plan before writing anything, so it plans everything first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor
from selfcare_ops.onboarding.apply import (
    DEFAULT_BATCH_SIZE,
    REPORT_COLUMNS,
    BatchHook,
    ImportReport,
    Progress,
    apply_plan,
    apply_rows,
    count_outcomes,
    finish_run,
    planned_report_rows,
    start_run,
)
from selfcare_ops.onboarding.plan import build_plan, empty_counts, make_planner
from selfcare_ops.onboarding.reading import RowSource, read_rows
from selfcare_ops.onboarding.report import ReportWriter, write_report
from selfcare_ops.store.models import ImportRun
from selfcare_ops.support.gcpause import collector_paused

#: Rows kept in memory for the returned report when ``keep_rows`` is off: rejected lines and
#: lines with notes (an encoding to check, a voided link), the first ones only.
KEPT_REJECTS = 1000


def import_users(
    session_factory: sessionmaker[Session],
    actor: Actor,
    source: Any,
    *,
    client_ref: str | None = None,
    dry_run: bool = False,
    invite: bool = False,
    strict: bool = False,
    create_sub_accounts: bool = False,
    report_path: str | Path | None = None,
    report_sep: str = ";",
    report_encoding: str = "utf-8-sig",
    separator: str | None = None,
    chunk_size: int = DEFAULT_BATCH_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    on_batch: BatchHook | None = None,
    keep_rows: bool = True,
) -> ImportReport:
    """Read, validate, plan, apply (unless ``dry_run``) and report ``source``.

    Returns the counts and the report rows (all of them with ``keep_rows``, else the first
    rejected or noted ones). The report CSV, when ``report_path`` is given, is written either
    way.
    """
    options = _Options(
        client_ref=client_ref,
        dry_run=dry_run,
        invite=invite,
        create_sub_accounts=create_sub_accounts,
        report_path=report_path,
        report_sep=report_sep,
        report_encoding=report_encoding,
        chunk_size=chunk_size,
        batch_size=batch_size,
        progress=progress,
        on_batch=on_batch,
    )
    rows = read_rows(source, separator=separator)
    try:
        if strict and not dry_run:
            return _strict(session_factory, actor, rows, options)
        return _streamed(session_factory, actor, rows, options, keep_rows=keep_rows)
    finally:
        rows.close()


@dataclass(frozen=True)
class _Options:
    client_ref: str | None
    dry_run: bool
    invite: bool
    create_sub_accounts: bool
    report_path: str | Path | None
    report_sep: str
    report_encoding: str
    chunk_size: int
    batch_size: int
    progress: Progress | None
    on_batch: BatchHook | None


def _streamed(
    session_factory: sessionmaker[Session],
    actor: Actor,
    rows: RowSource,
    options: _Options,
    *,
    keep_rows: bool,
) -> ImportReport:
    client_ref, dry_run, invite = options.client_ref, options.dry_run, options.invite
    create_sub_accounts, report_path = options.create_sub_accounts, options.report_path
    report_sep, report_encoding = options.report_sep, options.report_encoding
    chunk_size, batch_size = options.chunk_size, options.batch_size
    progress, on_batch = options.progress, options.on_batch
    planner = make_planner(
        actor, rows, client_ref=client_ref, create_sub_accounts=create_sub_accounts, invite=invite
    )
    with session_factory() as session:
        planner.prepare(session)
    run_id = start_run(session_factory, actor, rows.name, rows.sha256, dry_run=dry_run)
    writer = (
        ReportWriter(report_path, sep=report_sep, encoding=report_encoding) if report_path else None
    )
    counts = empty_counts()
    kept: list[dict[str, Any]] = []
    batches = done = 0
    client_id = planner.default_client.id if planner.default_client else None
    try:
        for chunk in rows.chunks(chunk_size):
            with session_factory() as session, collector_paused():
                planned = planner.plan_chunk(session, chunk)
            if dry_run:
                report_rows = planned_report_rows(planned)
            else:
                report_rows, batches = apply_rows(
                    session_factory,
                    actor,
                    planned,
                    run_id=run_id,
                    invite=invite,
                    batch_size=batch_size,
                    on_batch=on_batch,
                    first_batch=batches + 1,
                    organisation_id=client_id,
                    counts_before=counts,
                )
            count_outcomes(report_rows, counts)
            if writer:
                writer.write(report_rows)
            if keep_rows:
                kept.extend(report_rows)
            elif len(kept) < KEPT_REJECTS:
                kept.extend(r for r in report_rows if r["outcome"] == "rejected" or r["notes"])
            done += len(chunk)
            if progress:
                progress(done, max(done, rows.estimated_rows or done))
    finally:
        if writer:
            writer.close()
    finish_run(
        session_factory,
        actor,
        run_id,
        counts,
        report_path=str(report_path) if report_path else None,
        dry_run=dry_run,
        organisation_id=client_id,
    )
    return ImportReport(
        frame=pd.DataFrame(kept[: None if keep_rows else KEPT_REJECTS], columns=REPORT_COLUMNS),
        counts=counts,
        run_id=run_id,
        dry_run=dry_run,
        report_path=str(report_path) if report_path else None,
        warnings=list(rows.warnings),
        unknown_columns=list(rows.header.unknown),
    )


def _strict(
    session_factory: sessionmaker[Session], actor: Actor, rows: RowSource, options: _Options
) -> ImportReport:
    """All or nothing needs every line planned before the first write."""
    with session_factory() as session:
        plan = build_plan(
            session,
            actor,
            rows,
            client_ref=options.client_ref,
            create_sub_accounts=options.create_sub_accounts,
            invite=options.invite,
            chunk_size=options.chunk_size,
        )
    report = apply_plan(
        session_factory,
        actor,
        plan,
        strict=True,
        progress=options.progress,
        batch_size=options.batch_size,
        on_batch=options.on_batch,
    )
    if options.report_path:
        write_report(
            report, options.report_path, sep=options.report_sep, encoding=options.report_encoding
        )
        with session_factory.begin() as session:
            run = session.get(ImportRun, report.run_id)
            if run is not None:
                run.report_path = str(options.report_path)
    return report
