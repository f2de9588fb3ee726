"""Bulk inserts straight to the database driver, for the hot paths of imports and invitations.

A Core or ORM ``insert`` with a list of dictionaries processes every value of every row through
SQLAlchemy (parameter construction, type processors): for 100,000 invitations that costs more
than the database's own work. Here each column's bind processor runs once per distinct value
(timestamps and statuses repeat across a batch), and the rows go to the driver's
``executemany`` as plain tuples. Values are still bound parameters, never spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Column, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


def _column_values(values: list[Any], processor: Any) -> list[Any]:
    """Values of one column through its bind processor, each distinct hashable value once."""
    if processor is None:
        return values
    cache: dict[Any, Any] = {}
    out = []
    for value in values:
        try:
            processed = cache[value]
        except KeyError:
            processed = cache[value] = processor(value)
        except TypeError:  # unhashable (JSON dictionaries): processed every time
            processed = processor(value)
        out.append(processed)
    return out


def execute_insert(
    connection: Connection, table: Table, columns: Sequence[Column[Any]], records: list[Any]
) -> None:
    """One driver ``executemany`` of ready tuples (values in ``columns`` order)."""
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (  # quoted identifiers from the table definition; values are bound parameters
        f"INSERT INTO {preparer.format_table(table)} "  # noqa: S608
        f"({', '.join(preparer.format_column(column) for column in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    connection.exec_driver_sql(sql, records)


def upsert_insert(connection: Connection, table: Table) -> Any:
    """An INSERT of ``table`` that takes ``on_conflict_do_nothing`` / ``_do_update``."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    driver_ready: Collection[str] = (),
) -> None:
    """INSERT ``rows`` (dictionaries with the same keys) with one driver ``executemany``.

    Columns left out of the rows get NULL: callers give every column that has a default.
    Columns named in ``driver_ready`` already hold what the driver takes (e.g. JSON text the
    caller serialised once per row) and skip the column type's processing.
    """
    if not rows:
        return
    if session.autoflush:
        session.flush()  # pending ORM objects first, as an ORM statement would autoflush them
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [
        None
        if column.name in driver_ready
        else column.type.dialect_impl(dialect).bind_processor(dialect)
        for column in columns
    ]
    by_column = [
        _column_values([row[name] for row in rows], processor)
        for name, processor in zip(names, processors, strict=True)
    ]
    execute_insert(connection, table, columns, list(zip(*by_column, strict=True)))


def insert_with_ids(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    driver_ready: Collection[str] = (),
) -> list[int]:
    """:func:`insert_rows` with ids allocated beforehand (:func:`allocate_ids`); returns them
    in row order, without reading anything back."""
    if not rows:
        return []
    ids = allocate_ids(session, table, len(rows))
    insert_rows(
        session,
        table,
        [{"id": row_id, **row} for row_id, row in zip(ids, rows, strict=True)],
        driver_ready=driver_ready,
    )
    return ids


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, for inserts that must know their ids.

    Reading ids back after an insert costs a query per few hundred rows. PostgreSQL hands
    them out from the column's sequence; on SQLite the writer holds the write lock from BEGIN
    (see ``db``), so the ids after the current largest are free until it commits.
    """
    if count <= 0:
        return []
    connection = session.connection()
    name = table.name
    if connection.dialect.name == "postgresql":
        return list(
            connection.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) "
                "FROM generate_series(1, %(count)s)",
                {"table": name, "count": count},
            ).scalars()
        )
    largest = session.scalar(select(func.coalesce(func.max(table.c.id), 0)))
    return list(range(int(largest) + 1, int(largest) + 1 + count))
