"""The CLI's edges: bounded settings, pages past the end, JSON without "NaT", and a reader that
goes away (``| head -1``) without cutting the work short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.cli import main
from selfcare_ops.store.models import Invitation, Organisation, User, count_new_users

JP = "jbubu@virginietelecom.sewan.eu"
SELFCARE_OPS = Path(sys.executable).with_name("selfcare-ops")


def run(db_url: str, *args: str, env: dict[str, str] | None = None):
    environment = {"SELFCARE_OPS_DATABASE_URL": db_url, **(env or {})}
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def test_invitation_ttl_of_zero_is_refused_before_anything_is_sent(db_url, tree, session_factory):
    refused = run(db_url, "invite", "user", JP, env={"SELFCARE_OPS_INVITATION_TTL_DAYS": "0"})
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "Error: SELFCARE_OPS_INVITATION_TTL_DAYS must be a number of days from 0.0417 "
        "(one hour) to 30, such as 7 or 0.5, not '0'."
    )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0
    half_day = run(db_url, "invite", "user", JP, env={"SELFCARE_OPS_INVITATION_TTL_DAYS": "0.5"})
    assert half_day.exit_code == 0, half_day.output
    with session_factory() as session:
        invitation = session.scalars(select(Invitation)).one()
        assert (invitation.expires_at - invitation.created_at).total_seconds() == 12 * 3600


def test_a_page_past_the_end_is_one_sentence(db_url, tree):
    clients = run(db_url, "clients", "list", "--page", "99", "--page-size", "1")
    assert clients.exit_code == 1
    assert clients.stderr == "Error: Page 99 does not exist: there are 3 pages.\n"
    assert clients.stdout == ""
    one_page = run(db_url, "clients", "list", "--page", "2")
    assert one_page.stderr == "Error: Page 2 does not exist: there is 1 page.\n"
    last = run(db_url, "clients", "list", "--page", "3", "--page-size", "1")
    assert last.exit_code == 0 and "Page 3 / 3 (3 clients)" in last.stdout

    users = run(db_url, "users", "list", "CA", "--page", "99", "--page-size", "2")
    assert users.exit_code == 1
    assert users.stderr == "Error: Page 99 does not exist: there are 3 pages.\n"
    second = run(db_url, "users", "list", "CA", "--page", "2", "--page-size", "2")
    assert second.exit_code == 0, second.output
    assert second.stdout.rstrip().endswith("Page 2 / 3 (6 users)")
    shown = [line.split()[0] for line in second.stdout.splitlines()[1:-1]]
    everyone = run(db_url, "users", "list", "CA", "--json")
    assert shown == [u["login"] for u in json.loads(everyone.stdout)][2:4]
    both = run(db_url, "users", "list", "CA", "--page", "1", "--limit", "3")
    assert both.exit_code == 2 and "--page or --limit" in both.stderr


def test_users_list_json_says_null_never_nat(db_url, tree):
    assert run(db_url, "invite", "user", JP).exit_code == 0
    listed = run(db_url, "users", "list", "CA", "--json")
    assert listed.exit_code == 0, listed.output
    assert "NaT" not in listed.stdout and "NaN" not in listed.stdout
    by_login = {user["login"]: user for user in json.loads(listed.stdout)}
    assert by_login[JP]["invited_at"].startswith("20")
    assert by_login["cpichon@virginietelecom.sewan.eu"]["invited_at"] is None
    assert by_login["cpichon@virginietelecom.sewan.eu"]["email"] is None


# --- a reader that goes away -----------------------------------------------------------------


def _add_client(
    session_factory: sessionmaker[Session], ref: str, *, with_email: int, without_email: int
) -> None:
    """A client of partner PA with invitable users and users without email, in one insert."""
    with session_factory.begin() as session:
        pa = session.scalars(select(Organisation).where(Organisation.ref == "PA")).one()
        org = Organisation(
            kind="client",
            parent_id=pa.id,
            ref=ref,
            name=f"Client {ref}",
            name_folded=f"client {ref.lower()}",
            path=pa.path,
        )
        session.add(org)
        session.flush()
        org.path = f"{pa.path}{org.id}/"
        rows = []
        for n in range(with_email + without_email):
            login = f"user-with-a-rather-long-login-{n:05d}@{ref.lower()}.example.fr"
            email = f"u{n}@{ref.lower()}.example" if n < with_email else None
            rows.append(
                {
                    "client_id": org.id,
                    "login": login,
                    "first_name": "Utilisateur",
                    "last_name": f"Numéro {n:05d}",
                    "email": email,
                    "role": "user",
                    "status": "not_invited",
                    **derived_columns("Utilisateur", f"Numéro {n:05d}", login, email),
                }
            )
        session.execute(insert(User), rows)
        total = with_email + without_email
        count_new_users(session.connection(), {(org.id, "not_invited"): total})


def _piped_into_head(db_url: str, *args: str) -> tuple[int, bytes, bytes]:
    """``selfcare-ops ARGS | head -1``: the command's status and stderr, and what head printed."""
    env = {**os.environ, "SELFCARE_OPS_DATABASE_URL": db_url}
    command = subprocess.Popen(
        [str(SELFCARE_OPS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    head = subprocess.Popen(["head", "-1"], stdin=command.stdout, stdout=subprocess.PIPE)
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()  # only head holds the reading end now: when it exits, the pipe closes
    first_line, _ = head.communicate(timeout=300)
    errors = command.stderr.read()
    return command.wait(timeout=300), errors, first_line


def test_users_list_into_head_ends_quietly(db_url, tree, session_factory):
    _add_client(session_factory, "BIG", with_email=0, without_email=4000)  # ~500 kB of table
    status, errors, first_line = _piped_into_head(db_url, "users", "list", "BIG")
    assert errors == b""
    assert status == 0
    assert first_line.split() == [
        b"login",
        b"first_name",
        b"last_name",
        b"email",
        b"status",
        b"sub_account",
        b"role",
    ]


def test_clients_list_into_head_ends_quietly(db_url, tree, session_factory):
    with session_factory.begin() as session:
        pa = session.scalars(select(Organisation).where(Organisation.ref == "PA")).one()
        name = "Société de télécommunications " * 5
        session.execute(
            insert(Organisation),
            [
                {
                    "kind": "client",
                    "parent_id": pa.id,
                    "ref": f"Z{n:04d}",
                    "name": f"{name}{n}",
                    "name_folded": f"societe {n}",
                    "path": pa.path,
                }
                for n in range(1000)
            ],
        )
    # ~200 kB of table: its write outlasts head, so the page label after it meets a closed pipe
    status, errors, first_line = _piped_into_head(db_url, "clients", "list", "--page-size", "1000")
    assert (status, errors) == (0, b"")
    assert first_line.split()[:3] == [b"ref", b"name", b"partner_ref"]


def test_a_confirmed_send_completes_when_its_reader_went_away(db_url, tree, session_factory):
    """The plan's list of people left out fills the pipe before the send: with --yes, the send
    was confirmed, so it still happens and commits, and the output just stops."""
    _add_client(session_factory, "SEND", with_email=30, without_email=6000)
    status, errors, first_line = _piped_into_head(db_url, "invite", "client", "SEND", "--yes")
    assert errors == b""
    assert status == 0
    assert first_line.decode().startswith("30 invitations to send")
    with session_factory() as session:
        invited = session.scalar(
            select(func.count())
            .select_from(User)
            .join(Organisation, Organisation.id == User.client_id)
            .where(Organisation.ref == "SEND", User.status == "invited")
        )
        assert invited == 30
        assert session.scalar(select(func.count()).select_from(Invitation)) == 30


@pytest.mark.parametrize("module", ["directory", "invitations", "rights", "audit"])
def test_commands_write_through_the_one_echo(module):
    """Every command prints through ``common.echo`` (the closed-pipe rule lives there)."""
    source = Path(__file__).parents[1] / "selfcare_ops" / "cli" / f"{module}.py"
    assert "click.echo(" not in source.read_text(encoding="utf-8")


def test_json_rows_hold_plain_values_whatever_the_column_type() -> None:
    """Column-wise conversion: every pandas type a listing carries becomes the JSON value a
    program expects, a missing one null (never NaN, NaT or pd.NA)."""
    import pandas as pd

    from selfcare_ops.cli.common import frame_records

    when = pd.Timestamp("2026-12-02T08:30:00", tz="UTC")
    frame = pd.DataFrame(
        {
            "count": [1, 2],
            "ratio": [0.5, float("nan")],
            "active": [True, False],
            "login": pd.array(["a", None], dtype="string"),
            "at": pd.Series([when, pd.NaT], dtype="datetime64[us, UTC]"),
            "mixed": [when.to_pydatetime(), None],
        }
    )
    assert frame_records(frame) == [
        {
            "count": 1,
            "ratio": 0.5,
            "active": True,
            "login": "a",
            "at": "2026-12-02T08:30:00+00:00",
            "mixed": "2026-12-02T08:30:00+00:00",
        },
        {"count": 2, "ratio": None, "active": False, "login": None, "at": None, "mixed": None},
    ]
    assert all(
        type(row["count"]) is int and type(row["active"]) is bool for row in frame_records(frame)
    )
