"""The one way to insert many rows: :func:`insert_columns` (rows given column by column) and
:func:`insert_rows` (rows given as dictionaries, turned into columns), used by every bulk writer.

CSV onboarding (users), invitations and their outbox mails (:mod:`.issuing`,
:func:`.mail.outbox.enqueue_templated`), audit events (:func:`.audit.record_many`) and the demo
loader all insert through it, so the choice of statement and what must happen after an
insert (the per-client user counts, see :func:`register_after_insert`) live in one place.
The import's own writers give columns: building a dictionary per row only for this module to
take it apart again cost about a second of a 100,000-user import's apply step.

How it inserts, and why not with a Core ``insert()``: a Core executemany (with ``RETURNING id``
and ``sort_by_parameter_order=True`` where ids are needed) processes every value of every row
through SQLAlchemy and reads the ids back. Measured with ``bench/onboarding.py`` (100,000 rows,
SQLite), the import's apply step took 12.0–15.8 s (11.5–12.1 s CPU) that way against 7.3–8.1 s
(6.9–7.0 s CPU) this way. Here each column's bind processor runs once per distinct value
(timestamps and statuses repeat across a batch), ids are allocated beforehand
(:func:`allocate_ids`) instead of read back, and the rows go to the driver's ``executemany`` as
plain tuples. Values are still bound parameters, never spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from sqlalchemy import Column, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

#: ``hook(connection, rows)`` run after :func:`insert_rows` / :func:`insert_columns` wrote
#: ``rows`` into a table.
AfterInsert = Callable[[Connection, "BulkRows"], None]
_AFTER_INSERT: dict[str, AfterInsert] = {}


@dataclass(frozen=True)
class BulkRows:
    """The rows of one bulk insert as its writer gave them: ``columns`` (name -> one value per
    row) and ``same`` (name -> the value of every row), ``count`` rows in all."""

    columns: Mapping[str, Sequence[Any]]
    same: Mapping[str, Any]
    count: int

    def values(self, name: str) -> Sequence[Any]:
        """Column ``name``, one value per row."""
        if name in self.columns:
            return self.columns[name]
        return [self.same[name]] * self.count


def register_after_insert(table: Table, hook: AfterInsert) -> None:
    """Run ``hook`` in the inserting transaction after every bulk insert into ``table``.

    How :mod:`.models` keeps the per-client user counts without each bulk writer having to
    remember it (this module cannot import the models: they import it).
    """
    _AFTER_INSERT[table.name] = hook


def _python_defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """The Python-side defaults (``default=utcnow``, ``default=0``) of the columns the rows
    leave out, each computed once."""
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if getattr(default, "is_scalar", False):
            defaults[column.name] = default.arg  # type: ignore[attr-defined]
        elif getattr(default, "is_callable", False):
            defaults[column.name] = default.arg(None)  # type: ignore[attr-defined]
    return defaults


def _column_values(values: Sequence[Any], processor: Any) -> Sequence[Any]:
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


#: Fewest rows for which PostgreSQL gets a ``COPY`` rather than an ``executemany``: below it,
#: the copy's own round trips cost more than the rows.
COPY_FROM_ROWS = 64


def _driver_insert(
    connection: Connection, table: Table, columns: Sequence[Column[Any]], records: list[Any]
) -> None:
    """Write ready tuples (values in ``columns`` order): ``COPY`` on PostgreSQL (psycopg 3),
    else one driver ``executemany``."""
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    target = (  # quoted identifiers from the table definition; values never enter the SQL
        f"{preparer.format_table(table)} "
        f"({', '.join(preparer.format_column(column) for column in columns)})"
    )
    if (
        dialect.name == "postgresql"
        and dialect.driver == "psycopg"
        and (len(records) >= COPY_FROM_ROWS)
    ):
        _copy(connection, f"COPY {target} FROM STDIN", records)
        return
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {target} VALUES ({', '.join([marker] * len(columns))})"  # noqa: S608
    connection.exec_driver_sql(sql, records)


def _copy(connection: Connection, sql: str, records: list[Any]) -> None:
    """``COPY ... FROM STDIN`` of ``records`` through psycopg 3, in the caller's transaction.

    The rows meet the same constraints, defaults, indexes and triggers as INSERTs, for a
    fraction of the cost: measured with ``bench/onboarding.py --postgres`` (see the README's
    benchmark table). A driver error is raised as SQLAlchemy's ``DBAPIError``, as an
    ``executemany`` would raise it, so callers' error handling stays the same.
    """
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for record in records:
                copy.write_row(record)
    except connection.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            sql, None, error, connection.dialect.loaded_dbapi.Error
        ) from error


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
    return_ids: bool = False,
    driver_ready: Collection[str] = (),
) -> list[int]:
    """INSERT ``rows`` (dictionaries with the same keys) in the caller's transaction.

    Returns the new primary keys in row order with ``return_ids`` (else an empty list). See
    :func:`insert_columns`, which this calls with the rows turned into columns.
    """
    if not rows:
        return []
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    return insert_columns(
        session, table, columns, count=len(rows), return_ids=return_ids, driver_ready=driver_ready
    )


def insert_columns(
    session: Session,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    same: Mapping[str, Any] | None = None,
    count: int,
    return_ids: bool = False,
    driver_ready: Collection[str] = (),
) -> list[int]:
    """INSERT ``count`` rows given column by column, in the caller's transaction.

    ``columns[name][i]`` is row ``i``'s value; ``same[name]`` is every row's (a timestamp, a
    run id). Bulk writers that hold their rows as columns (a CSV import) give them so, rather
    than building a dictionary per row for this function to take apart again. Returns the new
    primary keys in row order with ``return_ids`` (else an empty list). Columns left out get
    their Python default (computed once for the whole call, where a Core insert computes it
    per row), else the database's default or NULL. Columns named in ``driver_ready`` already
    hold what the driver takes (e.g. JSON text the caller serialised once per row) and skip the
    column type's processing. Hooks registered for the table (:func:`register_after_insert`)
    run after the insert.
    """
    if count <= 0:
        return []
    same = dict(same or {})
    if both := same.keys() & columns.keys():
        raise ValueError(f"columns {sorted(both)} are given both per row and for every row")
    if session.autoflush:
        session.flush()  # pending ORM objects first, as an ORM statement would autoflush them
    connection = session.connection()
    ids = allocate_ids(session, table, count) if return_ids else []
    dialect = connection.dialect
    same.update(_python_defaults(table, [*columns, *same]))
    names = [*columns, *same]
    targets = [table.c[name] for name in names]

    def processor(column: Column[Any]) -> Any:
        if column.name in driver_ready:
            return None
        return column.type.dialect_impl(dialect).bind_processor(dialect)

    by_column: list[Any] = []
    for column, name in zip(targets, names, strict=True):
        process = processor(column)
        if name in columns:
            values = columns[name]
            if len(values) != count:
                raise ValueError(f"column {name} has {len(values)} values for {count} rows")
            by_column.append(_column_values(values, process))
        else:
            value = same[name]
            by_column.append(repeat(process(value) if process else value))
    if return_ids:
        targets.insert(0, table.c.id)
        by_column.insert(0, ids)
    if columns or return_ids:
        # lists of count values (checked above) end the zip; repeat() columns never do
        records = list(zip(*by_column, strict=False))
    else:  # every value is the same in every row (repeat() would never end the zip)
        records = [tuple(next(values) for values in by_column)] * count
    _driver_insert(connection, table, targets, records)
    hook = _AFTER_INSERT.get(table.name)
    if hook is not None:
        hook(connection, BulkRows(columns, same, count))
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


#: Keys per statement of :func:`rows_where_in` (SQLite allows 32,766 bound parameters).
IN_CHUNK = 5000


def rows_where_in(
    session: Session, table: Table, columns: Sequence[str], key: str, keys: Collection[Any]
) -> list[dict[str, Any]]:
    """The ``columns`` (by name) of the rows of ``table`` whose ``key`` is one of ``keys``.

    For bulk lookups (an import checks 100,000 logins and emails): the statement is written
    once per chunk with one bound parameter per key and goes straight to the driver, where a
    Core ``in_()`` re-expands and names every parameter of every execution in Python (a
    third of the lookup's cost). Values go through their column type's result processing,
    as with Core (booleans, timestamps on SQLite).
    """
    if not keys:
        return []
    connection = session.connection()
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    shown = ", ".join(preparer.format_column(table.c[name]) for name in columns)
    head = (  # quoted identifiers from the table definition; keys are bound parameters
        f"SELECT {shown} FROM {preparer.format_table(table)} "  # noqa: S608
        f"WHERE {preparer.format_column(table.c[key])} IN "
    )
    processors = [
        (index, processor)
        for index, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).result_processor(dialect, None))
    ]
    ordered = list(keys)
    found: list[dict[str, Any]] = []
    for start in range(0, len(ordered), IN_CHUNK):
        part = tuple(ordered[start : start + IN_CHUNK])
        sql = f"{head}({', '.join([marker] * len(part))})"
        for row in connection.exec_driver_sql(sql, part).all():
            values = list(row)
            for index, processor in processors:
                values[index] = processor(values[index])
            found.append(dict(zip(columns, values, strict=True)))
    return found
