"""What a job notebook needs from its two common parameters, in one call.

``database_url`` ("" = the configured database) and ``output_dir`` ("" = a folder named after
the job under the configured runs directory) become settings, a session factory and an existing
output folder; ``actor`` (set by the runner: whoever started the run; None when a notebook is
run without it, e.g. by bare papermill: the system actor) becomes :meth:`JobContext.actor`, and
the notebook calls the services as that actor, which check it like any other path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, resolve_actor
from selfcare_ops.config import Settings, get_settings
from selfcare_ops.i18n import _
from selfcare_ops.store.db import check_ready, make_engine, make_session_factory
from selfcare_ops.support.resources import package_folder, packaged, real_path


@dataclass(frozen=True)
class JobContext:
    """Settings, database and output folder of one notebook run."""

    job: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    output_dir: Path
    #: The email of whoever runs the job (None: nobody named, the system actor).
    actor_email: str | None = None

    def actor(self, session: Session) -> Actor:
        """The running actor, read again in ``session`` (a deactivated account stops acting)."""
        return resolve_actor(session, self.actor_email)

    def input_path(self, name: str) -> Path:
        """An input file named by a parameter: absolute, or relative to the current folder,
        or else a file packaged with selfcare_ops (``demo/data/onboarding_sample.csv``, the
        onboarding default): papermill and nbval start kernels in different folders, and an
        installed wheel has no project folder.
        """
        path = Path(name).expanduser()
        if path.is_absolute() or path.exists():
            return path
        if ".." in path.parts:  # a packaged file is named from the package down, never above
            return path
        in_package = packaged(*path.parts)
        return real_path(in_package) if in_package.is_file() else path

    def save_json(self, name: str, data: dict) -> Path:
        """Write ``data`` as ``<output_dir>/<name>`` (dates and other objects as text)."""
        import json

        target = self.output_dir / name
        target.write_text(
            json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
        return target

    def save_csv(self, name: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` as ``<output_dir>/<name>`` for Excel, formula-like cells neutralised."""
        from selfcare_ops.support.exports import write_csv

        return write_csv(frame, self.output_dir / name)

    def describe(self) -> dict[str, str]:
        """Which interpreter, package and database this run uses (shown by every notebook)."""
        import sys

        from selfcare_ops.store.db import current_revision, describe

        return {
            "actor": self.actor_email or _("(the system actor)"),
            "python": sys.executable,
            "selfcare_ops": str(package_folder()),
            "database": describe(self.engine),
            "schema_revision": current_revision(self.engine) or "",
            "output_dir": str(self.output_dir),
        }


def open_job(
    job: str, *, database_url: str = "", output_dir: str = "", actor: str | None = None
) -> JobContext:
    """Settings from the environment, overridden by the notebook's parameters; schema and
    actor checked (an unknown or empty actor fails the first cell, not a later one)."""
    settings = get_settings()
    if database_url:
        settings = replace(settings, database_url=database_url)
    folder = Path(output_dir) if output_dir else settings.runs_dir / job / "output"
    folder.mkdir(parents=True, exist_ok=True)
    if settings.mail_transport == "maildir":
        # The Maildir itself is created by its transport, but not the folders above it.
        settings.maildir.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    check_ready(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        resolve_actor(session, actor)
    return JobContext(job, settings, engine, sessions, folder, actor)
