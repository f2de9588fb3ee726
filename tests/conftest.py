"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL cases need ``SELFCARE_OPS_TEST_POSTGRES_URL``; when it is unset they skip with that
reason (CI sets it and fails if the server is unreachable). Each test run migrates one private
schema (named after the process) once, and empties every table after each test; SQLite tests
copy a migrated template file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from smtp_support import SmtpServer
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, actor_for_administrator, actor_for_user
from selfcare_ops.accounts.users import NewUser, create_user, derived_columns
from selfcare_ops.i18n import set_language
from selfcare_ops.organisations import create_administrator, create_operator, create_organisation
from selfcare_ops.store.db import make_engine, make_session_factory, upgrade
from selfcare_ops.store.models import Base, Organisation, SubAccount, User, count_new_users

POSTGRES_ENV = "SELFCARE_OPS_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No test reads the developer's settings or writes under the project's data/."""
    for key in list(os.environ):
        if key.startswith("SELFCARE_OPS_") and key != POSTGRES_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("SELFCARE_OPS_DATA_DIR", str(tmp_path / "data"))
    # The suite reads English unless a module chooses French with TEST_LANGUAGE = "fr" (the
    # product's default is French: tests/test_i18n*.py check both languages and the default).
    monkeypatch.setenv("SELFCARE_OPS_LANG", getattr(request.module, "TEST_LANGUAGE", "en"))
    set_language(None)
    monkeypatch.setenv("SELFCARE_OPS_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (tests/smtp_support.py), stopped after the test."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A migrated private schema on the test server, dropped at the end of the run."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL cases skipped")
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # CI must fail loudly, not skip, when the server is unreachable
        pytest.fail(f"PostgreSQL at {base} is unreachable: {exc}", pytrace=False)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    engine = make_engine(url_text)
    upgrade(engine)
    engine.dispose()
    yield url_text
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, migrated database: a SQLite file or a private PostgreSQL schema."""
    if request.param == "sqlite":
        target = tmp_path / "selfcare.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("postgres_schema_url")
    yield url
    engine = make_engine(url)
    _empty_postgres(engine)
    engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@dataclass
class Tree:
    """A small organisation tree with an actor at every level (see :func:`tree`)."""

    system: Actor
    operator_admin: Actor
    partner_a_admin: Actor
    partner_a1_admin: Actor
    partner_b_admin: Actor
    client_a_admin: Actor
    manager_siege: Actor
    client_a_users: list[str]


@pytest.fixture
def tree(session_factory: sessionmaker[Session]) -> Tree:
    """OP -> PA -> PA1 -> CA1; OP -> PA -> CA (sub-accounts Siège, Agence); OP -> PB -> CB.

    CA has an active administrator (alice), an active manager of Siège (marc) and four users:
    two in Siège (one without email), one in Agence and one deactivated.
    """
    with session_factory.begin() as session:
        _, system_admin = create_operator(session, "OP", "Opérateur Télécom", login_domain="op.fr")
        system = actor_for_administrator(system_admin)
        create_organisation(
            session, system, kind="partner", parent_ref="OP", ref="PA", name="Partenaire Alpha"
        )
        create_organisation(
            session, system, kind="partner", parent_ref="PA", ref="PA1", name="Alpha Sud"
        )
        create_organisation(
            session, system, kind="partner", parent_ref="OP", ref="PB", name="Partenaire Bêta"
        )
        create_organisation(
            session,
            system,
            kind="client",
            parent_ref="PA",
            ref="CA",
            name="Virginie Télécom",
            login_domain="virginietelecom.sewan.eu",
        )
        create_organisation(
            session,
            system,
            kind="client",
            parent_ref="PA1",
            ref="CA1",
            name="Société Sudiste",
            login_domain="sudiste.sewan.eu",
        )
        create_organisation(
            session,
            system,
            kind="client",
            parent_ref="PB",
            ref="CB",
            name="Bêta Client",
            login_domain="betaclient.sewan.eu",
        )
        admins = {
            ref: actor_for_administrator(
                create_administrator(
                    session, system, ref, f"admin@{ref.lower()}.example", f"Admin {ref}"
                )
            )
            for ref in ("OP", "PA", "PA1", "PB")
        }
        ca = session.scalar(text("SELECT id FROM organisations WHERE ref = 'CA'"))
        session.add_all(
            [
                SubAccount(client_id=ca, name="Siège", name_folded="siege"),
                SubAccount(client_id=ca, name="Agence", name_folded="agence"),
            ]
        )
        session.flush()
        alice = create_user(
            session, system, "CA", NewUser("Alice", "Dupont", email="alice@virginie.example")
        )
        marc = create_user(
            session,
            system,
            "CA",
            NewUser(
                "Marc",
                "Lefèvre",
                email="marc@virginie.example",
                role="manager",
                sub_account="Siège",
            ),
        )
        users = [
            create_user(
                session,
                system,
                "CA",
                NewUser(
                    "Jean-Pierre", "Bubu", email="jp.bubu@virginie.example", sub_account="Siège"
                ),
            ),
            create_user(session, system, "CA", NewUser("Cédric", "Pichon", sub_account="Siège")),
            create_user(
                session,
                system,
                "CA",
                NewUser(
                    "Véronique", "Duduche", email="v.duduche@virginie.example", sub_account="Agence"
                ),
            ),
            create_user(
                session,
                system,
                "CA",
                NewUser("Robert", "Convenant", email="r.convenant@virginie.example"),
            ),
        ]
        from selfcare_ops.store.models import utcnow

        now = utcnow()
        for person in (alice, marc):
            person.status, person.activated_at = "active", now
        users[3].status, users[3].activated_at, users[3].deactivated_at = "deactivated", now, now
        session.flush()
        return Tree(
            system=system,
            operator_admin=admins["OP"],
            partner_a_admin=admins["PA"],
            partner_a1_admin=admins["PA1"],
            partner_b_admin=admins["PB"],
            client_a_admin=actor_for_user(session.get(User, alice.id)),
            manager_siege=actor_for_user(session.get(User, marc.id)),
            client_a_users=[alice.login, marc.login, *(u.login for u in users)],
        )


AddClient = Callable[..., None]


@pytest.fixture
def add_client(session_factory: sessionmaker[Session], tree: Tree) -> AddClient:
    """Adds a client of partner PA with ``count`` invitable users, written in one bulk insert
    (every ``english_every``-th one speaks English): ``add_client("BIG", 300)``."""

    def add(ref: str, count: int, *, english_every: int = 0) -> None:
        with session_factory.begin() as session:
            pa = session.scalar(select(Organisation).where(Organisation.ref == "PA"))
            assert pa is not None
            org = Organisation(
                kind="client",
                parent_id=pa.id,
                ref=ref,
                name=f"Client {ref}",
                name_folded=f"client {ref.lower()}",
                path=pa.path,
                login_domain=f"{ref.lower()}.fr",
            )
            session.add(org)
            session.flush()
            org.path = f"{pa.path}{org.id}/"
            rows = []
            for n in range(count):
                login, email = f"u{n}@{ref.lower()}.fr", f"u{n}@{ref.lower()}.example"
                english = english_every and n % english_every == 0
                rows.append(
                    {
                        "client_id": org.id,
                        "login": login,
                        "first_name": "User",
                        "last_name": str(n),
                        "email": email,
                        "language": "en" if english else None,
                        "role": "user",
                        "status": "not_invited",
                        **derived_columns("User", str(n), login, email),
                    }
                )
            session.execute(insert(User), rows)
            count_new_users(session.connection(), {(org.id, "not_invited"): count})

    return add
