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

from selfcare_ops.access import Actor, resolve_actor
from selfcare_ops.cli.output import discard_output, echo, reset_output  # noqa: F401  (commands import them here)
from selfcare_ops.config import Settings, get_settings
from selfcare_ops.i18n import _
from selfcare_ops.store.db import check_ready, make_engine, make_session_factory
from selfcare_ops.support.textnorm import fold
from selfcare_ops.support.yesno import NO_WORDS, YES_WORDS


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


def _column_values(column: pd.Series) -> list[Any]:
    """One column as JSON-ready values, converted column-wise where its type allows (a long
    listing spends its time here: cell by cell only for dates and mixed objects)."""
    if column.dtype.kind in "biu":  # no missing value possible: Python ints and bools
        return column.tolist()
    if column.dtype.kind == "f":
        return [None if math.isnan(value) else value for value in column.tolist()]
    values = column.astype(object).where(column.notna(), None).tolist()
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
        return values  # pandas strings: str or None already
    return [_plain(value) for value in values]


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready dictionaries (NaN and NaT become null, datetimes ISO)."""
    names = [str(name) for name in frame.columns]
    columns = [_column_values(frame.iloc[:, index]) for index in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


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


def column_words() -> dict[str, str]:
    """Table headers in the current language, by the column's stable name (JSON keeps the
    names); a column missing here shows its name. The msgids are the names themselves, so the
    English tables keep their one-word headers (scripts split them on spaces)."""
    return {
        "login": _("login"),
        "first_name": _("first_name"),
        "last_name": _("last_name"),
        "email": _("email"),
        "status": _("status"),
        "state": _("state"),
        "sub_account": _("sub_account"),
        "role": _("role"),
        "reason": _("reason"),
        "client_ref": _("client_ref"),
        "sent_at": _("sent_at"),
        "created_by": _("created_by"),
        "ref": _("ref"),
        "name": _("name"),
        "kind": _("kind"),
        "partner_ref": _("partner_ref"),
        "partner_name": _("partner_name"),
        "users": _("users"),
        "not_invited": _("not_invited"),
        "invited": _("invited"),
        "active": _("active"),
        "deactivated": _("deactivated"),
        "language": _("language"),
        "phone": _("phone"),
        "mobile": _("mobile"),
        "function": _("function"),
        "civility": _("civility"),
        "managers": _("managers"),
        "prefix": _("prefix"),
        "created_at": _("created_at"),
        "revoked_at": _("revoked_at"),
        "job": _("job"),
        "actor": _("actor"),
        "started_at": _("started_at"),
        "duration_s": _("duration_s"),
        "parameters": _("parameters"),
        "output_path": _("output_path"),
        "failed_cell": _("failed_cell"),
        "error": _("error"),
        "occurred_at": _("occurred_at"),
        "actor_label": _("actor_label"),
        "action": _("action"),
        "target_type": _("target_type"),
        "target_label": _("target_label"),
        "organisation_ref": _("organisation_ref"),
        "codes": _("codes"),
        "suggested_text_color": _("suggested_text_color"),
        "own_before": _("own_before"),
        "enabled_before": _("enabled_before"),
        "outcome": _("outcome"),
    }


def echo_table(frame: pd.DataFrame, columns: list[str] | None = None) -> None:
    """A DataFrame as a plain text table with headers in the current language, or a note when
    it is empty."""
    if frame.empty:
        echo(_("(nothing)"))
        return
    shown = frame[columns] if columns else frame
    # None (an empty text column) reads as "None" in pandas' text: blank like NaN and NaT.
    shown = shown.astype(object).where(shown.notna(), "")
    words = column_words()
    shown = shown.rename(columns=lambda name: words.get(str(name), name))
    echo(shown.to_string(index=False, na_rep=""))


class UsageError(click.UsageError):
    """A misuse of a command, said in the current language (exit status 2, like click's own).

    click words its own usage errors in English; the ones the toolkit raises read as the
    rest of the output: one sentence and where to find help.
    """

    def show(self, file: Any = None) -> None:
        echo(_("Error: {error}").format(error=self.format_message()), err=True)
        if self.ctx is not None:
            echo(_("Try '{command} -h' for help.").format(command=self.ctx.command_path), err=True)


def answer_yes_or_no(answer: str) -> bool | None:
    """A person's answer to a confirmation, in either language: True for o, oui, y, yes (and
    the other yes words of :mod:`.support.yesno`), False for n, non, no or nothing (Enter keeps
    the default, no), None for anything else (asked again)."""
    word = fold(answer)
    if not word or word in NO_WORDS:
        return False
    if word in YES_WORDS:
        return True
    return None


def _has_terminal() -> bool:
    """Whether a person can answer on standard input."""
    return bool(sys.stdin) and sys.stdin.isatty()


def confirm_or_abort(question: str, yes: bool) -> None:
    """Ask for confirmation unless ``--yes``; without a terminal, refuse rather than guess.

    ``question`` is already in the current language; the answer may be French or English.
    """
    if yes:
        return
    if not _has_terminal():
        raise UsageError(
            _("{question} Pass --yes to confirm without a terminal.").format(question=question)
        )
    prompt = _("{question} [y/N]").format(question=question)
    while True:
        decided = answer_yes_or_no(click.prompt(prompt, default="", show_default=False))
        if decided is not None:
            break
        echo(_("Answer yes or no (o, oui, y, yes / n, non, no)."), err=True)
    if not decided:  # click would say "Aborted!" in English: the same exit status, our words
        echo(_("Cancelled: nothing was done."), err=True)
        raise click.exceptions.Exit(1)
