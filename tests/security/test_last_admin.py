"""Issue 12, point 3: a client keeps its last active administrator whatever path tries to
remove it — ``users role``, ``users deactivate``, ``users remove``, a CSV line, and two
administrators demoting each other at the same moment on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import actor_for_user
from selfcare_ops.accounts import rights, users
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.cli import main
from selfcare_ops.errors import LastAdministratorError
from selfcare_ops.store.models import User, utcnow


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


ALICE = "adupont@virginietelecom.sewan.eu"  # CA's only administrator, active
MARC = "mlefevre@virginietelecom.sewan.eu"  # active manager of Siège
VERO = "vduduche@virginietelecom.sewan.eu"  # not invited yet


def run(db_url: str, *args: str, actor: str | None = None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def state(session_factory: sessionmaker[Session], login: str) -> tuple[str, str]:
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == login))
        assert user is not None
        return user.role, user.status


def one_sentence_refusal(result, login: str = ALICE) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{login} is the last active administrator of client CA" in result.stderr


def make_admin(session_factory: sessionmaker[Session], login: str, *, active: bool) -> None:
    with session_factory.begin() as session:
        user = session.scalar(select(User).where(User.login == login))
        assert user is not None
        user.role, user.sub_account_id = "administrator", None
        if active:
            user.status, user.activated_at = "active", utcnow()


# --- one path at a time (SQLite and PostgreSQL) ------------------------------------------------


def test_users_role_refuses_to_demote_the_last_active_administrator(db_url, session_factory, tree):
    one_sentence_refusal(run(db_url, "users", "role", ALICE, "user"))
    assert state(session_factory, ALICE) == ("administrator", "active")


@pytest.mark.parametrize("command", [["users", "deactivate"], ["users", "remove"]])
def test_deactivating_or_removing_the_last_active_administrator_is_refused(
    db_url, session_factory, tree, command
):
    one_sentence_refusal(run(db_url, *command, ALICE, "--yes"))
    assert state(session_factory, ALICE) == ("administrator", "active")


def test_an_administrator_who_never_activated_does_not_count(db_url, session_factory, tree):
    make_admin(session_factory, VERO, active=False)
    one_sentence_refusal(run(db_url, "users", "deactivate", ALICE, "--yes"))
    make_admin(session_factory, VERO, active=True)
    done = run(db_url, "users", "deactivate", ALICE, "--yes")
    assert done.exit_code == 0, done.output
    assert state(session_factory, ALICE) == ("administrator", "deactivated")


def test_a_new_clients_only_administrator_cannot_be_demoted_before_activating(
    db_url, session_factory, tree
):
    with session_factory.begin() as session:
        first = create_user(session, tree.system, "CB", NewUser("Paul", "Premier"))
        second = create_user(session, tree.system, "CB", NewUser("Zoé", "Second"))
        assert (first.role, second.role) == ("administrator", "user")
        logins = first.login, second.login
    refused = run(db_url, "users", "role", logins[0], "user")
    assert refused.exit_code == 1
    assert f"{logins[0]} is the last administrator of client CB" in refused.stderr
    assert run(db_url, "users", "role", logins[1], "administrator").exit_code == 0
    assert run(db_url, "users", "role", logins[0], "user").exit_code == 0


def write_csv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "roles.csv"
    path.write_bytes("\r\n".join(["Identifiant;Nom;Prénom;Rôle", *lines, ""]).encode("cp1252"))
    return path


def test_a_csv_line_demoting_the_last_administrator_is_rejected_with_its_line(
    db_url, session_factory, tree, tmp_path
):
    source = write_csv(tmp_path, f"{ALICE};Dupont;Alice;Utilisateur")
    report = tmp_path / "report.csv"
    result = run(db_url, "import", "users", str(source), "--client", "CA", "--report", str(report))
    assert result.exit_code == 1, result.output
    assert "0 updated" in result.output and "1 rejected" in result.output
    assert "line 2: " + ALICE + " is the last active administrator of client CA" in result.output
    written = report.read_text(encoding="utf-8-sig")
    assert "rejected" in written and "line 2: " in written
    assert state(session_factory, ALICE) == ("administrator", "active")


def test_a_csv_promoting_someone_active_may_demote_the_old_administrator_on_any_line(
    db_url, session_factory, tree, tmp_path
):
    # The demotion comes first in the file: the promotion further down still counts.
    source = write_csv(
        tmp_path, f"{ALICE};Dupont;Alice;Utilisateur", f"{MARC};Lefèvre;Marc;Administrateur"
    )
    result = run(db_url, "import", "users", str(source), "--client", "CA")
    assert result.exit_code == 0, result.output
    assert state(session_factory, ALICE) == ("user", "active")
    assert state(session_factory, MARC) == ("administrator", "active")
    # Demoting the new one and promoting someone who never activated is refused.
    again = write_csv(
        tmp_path, f"{MARC};Lefèvre;Marc;Utilisateur", f"{VERO};Duduche;Véronique;Admin"
    )
    refused = run(db_url, "import", "users", str(again), "--client", "CA")
    assert refused.exit_code == 1
    assert f"line 2: {MARC} is the last active administrator" in refused.output
    assert state(session_factory, MARC) == ("administrator", "active")


# --- two administrators demoting each other at once (PostgreSQL) -------------------------------

POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def _blocked_on_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as connection:
        return (
            connection.scalar(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            == "Lock"
        )


def _demote_each_other(
    engine: Engine, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """Alice demotes Marc while Marc demotes Alice, each in their own session and thread.

    After its guard has read, each thread waits until the other has read too, or is blocked
    on a lock (which only the guard's lock can cause here): without the lock both read the
    other as an administrator before either commits, the exact race of the issue.
    """
    read = {ALICE: threading.Event(), MARC: threading.Event()}
    pids: dict[str, int] = {}
    guard = rights.require_administrator_left

    def synchronised(session: Session, client_id: int, user_id: int, **kwargs: object) -> None:
        me = ALICE if threading.current_thread().name == ALICE else MARC
        other = MARC if me == ALICE else ALICE
        try:
            guard(session, client_id, user_id, **kwargs)  # type: ignore[arg-type]
        finally:
            read[me].set()
            deadline = time.monotonic() + 60  # a hang fails the test instead of blocking CI
            while not read[other].is_set() and not _blocked_on_a_lock(engine, pids[other]):
                assert time.monotonic() < deadline, "the other demotion never got this far"
                time.sleep(0.02)

    monkeypatch.setattr(rights, "require_administrator_left", synchronised)
    outcomes: dict[str, object] = {}
    with session_factory() as session:
        actors = {
            login: actor_for_user(session.scalar(select(User).where(User.login == login)))
            for login in (ALICE, MARC)
        }

    def demote(me: str, target: str) -> None:
        try:
            with session_factory.begin() as session:
                pids[me] = session.scalar(text("SELECT pg_backend_pid()"))
                ready.wait()
                rights.change_role(session, actors[me], target, "manager", sub_account="Siège")
            outcomes[me] = "demoted " + target
        except Exception as error:  # recorded, then asserted by the caller
            outcomes[me] = error

    ready = threading.Barrier(2)
    threads = [
        threading.Thread(target=demote, args=(ALICE, MARC), name=ALICE),
        threading.Thread(target=demote, args=(MARC, ALICE), name=MARC),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("db_url", POSTGRES_ONLY, indirect=True)
def test_two_administrators_demoting_each_other_at_once_leave_one(
    engine, session_factory, tree, monkeypatch
):
    make_admin(session_factory, MARC, active=True)
    outcomes = _demote_each_other(engine, session_factory, monkeypatch)
    refused = [o for o in outcomes.values() if isinstance(o, LastAdministratorError)]
    demoted = [o for o in outcomes.values() if isinstance(o, str)]
    assert (len(refused), len(demoted)) == (1, 1), outcomes
    roles = {state(session_factory, login)[0] for login in (ALICE, MARC)}
    assert roles == {"administrator", "manager"}


@pytest.mark.parametrize("db_url", POSTGRES_ONLY, indirect=True)
def test_without_the_lock_both_demotions_pass_and_no_administrator_is_left(
    engine, session_factory, tree, monkeypatch
):
    """The control: the same race with the guard's lock removed loses both administrators,
    so the test above proves the lock, not a lucky ordering."""
    make_admin(session_factory, MARC, active=True)
    no_lock: Callable[[Session, int], None] = lambda session, client_id: None  # noqa: E731
    monkeypatch.setattr(users, "lock_client", no_lock)
    outcomes = _demote_each_other(engine, session_factory, monkeypatch)
    assert outcomes == {ALICE: "demoted " + MARC, MARC: "demoted " + ALICE}
    assert {state(session_factory, login)[0] for login in (ALICE, MARC)} == {"manager"}


def test_a_dry_run_says_what_apply_will_do_to_the_last_administrator(
    db_url, session_factory, tree, tmp_path
):
    alone = write_csv(tmp_path, f"{ALICE};Dupont;Alice;Utilisateur")
    dry = run(db_url, "import", "users", str(alone), "--client", "CA", "--dry-run")
    assert dry.exit_code == 1, dry.output
    assert "0 would be updated" in dry.output and "1 rejected" in dry.output
    assert f"line 2: {ALICE} is the last active administrator of client CA" in dry.output
    # With a promotion anywhere in the file, the dry run and the apply both accept it.
    swap = write_csv(
        tmp_path, f"{ALICE};Dupont;Alice;Utilisateur", f"{MARC};Lefèvre;Marc;Administrateur"
    )
    dry = run(db_url, "import", "users", str(swap), "--client", "CA", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 would be updated" in dry.output
    assert state(session_factory, ALICE) == ("administrator", "active")
