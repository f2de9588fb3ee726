"""One run at a time per job, across processes and machines.

On PostgreSQL the lock is a session-level advisory lock (``pg_try_advisory_lock``) held on a
dedicated autocommit connection for the whole run: it holds across machines and vanishes with
the process if it dies. On every database a ``job_locks`` row names the holder (host, pid,
run); on SQLite that row *is* the lock (its primary key makes the insert atomic), and a row
left by a process that no longer exists — same host, dead pid — or older than
:data:`STALE_AFTER` is taken over, its run recorded as abandoned.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from selfcare_ops.errors import ConcurrentRunError
from selfcare_ops.i18n import _
from selfcare_ops.store.models import JobLock, JobRun, utcnow
from selfcare_ops.support.dates import long_date_time

#: A lock row from another host older than this is considered abandoned.
STALE_AFTER = timedelta(hours=12)


def holder_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def advisory_key(job_name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``, one per job name."""
    digest = hashlib.sha256(f"selfcare_ops.job:{job_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(row: JobLock, run: JobRun | None) -> bool:
    if run is not None and run.status != "running":
        return True
    host, _sep, pid = row.holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not _pid_alive(int(pid))
    return utcnow() - row.acquired_at > STALE_AFTER


def _describe(row: JobLock | None) -> str:
    if row is None:
        return _("another process")
    since = long_date_time(row.acquired_at)
    if row.run_id:
        return _("{holder} (run {run}) since {since}").format(
            holder=row.holder, run=row.run_id, since=since
        )
    return _("{holder} since {since}").format(holder=row.holder, since=since)


def _refuse(job_name: str, row: JobLock | None) -> ConcurrentRunError:
    return ConcurrentRunError(
        _(
            "The job '{job}' is already running on {holder}: wait for it to finish (see "
            "`selfcare-ops jobs history`) before starting it again."
        ).format(job=job_name, holder=_describe(row))
    )


@dataclass
class JobLockHandle:
    """The held lock of one run; :meth:`release` frees it (idempotent)."""

    engine: Engine
    job_name: str
    holder: str
    connection: Connection | None = None
    released: bool = False

    def attach_run(self, run_id: int) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(JobLock)
                .where(JobLock.job_name == self.job_name, JobLock.holder == self.holder)
                .values(run_id=run_id)
            )

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(
                    delete(JobLock).where(
                        JobLock.job_name == self.job_name, JobLock.holder == self.holder
                    )
                )
        finally:
            if self.connection is not None:
                try:
                    self.connection.execute(
                        select(func.pg_advisory_unlock(advisory_key(self.job_name)))
                    )
                finally:
                    self.connection.close()


def _abandon(session: Session, row: JobLock) -> None:
    if row.run_id is not None:
        session.execute(
            update(JobRun)
            .where(JobRun.id == row.run_id, JobRun.status == "running")
            .values(
                status="failed",
                finished_at=utcnow(),
                error=_("Abandoned: its process {holder} stopped without recording an end.").format(
                    holder=row.holder
                ),
            )
        )
    session.delete(row)
    session.flush()


def acquire(engine: Engine, job_name: str) -> JobLockHandle:
    """Take the lock of ``job_name`` or raise :class:`ConcurrentRunError` naming the holder."""
    holder = holder_label()
    connection: Connection | None = None
    if engine.dialect.name == "postgresql":
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = connection.scalar(select(func.pg_try_advisory_lock(advisory_key(job_name))))
        if not got:
            connection.close()
            with Session(engine) as session:
                raise _refuse(job_name, session.get(JobLock, job_name))
    try:
        with Session(engine) as session, session.begin():
            row = session.get(JobLock, job_name)
            if row is not None:
                # With the advisory lock held, any row left behind is stale by definition.
                if connection is None and not _is_stale(
                    row, session.get(JobRun, row.run_id) if row.run_id else None
                ):
                    raise _refuse(job_name, row)
                _abandon(session, row)
            session.add(JobLock(job_name=job_name, holder=holder, acquired_at=utcnow()))
    except BaseException:
        if connection is not None:
            connection.execute(select(func.pg_advisory_unlock(advisory_key(job_name))))
            connection.close()
        raise
    return JobLockHandle(engine, job_name, holder, connection)
