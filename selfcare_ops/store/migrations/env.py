"""Alembic environment shipped inside the package; the engine comes from the caller.

On SQLite, a batch migration rebuilds a table (copy, drop, rename). Dropping a table that other
rows reference fails while foreign keys are enforced, and the setting cannot change inside a
transaction: it is switched off around the migration transaction, as SQLite documents for
table rebuilds, and the result is checked with ``PRAGMA foreign_key_check`` before commit.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from selfcare_ops.store.db import make_engine
from selfcare_ops.store.models import Base

config = context.config
target_metadata = Base.metadata


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    # On the driver's connection, outside any transaction (the toolkit's sqlite3 connections
    # run in autocommit mode between SQLAlchemy transactions): inside one it would be ignored.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        table, rowid, parent, _ = problems[0]
        raise RuntimeError(
            f"The migration left {len(problems)} broken foreign key(s), e.g. {table} row "
            f"{rowid} -> {parent}; nothing was changed."
        )


def run_migrations() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _set_sqlite_foreign_keys(connection, False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_sqlite_foreign_keys(connection)
            connection.commit()
        finally:
            if sqlite:
                if connection.in_transaction():
                    connection.rollback()
                _set_sqlite_foreign_keys(connection, True)


run_migrations()
