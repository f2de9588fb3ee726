"""Scheduled jobs: parameterised notebooks run by papermill, locked, recorded.

- :mod:`.registry` — the named jobs and their parameters (read by papermill's inspection,
  imported when first asked, not with the package),
- :mod:`.runner` — :func:`run_job` (papermill; imported on first use),
- :mod:`.locks` — one run at a time per job, across machines on PostgreSQL,
- :mod:`.history` — :func:`job_history`,
- :mod:`.context` — :func:`open_job` for the notebooks themselves,
- :mod:`.main` — :func:`run_main_job`, the end-to-end demo chain.
"""

from __future__ import annotations

from typing import Any

from selfcare_ops.jobs.history import job_history
from selfcare_ops.jobs.registry import (
    JOBS,
    NOTEBOOKS_DIR,
    Job,
    get_job,
    job_description,
    notebook_parameters,
    resolve_parameters,
)

__all__ = [
    "JOBS",
    "NOTEBOOKS_DIR",
    "Job",
    "JobRunResult",
    "get_job",
    "job_description",
    "job_history",
    "notebook_parameters",
    "resolve_parameters",
    "run_job",
    "run_main_job",
]

_LAZY = {"run_job": "runner", "JobRunResult": "runner", "run_main_job": "main"}


def __getattr__(name: str) -> Any:
    # The runner imports papermill and jupyter_client (about a second): only when a job runs.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
