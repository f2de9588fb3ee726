"""Read-only sessions do not queue behind a writer on SQLite (WAL readers never block)."""

import threading

from sqlalchemy import func, select, text

from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.store.models import Organisation


def test_reader_is_not_blocked_by_a_writer_holding_the_lock(sqlite_template, tmp_path):
    path = tmp_path / "locked.db"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    writer = make_session_factory(engine)()
    writer.execute(
        text(
            "INSERT INTO job_locks (job_name, acquired_at, holder) "
            "VALUES ('held', '2026-01-01', 'test')"
        )
    )  # holds the write lock
    answers: list[int] = []

    def read() -> None:
        with make_session_factory(engine, read_only=True)() as session:
            answers.append(session.scalar(select(func.count()).select_from(Organisation)))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=10)
    try:
        assert not reader.is_alive(), "the read-only session waited for the writer"
        assert answers == [0]
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()


def test_read_only_sessions_work_on_every_database(engine, tree):
    with make_session_factory(engine, read_only=True)() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 7
