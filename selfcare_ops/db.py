"""Engines, sessions and migrations.

SQLite is the embedded default (foreign keys on, WAL, a busy timeout); PostgreSQL through
psycopg 3 is the shared database for teams. Connection and schema problems are translated here
into one sentence (:class:`DatabaseError`, :class:`DatabaseNotInitialisedError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, exc, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from .config import get_settings
from .errors import DatabaseError, DatabaseNotInitialisedError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
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
        raise DatabaseError(f"The database URL {url!r} is not a valid URL.") from error
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
        f"The database {parsed.get_backend_name()!r} is not supported: use SQLite or PostgreSQL."
    )


def describe(engine: Engine) -> str:
    """The database's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``read_only`` ones never wait for SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn a driver's connection failure into one sentence naming the database."""
    try:
        yield
    except exc.OperationalError as error:
        if "no such table" in str(error.orig) or "does not exist" in str(error.orig):
            raise DatabaseNotInitialisedError(
                "The database is not initialised: run `selfcare-ops db upgrade`."
            ) from error
        raise DatabaseError(
            f"The database {describe(engine)} cannot be reached: {_first_line(error.orig)}"
        ) from error
    except exc.ProgrammingError as error:
        if "does not exist" in str(error.orig):
            raise DatabaseNotInitialisedError(
                "The database is not initialised: run `selfcare-ops db upgrade`."
            ) from error
        raise


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip().splitlines()[0] if error else "unknown error"
    return text if text.endswith(".") else text + "."


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with translate_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest schema; idempotent. Returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != head_revision():
        with translate_errors(engine):
            command.upgrade(alembic_config(engine), "head")
    return before, head_revision()


def check_ready(engine: Engine) -> None:
    """Raise a one-sentence error unless the database is reachable and fully migrated."""
    revision = current_revision(engine)
    if revision is None:
        raise DatabaseNotInitialisedError(
            "The database is not initialised: run `selfcare-ops db upgrade`."
        )
    if revision != head_revision():
        raise DatabaseNotInitialisedError(
            f"The database schema is at revision {revision}, older than this toolkit's "
            f"{head_revision()}: run `selfcare-ops db upgrade`."
        )


def table_names(engine: Engine) -> list[str]:
    with translate_errors(engine), engine.connect() as connection:
        return inspect(connection).get_table_names()
