"""``users supervise --list`` and ``--end``: open supervisions listed within scope, ended by whoever
opened them, audited, and refused in one sentence otherwise; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops.accounts import supervision
from selfcare_ops.accounts.supervision_ledger import end_supervisions_of, open_supervisions
from selfcare_ops.cli import main
from selfcare_ops.errors import AccessDeniedError, ConflictError
from selfcare_ops.store.models import AuditEvent, SupervisionSession, utcnow

ALICE = "adupont@virginietelecom.sewan.eu"
MARC = "mlefevre@virginietelecom.sewan.eu"
SYSTEM = "system@selfcare-ops.local"
KEYS = {"id", "login", "client_ref", "actor", "reason", "started_at", "expires_at"}


@pytest.fixture
def run(db_url, tree):
    runner = CliRunner()

    def invoke(*args, actor=None, language="en"):
        env = {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_LANG": language}
        if actor:
            env["SELFCARE_OPS_ACTOR"] = actor
        return runner.invoke(main, list(args), env=env)

    return invoke


def open_three(run) -> None:
    """Two supervisions of Alice by the system actor, one of Marc by partner A's admin."""
    for login, reason, actor in (
        (ALICE, "Montrer la facturation", None),
        (ALICE, "Aide à la commande", None),
        (MARC, "Démonstration", "admin@pa.example"),
    ):
        result = run("users", "supervise", login, "--reason", reason, actor=actor)
        assert result.exit_code == 0, result.output


def audited_ends(session_factory) -> int:
    with session_factory() as session:
        query = select(func.count()).where(AuditEvent.action == "user.supervise_end")
        return session.scalar(query.select_from(AuditEvent))


def listed(run, actor=None) -> list[dict]:
    result = run("users", "supervise", "--list", "--json", actor=actor)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_shows_the_open_supervisions_within_scope(run):
    open_three(run)
    everything = listed(run)
    assert len(everything) == 3 and all(set(item) == KEYS for item in everything)
    assert {(item["login"], item["actor"]) for item in everything} == {
        (ALICE, SYSTEM),
        (MARC, "admin@pa.example"),
    }
    assert {item["client_ref"] for item in everything} == {"CA"}
    assert {item["reason"] for item in everything} >= {"Démonstration", "Aide à la commande"}
    assert len(listed(run, "admin@pa.example")) == 3  # CA is under partner A
    assert listed(run, "admin@pb.example") == []  # partner B sees none of CA's users
    table = run("users", "supervise", "--list")
    assert table.exit_code == 0, table.output
    assert ALICE in table.output and "Démonstration" in table.output
    assert table.output.strip().endswith("3 open supervisions")
    french = run("users", "supervise", "--list", language="fr")
    assert french.output.strip().endswith("3 supervisions en cours")


def test_end_closes_the_actors_supervisions_and_audits_each(run, session_factory):
    open_three(run)
    ended = run("users", "supervise", "--end", ALICE)
    assert ended.exit_code == 0, ended.output
    assert ended.output.strip() == f"2 supervisions of {ALICE} ended."
    assert audited_ends(session_factory) == 2
    with session_factory() as session:
        records = session.scalars(select(SupervisionSession)).all()
        assert sorted(r.ended_at is not None for r in records) == [False, True, True]
        assert supervision.supervision_banner(session, ALICE) is None
        assert supervision.supervision_banner(session, MARC) is not None
    assert [item["login"] for item in listed(run)] == [MARC]


def test_ending_an_already_ended_supervision_is_one_sentence(run, session_factory):
    open_three(run)
    assert run("users", "supervise", "--end", ALICE).exit_code == 0
    again = run("users", "supervise", "--end", ALICE)
    assert again.exit_code == 1
    assert again.output.strip() == f"Error: {SYSTEM} has no open supervision of {ALICE}."
    assert "Traceback" not in again.output
    assert audited_ends(session_factory) == 2
    french = run("users", "supervise", "--end", ALICE, language="fr")
    assert french.output.strip().endswith(f"{SYSTEM} n'a aucune supervision en cours de {ALICE}.")


def test_end_is_refused_outside_the_actors_scope(run, session_factory):
    open_three(run)
    refused = run("users", "supervise", "--end", ALICE, actor="admin@pb.example")
    assert refused.exit_code == 1
    assert "may not end the supervision of" in refused.output
    assert "outside their scope" in refused.output and "Traceback" not in refused.output
    assert audited_ends(session_factory) == 0
    assert len(listed(run)) == 3


def test_someone_elses_supervision_is_left_to_them(run, session_factory):
    open_three(run)
    refused = run("users", "supervise", "--end", MARC)  # opened by partner A's admin
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"Error: {SYSTEM} has no open supervision of {MARC}. "
        "1 other supervision of this user is open, opened by someone else."
    )
    done = run("users", "supervise", "--end", MARC, actor="admin@pa.example")
    assert done.exit_code == 0 and done.output.strip() == f"Supervision of {MARC} ended."
    assert audited_ends(session_factory) == 1


def test_an_expired_supervision_is_neither_listed_nor_ended(session_factory, tree):
    with session_factory.begin() as session:
        supervision.supervise(session, tree.system, ALICE, reason="Courte aide", minutes=5)
    later = utcnow() + timedelta(minutes=10)
    with session_factory.begin() as session:
        assert len(open_supervisions(session, tree.system)) == 1
        assert open_supervisions(session, tree.system, now=later) == []
        with pytest.raises(ConflictError, match="has no open supervision"):
            end_supervisions_of(session, tree.system, ALICE, now=later)
        with pytest.raises(AccessDeniedError):
            end_supervisions_of(session, tree.partner_b_admin, ALICE)
        assert end_supervisions_of(session, tree.system, ALICE) != []


def test_unknown_user_is_one_sentence(run):
    result = run("users", "supervise", "--end", "nobody@nowhere")
    assert result.exit_code == 1
    assert "No user is known as 'nobody@nowhere'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--end", "--list"), "Choose --end LOGIN or --list, not both."),
        (("--list", ALICE), "--list takes no LOGIN"),
        (("--json", ALICE, "--reason", "Aide"), "--json goes with --list."),
        (("--end", ALICE, "--reason", "Aide"), "--reason and --minutes are for opening"),
        (("--list", "--minutes", "5"), "--reason and --minutes are for opening"),
        ((), "Name the LOGIN of the user (or use --list)."),
        ((ALICE,), "Opening a supervision needs --reason"),
    ],
)
def test_contradictory_options_are_one_sentence(run, session_factory, args, message):
    result = run("users", "supervise", *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SupervisionSession)) == 0
