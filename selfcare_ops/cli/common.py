"""What every command shares: settings, the database, the acting actor, output helpers."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import click
import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..access import Actor, resolve_actor
from ..config import Settings, get_settings
from ..db import check_ready, make_engine, make_session_factory
from .output import discard_output, echo, reset_output  # noqa: F401  (commands import them here)


@dataclass
class CliContext:
    """What every command shares; ``actor_email`` is ``--as`` (None when not given)."""

    actor_email: str | None
    settings: Settings = field(default_factory=get_settings)
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def sessions(self, *, check: bool = True) -> sessionmaker[Session]:
        """A session factory on a database that is reachable and migrated."""
        if check:
            check_ready(self.engine)
        return make_session_factory(self.engine)

    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for commands that only read: they never wait for SQLite's write lock."""
        check_ready(self.engine)
        return make_session_factory(self.engine, read_only=True)

    @property
    def actor_name(self) -> str | None:
        """Who is named: ``--as``, else ``SELFCARE_OPS_ACTOR`` (environment or settings file),
        else None (the system actor). An empty name stays empty, to be refused."""
        return self.actor_email if self.actor_email is not None else self.settings.actor

    def actor(self, session: Session) -> Actor:
        """The acting actor, checked against the database (unknown or empty: an error)."""
        return resolve_actor(session, self.actor_name)

    def require_actor(self, check: Callable[[Actor], None]) -> Actor:
        """Resolve the actor in a short read session and apply ``check`` (a refusal raises):
        for commands that do not otherwise open a session as the actor."""
        with self.read_sessions()() as session:
            actor = self.actor(session)
        check(actor)
        return actor

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_cli = click.make_pass_decorator(CliContext)


# --- output ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """One value as JSON knows it: NaN, NaT and None are null, datetimes ISO 8601."""
    if value is None or value is pd.NaT or value is pd.NA:  # NaT is a datetime: test it first
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars (a numpy NaT or NaN becomes None or nan)
        return _plain(value.item())
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready dictionaries (NaN and NaT become null, datetimes ISO)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _jsonable(data: Any) -> Any:
    if isinstance(data, pd.DataFrame):
        return frame_records(data)
    if isinstance(data, dict):
        return {str(key): _jsonable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(value) for value in data]
    return _plain(data)


def echo_json(data: Any) -> None:
    """``data`` as JSON for programs: never NaN or "NaT", always null for a missing value."""
    echo(json.dumps(_jsonable(data), ensure_ascii=False, indent=2, allow_nan=False, default=str))


def echo_table(frame: pd.DataFrame, columns: list[str] | None = None) -> None:
    """A DataFrame as a plain text table, or a note when it is empty."""
    if frame.empty:
        echo("(nothing)")
        return
    shown = frame[columns] if columns else frame
    # None (an empty text column) reads as "None" in pandas' text: blank like NaN and NaT.
    shown = shown.astype(object).where(shown.notna(), "")
    echo(shown.to_string(index=False, na_rep=""))


def confirm_or_abort(question: str, yes: bool) -> None:
    """Ask for confirmation unless ``--yes``; without a terminal, refuse rather than guess."""
    if yes:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise click.UsageError(f"{question} Pass --yes to confirm without a terminal.")
    click.confirm(question, abort=True)
