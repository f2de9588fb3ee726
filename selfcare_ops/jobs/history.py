"""The record of job runs, newest first, as a DataFrame (``jobs history``).

Each run says who started it (``actor``). The system actor and operator administrators read
every run; anyone else reads the runs they started themselves, since a run's parameters (a
client, a file) belong to whoever ran it.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.access import Actor
from selfcare_ops.store.models import JobRun

HISTORY_COLUMNS = [
    "id",
    "job",
    "status",
    "actor",
    "started_at",
    "finished_at",
    "duration_s",
    "parameters",
    "output_path",
    "failed_cell",
    "error",
    "host",
    "pid",
]


def job_history(
    session: Session, actor: Actor, *, job: str | None = None, limit: int = 50
) -> pd.DataFrame:
    """The last ``limit`` runs (of ``job``, or of every job) ``actor`` may read, newest first."""
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job:
        query = query.where(JobRun.job_name == job)
    if actor.kind not in ("system", "operator_admin"):
        query = query.where(JobRun.actor_label == actor.label)
    rows = []
    for run in session.scalars(query):
        duration = (
            round((run.finished_at - run.started_at).total_seconds(), 3)
            if run.finished_at is not None
            else None
        )
        rows.append(
            {
                "id": run.id,
                "job": run.job_name,
                "status": run.status,
                "actor": run.actor_label,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "duration_s": duration,
                "parameters": run.parameters or {},
                "output_path": run.output_path,
                "failed_cell": run.failed_cell,
                "error": run.error,
                "host": run.host,
                "pid": run.pid,
            }
        )
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)
