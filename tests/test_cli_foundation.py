"""The CLI: db upgrade, demo, clients list, users list, audit list, errors and exit codes."""

import json
import re

import pytest
from click.testing import CliRunner

from selfcare_ops.cli import main
from selfcare_ops.store.db import make_engine


def run(db_url, *args, env=None):
    environment = {"SELFCARE_OPS_DATABASE_URL": db_url, **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def test_demo_then_directory_from_the_command_line(db_url):
    """One demo load per database (it takes seconds), then what an analyst runs on it."""
    first = run(db_url, "demo", "--no-jobs")
    assert first.exit_code == 0, first.output
    assert "20000 users" in first.output
    again = run(db_url, "demo", "--no-jobs")
    assert again.exit_code == 0
    assert "added now: 0 organisations, 0 sub-accounts, 0 users, 0 administrators" in again.output

    result = run(db_url, "clients", "list", "--search", "telecom", "--page-size", "1000", "--json")
    assert result.exit_code == 0
    clients = json.loads(result.output)
    names = {c["name"] for c in clients}
    assert "Virginie Télécom" in names
    assert any("Télécom" in n for n in names - {"Virginie Télécom"})
    for client in clients:
        assert {
            "ref",
            "name",
            "partner_ref",
            "users",
            "not_invited",
            "invited",
            "active",
            "deactivated",
        } <= set(client)
        assert client["users"] == sum(
            client[s] for s in ("not_invited", "invited", "active", "deactivated")
        )

    paged = run(db_url, "clients", "list", "--page", "2", "--page-size", "25")
    assert paged.exit_code == 0 and "Page 2 / 28 (700 clients)" in paged.output

    users = json.loads(run(db_url, "users", "list", "C0001", "--json").output)
    assert len(users) == 920
    assert {"login", "first_name", "last_name", "email", "status", "sub_account"} <= set(users[0])
    no_email = json.loads(run(db_url, "users", "list", "C0001", "--no-email", "--json").output)
    assert no_email and all(u["email"] is None for u in no_email)
    text_out = run(db_url, "users", "list", "C0001", "--status", "invited", "--limit", "5")
    assert re.search(r"invited \(\w+ \d+, 20\d\d\)", text_out.output)  # "April 3, 2026"

    scoped = json.loads(
        run(
            db_url,
            "--as",
            "admin@newleader.example",
            "clients",
            "list",
            "--page-size",
            "1000",
            "--json",
        ).output
    )
    assert scoped and all(c["partner_ref"] == "P003" for c in scoped)
    outside = next(c["ref"] for c in clients if c["partner_ref"] != "P003")
    refused = run(
        db_url, "users", "list", outside, env={"SELFCARE_OPS_ACTOR": "admin@newleader.example"}
    )
    assert refused.exit_code == 1
    assert "outside their scope" in refused.output

    events = json.loads(run(db_url, "audit", "list", "--json").output)
    assert events[0]["action"] == "demo.load"
    assert events[0]["actor_kind"] == "system"
    assert events[0]["actor_label"] == "system@selfcare-ops.local"

    # The demo's 20,000 users were counted by their writer: nothing to correct.
    right = run(db_url, "db", "recount")
    assert right.exit_code == 0 and "were right: nothing changed" in right.output
    engine = make_engine(db_url)
    with engine.begin() as connection:  # what a hand-written SQL insert leaves behind
        connection.exec_driver_sql(
            "UPDATE client_user_counts SET users = users + 5 WHERE status = 'invited'"
        )
    engine.dispose()
    fixed = run(db_url, "db", "recount")
    assert fixed.exit_code == 0 and "Corrected" in fixed.output
    recounted = run(
        db_url, "clients", "list", "--search", "telecom", "--page-size", "1000", "--json"
    )
    assert json.loads(recounted.output) == clients  # the counts shown are the true ones again


def test_errors_are_one_sentence_with_status_1(db_url, tmp_path):
    empty = f"sqlite:///{tmp_path / 'nothing.db'}"
    result = run(empty, "clients", "list")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: The database is not initialised: run `selfcare-ops db upgrade`."
    )
    unknown = run(db_url, "--as", "ghost@nowhere.example", "clients", "list")
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    missing = run(db_url, "users", "list", "NOPE")
    assert missing.exit_code == 1


def test_usage_errors_exit_2(db_url):
    assert run(db_url, "clients", "list", "--page", "0").exit_code == 2
    assert run(db_url, "users", "list").exit_code == 2
    assert run(db_url, "nonsense").exit_code == 2


def test_unreachable_database(tmp_path):
    result = run("postgresql+psycopg://nobody@127.0.0.1:9/x?connect_timeout=2", "clients", "list")
    assert result.exit_code == 1
    assert "cannot be reached" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = run(url, "db", "upgrade")
    assert first.exit_code == 0 and "from empty to revision" in first.output
    second = run(url, "db", "upgrade")
    assert second.exit_code == 0 and "already at revision" in second.output
    make_engine(url).dispose()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db"],
        ["db", "upgrade"],
        ["db", "recount"],
        ["demo"],
        ["clients", "list"],
        ["users", "list"],
        ["audit", "list"],
        ["audit", "export"],
        ["orgs", "create"],
        ["orgs", "rename"],
        ["orgs", "set-language"],
        ["users", "edit"],
    ],
)
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
