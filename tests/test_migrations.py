"""The shipped migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from selfcare_ops.db import check_ready, current_revision, head_revision, make_engine, upgrade
from selfcare_ops.errors import DatabaseError, DatabaseNotInitialisedError
from selfcare_ops.models import Base


def test_models_and_migrations_agree(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent(engine):
    assert current_revision(engine) == head_revision()
    before, after = upgrade(engine)
    assert before == after == head_revision()
    check_ready(engine)


def test_count_triggers_exist(engine):
    dialect = engine.dialect.name
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if dialect == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with engine.connect() as connection:
        names = set(connection.execute(text(query)).scalars())
    assert {"users_count_update"} <= names


def test_empty_database_says_how_to_initialise(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        check_ready(engine)
    except DatabaseNotInitialisedError as error:
        assert "selfcare-ops db upgrade" in str(error)
    else:
        raise AssertionError("an empty database passed check_ready")


def test_unreachable_postgres_gives_one_sentence():
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    try:
        check_ready(engine)
    except DatabaseError as error:
        message = str(error)
        assert message.startswith("The database postgresql+psycopg://nobody@127.0.0.1:9/none")
        assert "cannot be reached" in message
        assert "\n" not in message
    else:
        raise AssertionError("an unreachable server passed check_ready")


def test_unsupported_database_is_refused():
    try:
        make_engine("mysql://root@localhost/test")
    except DatabaseError as error:
        assert "not supported" in str(error)
    else:
        raise AssertionError("mysql was accepted")
