"""``audit export`` (a period, an organisation subtree, a target, the actor's scope, a CSV
Excel opens safely) and a user's history found by login: revocations, a login change."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from selfcare_ops import audit
from selfcare_ops.cli import main
from selfcare_ops.store.models import Organisation

PB_ADMIN = "admin@pb.example"
PA_ADMIN = "admin@pa.example"
JP = "jbubu@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"


def run(db_url, *args, actor=None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def read_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: French Excel reads the accents
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


@pytest.fixture
def history(session_factory, tree):
    """Four events in 2020, on CA, CA1 (below PA1, below PA) and CB, one with a label that a
    spreadsheet would run as a formula."""
    with session_factory.begin() as session:
        ids = dict(session.execute(select(Organisation.ref, Organisation.id)).tuples().all())
        for moment, ref, label in [
            (datetime(2020, 1, 10, 9, 0, tzinfo=UTC), "CA", "jan@ca"),
            (datetime(2020, 2, 15, 12, 0, tzinfo=UTC), "CB", '=HYPERLINK("x")'),
            (datetime(2020, 3, 1, 23, 30, tzinfo=UTC), "CA1", "mar@ca1"),
            (datetime(2020, 3, 2, 0, 0, tzinfo=UTC), "CA", "late@ca"),
        ]:
            audit.record(
                session,
                tree.system,
                "user.update",
                "user",
                f"x-{label}",
                target_label=label,
                organisation_id=ids[ref],
                before={"last_name": "Dupont"},
                after={"last_name": "Dupont-Aignan", "note": "é"},
                occurred_at=moment,
            )


def test_export_a_period_with_its_last_day_included(db_url, history, tmp_path):
    target = tmp_path / "exports" / "audit.csv"
    done = run(
        db_url, "audit", "export", "--csv", str(target), "--since", "2020-02-01",
        "--until", "2020-03-01",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.stdout == f"2 events written to {target}.\n"
    rows = read_csv(target)
    assert list(rows[0]) == [
        "occurred_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "organisation_ref",
        "before",
        "after",
    ]
    assert [(r["organisation_ref"], r["target_label"]) for r in rows] == [
        ("CB", '\'=HYPERLINK("x")'),  # neutralised: the cell stays text in Excel
        ("CA1", "mar@ca1"),
    ]
    assert rows[1]["occurred_at"] == "2020-03-01T23:30:00+00:00"
    assert rows[1]["actor"] == "system@selfcare-ops.local"
    assert json.loads(rows[1]["before"]) == {"last_name": "Dupont"}
    assert json.loads(rows[1]["after"]) == {"last_name": "Dupont-Aignan", "note": "é"}
    timed = run(
        db_url, "audit", "export", "--csv", str(target), "--since", "2020-03-01T23:30",
        "--until", "2020-03-02T00:00",
    )  # fmt: skip
    assert timed.stdout.startswith("2 events")
    assert [r["target_label"] for r in read_csv(target)] == ["mar@ca1", "late@ca"]


def test_export_of_an_organisation_takes_its_subtree(db_url, history, tmp_path):
    target = tmp_path / "pa.csv"
    done = run(
        db_url, "audit", "export", "--csv", str(target), "--org", "PA", "--until", "2020-12-31"
    )
    assert done.exit_code == 0, done.output
    assert [r["organisation_ref"] for r in read_csv(target)] == ["CA", "CA1", "CA"]


def test_export_keeps_to_the_actors_scope(db_url, history, tmp_path):
    target = tmp_path / "pb.csv"
    mine = run(
        db_url, "audit", "export", "--csv", str(target), "--until", "2020-12-31", actor=PB_ADMIN
    )
    assert mine.exit_code == 0, mine.output
    assert [r["organisation_ref"] for r in read_csv(target)] == ["CB"]
    refused_file = tmp_path / "refused.csv"
    refused = run(
        db_url, "audit", "export", "--csv", str(refused_file), "--org", "PA", actor=PB_ADMIN
    )
    assert refused.exit_code == 1
    assert "may not export the audit trail of partner PA" in refused.stderr
    assert not refused_file.exists()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--since", "2020-03-02", "--until", "2020-03-01"], 1, "ends (2020-03-01) before"),
        (["--since", "le 3 mars"], 2, "is not a date like 2026-03-01"),
        (["--org", "NOPE"], 1, "No organisation is known as 'NOPE'"),
    ],
)
def test_export_refusals(db_url, history, tmp_path, args, status, message):
    target = tmp_path / "audit.csv"
    refused = run(db_url, "audit", "export", "--csv", str(target), *args)
    assert refused.exit_code == status
    assert message in refused.stderr
    assert not target.exists()


def test_an_unwritable_file_is_one_sentence(db_url, history, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    refused = run(db_url, "audit", "export", "--csv", str(blocker / "audit.csv"))
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: The file {blocker / 'audit.csv'} cannot be written")
    assert "Traceback" not in refused.output


def test_revocations_are_found_by_the_users_login(db_url, tree, tmp_path):
    assert run(db_url, "invite", "user", JP).exit_code == 0
    assert run(db_url, "invite", "revoke", JP).exit_code == 0
    assert run(db_url, "invite", "user", VERO).exit_code == 0
    assert run(db_url, "invite", "revoke", "--email", "V.Duduche@virginie.example").exit_code == 0
    for login, email in [(JP, "jp.bubu@virginie.example"), (VERO, "v.duduche@virginie.example")]:
        listed = run(db_url, "audit", "list", "--target", login, "--action", "invitation.revoke")
        events = json.loads(
            run(
                db_url, "audit", "list", "--target", login, "--action", "invitation.revoke",
                "--json",
            ).stdout
        )  # fmt: skip
        assert listed.exit_code == 0 and len(events) == 1
        (event,) = events
        assert (event["target_type"], event["target_label"]) == ("user", login)
        assert event["after"]["status"] == "revoked" and event["after"]["email"] == email
    target = tmp_path / "jp.csv"
    assert run(db_url, "audit", "export", "--csv", str(target), "--target", JP).exit_code == 0
    assert [r["action"] for r in read_csv(target)] == [
        "user.create",
        "invitation.send",
        "invitation.revoke",
    ]


def test_a_users_history_follows_a_login_change(db_url, tree):
    new = "jean-pierre.bubu@virginietelecom.sewan.eu"
    assert run(db_url, "users", "edit", JP, "--login", new).exit_code == 0
    events = json.loads(run(db_url, "audit", "list", "--target", new, "--json").stdout)
    assert [(e["action"], e["target_label"]) for e in events] == [
        ("user.update", new),
        ("user.create", JP),
    ]
    partner_view = json.loads(
        run(db_url, "audit", "list", "--target", new, "--json", actor=PB_ADMIN).stdout
    )
    assert partner_view == []
    own_view = run(db_url, "audit", "list", "--target", new, "--json", actor=PA_ADMIN)
    assert len(json.loads(own_view.stdout)) == 2
