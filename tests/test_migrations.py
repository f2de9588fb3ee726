"""The shipped migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from selfcare_ops.errors import DatabaseError, DatabaseNotInitialisedError
from selfcare_ops.mail.content import message_content, store_template
from selfcare_ops.mail.render import MailTemplate
from selfcare_ops.store.db import (
    alembic_config,
    check_ready,
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    table_names,
    upgrade,
)
from selfcare_ops.store.models import Base, OutboundMessage, UTCDateTime, utcnow

POSTGRES_ENV = "SELFCARE_OPS_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
LINK = "https://portal.example/invitation/" + "t" * 43


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


# --- 0002: outbox templates ------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database (nothing migrated): a SQLite file or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL cases skipped")
    schema = f"m_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _check_names(engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_check_constraints(table)}


def test_outbox_templates_migrate_up_and_down_with_data(blank_url):
    engine = make_engine(blank_url)
    config = alembic_config(engine)
    command.upgrade(config, "0001")
    now = utcnow()
    # An invitation queued before templates existed: its row points at its message, so on
    # SQLite the rebuild of outbound_messages must not trip over the foreign key.
    statements = [
        "INSERT INTO organisations (kind, ref, name, name_folded, path, created_at, "
        "updated_at) VALUES ('operator', 'OP', 'Op', 'op', '/1/', :now, :now)",
        "INSERT INTO users (client_id, login, first_name, last_name, sort_name, search_text, "
        "role, right_manage_rights, right_place_orders, right_view_invoices, status, "
        "status_changed_at, created_at, updated_at) VALUES ((SELECT id FROM organisations), "
        "'old@op.fr', 'A', 'B', 'b a', 'a b', 'user', false, false, false, 'not_invited', :now, "
        ":now, :now)",
        "INSERT INTO outbound_messages (message_key, kind, recipient, subject, body_text, "
        "language, status, attempts, next_attempt_at, created_at) VALUES ('old', "
        "'invitation', 'old@example.com', 'Ancien', 'Texte ancien', 'fr', 'queued', 0, :now, "
        ":now)",
        "INSERT INTO invitations (kind, user_id, organisation_id, email, token_hash, status, "
        "created_at, expires_at, created_by, message_id) VALUES ('user', (SELECT id FROM users), "
        "(SELECT id FROM organisations), 'old@example.com', 'h', 'pending', :now, :now, 'test', "
        "(SELECT id FROM outbound_messages))",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), {"now": now})
    command.upgrade(config, "0002")
    assert current_revision(engine) == "0002"
    assert {"ck_outbound_messages_status", "ck_outbound_messages_has_content"} <= _check_names(
        engine, "outbound_messages"
    )
    sessions = make_session_factory(engine)
    frame = {"organisation_name": "Org <Télécom>", "expires_on": "demain", "admin_url": "/admin/"}
    template = MailTemplate("invitation_user", "fr", frame)
    person = {"full_name": "<b>Zoé</b> O'Brien", "login": "zoe@c1.fr", "link": LINK}
    # The outbox as revision 0002 knows it (the models describe the head revision).
    outbox_0002 = sa.table(
        "outbound_messages",
        *(
            sa.column(name)
            for name in ("id", "message_key", "kind", "recipient", "language", "status")
        ),
        sa.column("template_id", sa.Integer()),
        sa.column("person", sa.JSON()),
        sa.column("attempts", sa.Integer()),
        sa.column("next_attempt_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
    )
    with sessions.begin() as session:
        templated_id = session.execute(
            sa.insert(outbox_0002).returning(outbox_0002.c.id),
            {
                "kind": "invitation",
                "recipient": "zoe@c1.example",
                "language": "fr",
                "message_key": "templated",
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "template_id": store_template(session, template),
                "person": person,
            },
        ).scalar_one()
        stored = session.execute(
            sa.select(outbox_0002).where(outbox_0002.c.id == templated_id)
        ).one()
        expected = message_content(stored._mapping, template)
        assert expected == template.fill(person)
    with sessions() as session:
        old = session.execute(text("SELECT * FROM outbound_messages WHERE message_key = 'old'"))
        old = old.one()
        assert message_content(old._mapping).text == "Texte ancien"

    command.downgrade(config, "0001")
    assert current_revision(engine) == "0001"
    assert "mail_templates" not in table_names(engine)
    assert "ck_outbound_messages_has_content" not in _check_names(engine, "outbound_messages")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("outbound_messages")}
        assert not {"template_id", "person"} & columns
        written = connection.execute(
            text("SELECT subject, body_text, body_html FROM outbound_messages WHERE id = :id"),
            {"id": templated_id},
        ).one()
        # Filled as the toolkit fills it: nothing lost for a mail still waiting in the outbox.
        assert tuple(written) == (expected.subject, expected.text, expected.html)
        assert "&lt;b&gt;Zoé&lt;/b&gt; O&#x27;Brien" in written.body_html
        assert LINK in written.body_text and f'href="{LINK}"' in written.body_html
        assert connection.execute(text("SELECT message_id FROM invitations")).scalar() == old.id
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []

    command.upgrade(config, "head")
    check_ready(engine)
    with sessions() as session:
        again = session.get(OutboundMessage, templated_id)
        assert again.template_id is None and message_content(again) == expected
    engine.dispose()


# --- 0003: users count their own inserts --------------------------------------------------


def _trigger_names(engine) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    )
    with engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def _counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(
            connection.execute(text("SELECT status, users FROM client_user_counts")).tuples().all()
        )


def test_bulk_user_counts_migrate_up_and_down(blank_url):
    engine = make_engine(blank_url)
    config = alembic_config(engine)
    command.upgrade(config, "0002")
    now = {"now": utcnow()}
    user = (
        "INSERT INTO users (client_id, login, first_name, last_name, sort_name, search_text, "
        "role, right_manage_rights, right_place_orders, right_view_invoices, status, "
        "status_changed_at, created_at, updated_at) VALUES ((SELECT id FROM organisations), "
        ":login, 'A', 'B', 'b a', 'a b', 'user', false, false, false, 'not_invited', :now, "
        ":now, :now)"
    )
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (kind, ref, name, name_folded, path, created_at, "
                "updated_at) VALUES ('operator', 'OP', 'Op', 'op', '/1/', :now, :now)"
            ),
            now,
        )
        connection.execute(text(user), {**now, "login": "before@op.fr"})
    assert _counts(engine) == {"not_invited": 1}  # the 0001 insert trigger

    command.upgrade(config, "0003")
    names = _trigger_names(engine)
    assert not {"users_count_insert", "users_count_insert_delete"} & names
    assert {"users_count_update", "users_count_delete"} <= names
    with engine.begin() as connection:
        connection.execute(text(user), {**now, "login": "after@op.fr"})
    assert _counts(engine) == {"not_invited": 1}  # inserts are counted by their writer now
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE login = 'before@op.fr'"))
    assert _counts(engine) == {"not_invited": 0}  # deletions still by trigger

    command.downgrade(config, "0002")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("users")}
    assert "import_run_id" not in columns
    assert {"users_count_update"} <= _trigger_names(engine)
    with engine.begin() as connection:
        connection.execute(text(user), {**now, "login": "again@op.fr"})
        connection.execute(
            text("UPDATE users SET status = 'invited', invited_at = :now WHERE login = :login"),
            {**now, "login": "again@op.fr"},
        )
    assert _counts(engine) == {"not_invited": 0, "invited": 1}  # 0001's triggers are back

    command.upgrade(config, "head")
    check_ready(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_truthful_states_migrate_up_and_down_with_data(blank_url):
    """0004: invitations whose mail left become sent or bounced; back and forth keeps data."""
    engine = make_engine(blank_url)
    config = alembic_config(engine)
    command.upgrade(config, "0003")
    now = {"now": utcnow()}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (kind, ref, name, name_folded, path, created_at, "
                "updated_at) VALUES ('operator', 'OP', 'Op', 'op', '/1/', :now, :now)"
            ),
            now,
        )
        connection.execute(
            text(
                "INSERT INTO users (client_id, login, first_name, last_name, sort_name, "
                "search_text, role, right_manage_rights, right_place_orders, "
                "right_view_invoices, status, status_changed_at, invited_at, created_at, "
                "updated_at) VALUES ((SELECT id FROM organisations), 'a@op.fr', 'A', 'B', 'b a', "
                "'a b', 'user', false, false, false, 'invited', :now, :now, :now, :now)"
            ),
            now,
        )
        for key, status, error in (("m-sent", "sent", None), ("m-failed", "failed", "550 no")):
            connection.execute(
                text(
                    "INSERT INTO outbound_messages (message_key, kind, recipient, subject, "
                    "body_text, language, status, attempts, next_attempt_at, sent_at, "
                    "last_error, created_at) VALUES (:key, 'invitation', 'a@op.example', 'S', "
                    "'T', 'fr', :status, 1, :now, :sent, :error, :now)"
                ),
                {
                    **now,
                    "key": key,
                    "status": status,
                    "error": error,
                    "sent": now["now"] if status == "sent" else None,
                },
            )
            connection.execute(
                text(
                    "INSERT INTO invitations (kind, user_id, organisation_id, email, token_hash, "
                    "status, created_at, expires_at, created_by, message_id) VALUES ('user', "
                    "(SELECT id FROM users), (SELECT id FROM organisations), 'a@op.example', "
                    ":hash, 'pending', :now, :now, 'test', "
                    "(SELECT id FROM outbound_messages WHERE message_key = :key))"
                ),
                {**now, "key": key, "hash": key},
            )

    command.upgrade(config, "0004")
    with engine.connect() as connection:
        states = dict(
            connection.execute(
                text("SELECT token_hash, status FROM invitations ORDER BY token_hash")
            ).all()
        )
        reason = connection.scalar(
            text("SELECT status_reason FROM invitations WHERE token_hash = 'm-failed'")
        )
        sent_at = connection.scalar(
            text("SELECT sent_at FROM invitations WHERE token_hash = 'm-sent'")
        )
        draft = connection.scalar(text("SELECT draft FROM users"))
    assert states == {"m-failed": "bounced", "m-sent": "sent"}
    assert reason == "550 no" and sent_at is not None and not draft
    assert {"users_count_update", "users_count_delete"} <= _trigger_names(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE outbound_messages SET status = 'cancelled', cancel_reason = 'revoked' "
                "WHERE message_key = 'm-sent'"
            )
        )

    command.downgrade(config, "0003")
    with engine.connect() as connection:
        statuses = set(connection.execute(text("SELECT status FROM outbound_messages")).scalars())
        columns = {c["name"] for c in inspect(connection).get_columns("users")}
    assert statuses == {"failed"} and "draft" not in columns
    assert {"users_count_update", "users_count_delete"} <= _trigger_names(engine)

    command.upgrade(config, "head")
    check_ready(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


# --- 0005: the invitee's portal -----------------------------------------------------------------


def test_portal_tables_migrate_up_and_down_with_data(blank_url):
    """0005: attempts, link requests and supervision openings come and go; users stay."""
    engine = make_engine(blank_url)
    config = alembic_config(engine)
    command.upgrade(config, "0004")
    now = {"now": utcnow()}
    statements = [
        "INSERT INTO organisations (kind, ref, name, name_folded, path, created_at, updated_at) "
        "VALUES ('operator', 'OP', 'Op', 'op', '/1/', :now, :now)",
        "INSERT INTO users (client_id, login, first_name, last_name, sort_name, search_text, "
        "role, right_manage_rights, right_place_orders, right_view_invoices, status, "
        "status_changed_at, invited_at, created_at, updated_at) VALUES ((SELECT id FROM "
        "organisations), 'a@op.fr', 'A', 'B', 'b a', 'a b', 'user', false, false, false, "
        "'invited', :now, :now, :now, :now)",
        "INSERT INTO invitations (kind, user_id, organisation_id, email, token_hash, status, "
        "created_at, expires_at, created_by) VALUES ('user', (SELECT id FROM users), (SELECT id "
        "FROM organisations), 'a@op.example', 'h', 'expired', :now, :now, 'test')",
        "INSERT INTO supervision_sessions (user_id, actor_label, reason, token_hash, started_at, "
        "expires_at) VALUES ((SELECT id FROM users), 'x', 'why', 's', :now, :now)",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), now)
    command.upgrade(config, "0005")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO invitation_attempts (invitation_id, failed_at) "
                "VALUES ((SELECT id FROM invitations), :now)"
            ),
            now,
        )
        connection.execute(
            text(
                "INSERT INTO link_requests (user_id, invitation_id, requested_at, outcome) "
                "VALUES ((SELECT id FROM users), (SELECT id FROM invitations), :now, 'queued')"
            ),
            now,
        )
        connection.execute(text("UPDATE supervision_sessions SET opened_at = :now"), now)
        with pytest.raises(sa.exc.IntegrityError):
            with connection.begin_nested():
                connection.execute(
                    text(
                        "INSERT INTO link_requests (user_id, invitation_id, requested_at, "
                        "outcome) VALUES ((SELECT id FROM users), (SELECT id FROM invitations), "
                        ":now, 'maybe')"
                    ),
                    now,
                )
    command.downgrade(config, "0004")
    names = set(table_names(engine))
    assert "invitation_attempts" not in names and "link_requests" not in names
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("supervision_sessions")}
        assert connection.scalar(text("SELECT count(*) FROM users")) == 1
    assert "opened_at" not in columns
    command.upgrade(config, "head")
    assert current_revision(engine) == head_revision()
    engine.dispose()
