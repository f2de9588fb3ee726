"""Engines, sessions and migrations.

SQLite is the embedded default (foreign keys on, WAL, a busy timeout); PostgreSQL through
psycopg 3 is the shared database for teams. Connection and schema problems are translated here
into one sentence (:class:`DatabaseError`, :class:`DatabaseNotInitialisedError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, exc, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.config import get_settings
from selfcare_ops.errors import DatabaseError, DatabaseNotInitialisedError, SelfcareError
from selfcare_ops.i18n import _
from selfcare_ops.support.resources import MIGRATION_SCRIPTS, MIGRATIONS

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536


def _on_sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # The DBAPI's own transaction handling is switched off so that SQLAlchemy's BEGIN is real
    # (needed for BEGIN IMMEDIATE and savepoints).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    # Bulk imports write several indexes per row: a page cache that holds them (allocated only
    # as used) and an in-memory temp store make a 100,000-user import about a third faster.
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.execute("PRAGMA temp_store = MEMORY")
    cursor.close()


READ_ONLY_OPTION = "selfcare_read_only"


def _on_sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # Writers take the write lock at BEGIN: two writers then wait on the busy timeout instead
    # of failing with "database is locked" when one upgrades a read lock. Read-only sessions
    # (see make_session_factory) begin deferred, so a long import never blocks a listing.
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (default: the configured database), ready for the toolkit."""
    url = url or get_settings().database_url
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise DatabaseError(
            _("The database URL '{url}' is not a valid URL.").format(url=url)
        ) from error
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise DatabaseError(
        _("The database '{backend}' is not supported: use SQLite or PostgreSQL.").format(
            backend=parsed.get_backend_name()
        )
    )


def describe(engine: Engine) -> str:
    """The database's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``read_only`` ones never wait for SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist')
_MISSING_ROLE = re.compile(r'role "([^"]+)" does not exist')
_MISSING_TABLE = re.compile(r'no such table: "?([\w.]+)|relation "([^"]+)" does not exist')
_NOT_SQLITE = ("file is not a database", "database disk image is malformed")


def not_initialised() -> str:
    """The sentence for a database without the toolkit's schema, in the current language."""
    return _("The database is not initialised: run `selfcare-ops db upgrade`.")


def database_error(error: exc.DBAPIError, url: str | URL | None = None) -> SelfcareError:
    """One sentence, naming what to do, for a driver error (the edge of every shell).

    A missing PostgreSQL database or role is created by an administrator of the server, not by
    ``db upgrade`` (which needs them to connect); a file that is not SQLite is named; a table
    missing from a migrated schema means the schema was damaged, which ``db upgrade`` cannot
    repair.
    """
    text = str(error.orig) if error.orig is not None else str(error)
    shown = make_url(url) if url else None
    host = f"{shown.host or 'localhost'}:{shown.port or 5432}" if shown else _("the server")
    if match := _MISSING_DATABASE.search(text):
        name = match.group(1)
        return DatabaseError(
            _(
                "The PostgreSQL database {name} does not exist on {host}: create it (`createdb "
                '{name}`, or `CREATE DATABASE "{name}";` as its owner), then run '
                "`selfcare-ops db upgrade`."
            ).format(name=name, host=host)
        )
    if match := _MISSING_ROLE.search(text):
        name = match.group(1)
        return DatabaseError(
            _(
                "The PostgreSQL role {name} does not exist on {host}: create it (`createuser "
                '{name}`, or `CREATE ROLE "{name}" LOGIN;` as a superuser) or name another user '
                "in SELFCARE_OPS_DATABASE_URL."
            ).format(name=name, host=host)
        )
    if any(marker in text for marker in _NOT_SQLITE):
        where = shown.database if shown and shown.database else _("the database file")
        return DatabaseError(
            _(
                "The file {where} is not a SQLite database (or is damaged): point "
                "SELFCARE_OPS_DATABASE_URL at the toolkit's database, or move the file away and "
                "run `selfcare-ops db upgrade` to create a new one."
            ).format(where=where)
        )
    if match := _MISSING_TABLE.search(text):
        table = (match.group(1) or match.group(2)).rsplit(".", 1)[-1]
        if table == "alembic_version":
            return DatabaseNotInitialisedError(not_initialised())
        return DatabaseNotInitialisedError(
            _(
                "The database schema is damaged: the table {table} is missing although the "
                "schema is migrated; restore the database from a backup (`selfcare-ops db "
                "upgrade` does not recreate dropped tables)."
            ).format(table=table)
        )
    reason = _first_line(error.orig)
    if isinstance(error, exc.OperationalError):
        if url:
            return DatabaseError(
                _("The database {where} cannot be used: {reason}").format(
                    where=make_url(url).render_as_string(hide_password=True), reason=reason
                )
            )
        return DatabaseError(_("The database cannot be used: {reason}").format(reason=reason))
    return DatabaseError(_("The database refused the operation: {reason}").format(reason=reason))


def describe_url(url: str | URL) -> str:
    """``The database <url>`` with any password hidden."""
    return f"The database {make_url(url).render_as_string(hide_password=True)}"


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn a driver's failure into one sentence naming the database and what to do."""
    try:
        yield
    except exc.OperationalError as error:
        text = str(error.orig)
        if (
            _MISSING_DATABASE.search(text)
            or _MISSING_ROLE.search(text)
            or _MISSING_TABLE.search(text)
            or any(marker in text for marker in _NOT_SQLITE)
        ):
            raise database_error(error, engine.url) from error
        raise DatabaseError(
            _("The database {where} cannot be reached: {reason}").format(
                where=describe(engine), reason=_first_line(error.orig)
            )
        ) from error
    except exc.DBAPIError as error:
        raise database_error(error, engine.url) from error


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip().splitlines()[0] if error else "unknown error"
    return text if text.endswith(".") else text + "."


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    # Alembic finds the packaged migrations itself (importlib.resources), wheel or checkout.
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["engine"] = engine
    return config


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:\"([^\"]*)\"|None)", re.MULTILINE)


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest packaged migration, read from the scripts' ``revision`` lines.

    Every command checks the schema against it, and Alembic's own script loader (with Mako
    and Pygments behind it) costs most of a short command's start-up; only ``db upgrade``
    needs Alembic. ``tests/test_cli_startup.py`` checks the answer against Alembic's.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in MIGRATION_SCRIPTS.iterdir():
        if not script.name.endswith(".py"):
            continue
        found = dict((name, value) for name, value in _REVISION.findall(script.read_text()))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {sorted(heads)}"
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, as Alembic records it (None: never migrated)."""
    with translate_errors(engine), engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest schema; idempotent. Returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != head_revision():
        from alembic import command

        with translate_errors(engine):
            command.upgrade(alembic_config(engine), "head")
    return before, head_revision()


def check_ready(engine: Engine) -> None:
    """Raise a one-sentence error unless the database is reachable and fully migrated."""
    revision = current_revision(engine)
    if revision is None:
        raise DatabaseNotInitialisedError(not_initialised())
    if revision != head_revision():
        raise DatabaseNotInitialisedError(
            _(
                "The database schema is at revision {revision}, older than this toolkit's "
                "{head}: run `selfcare-ops db upgrade`."
            ).format(revision=revision, head=head_revision())
        )


def table_names(engine: Engine) -> list[str]:
    with translate_errors(engine), engine.connect() as connection:
        return inspect(connection).get_table_names()
