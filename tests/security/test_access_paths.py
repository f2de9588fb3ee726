"""Issue 12: every path checks its actor. Each test is one break of the attack, replayed through
the command line (click's runner) or the services, on SQLite and PostgreSQL.

The tree (tests/conftest.py): OP -> PA -> CA (sub-accounts Siège, Agence) and PA -> PA1 -> CA1;
OP -> PB -> CB. In CA, alice is the client administrator, marc the manager of Siège (his
*manage rights* right is off), jp and cedric are in Siège, veronique in Agence, robert is
deactivated.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import ipywidgets as widgets
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from selfcare_ops.access import resolve_actor
from selfcare_ops.accounts import rights
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.cli import main
from selfcare_ops.errors import AccessDeniedError, ConfigurationError, ValidationError
from selfcare_ops.invitations import service as invitations
from selfcare_ops.jobs.runner import run_job
from selfcare_ops.onboarding import build_plan
from selfcare_ops.reports import adoption_report
from selfcare_ops.store.models import (
    Administrator,
    AuditEvent,
    Invitation,
    JobRun,
    Organisation,
    OutboundMessage,
    User,
    UserRestriction,
    utcnow,
)
from selfcare_ops.widgets import open_dashboard


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


ALICE = "alice@virginie.example"  # client administrator of CA
MARC = "marc@virginie.example"  # manager of the sub-account Siège of CA
PA_ADMIN = "admin@pa.example"  # partner administrator of PA (CA and CA1 below)
PB_ADMIN = "admin@pb.example"  # partner administrator of PB (CB below)
EMPTY_ACTOR = (
    "Error: The actor is empty (--as or SELFCARE_OPS_ACTOR): name an administrator's or "
    "manager's email, or leave both unset to act as the system actor."
)


def run(db_url: str, *args: str, actor: str | None = None, env: dict | None = None):
    environment = {"SELFCARE_OPS_DATABASE_URL": db_url, **(env or {})}
    if actor is not None:
        environment["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def people(tree) -> dict[str, str]:
    names = ["alice", "marc", "jp", "cedric", "veronique", "robert"]
    return dict(zip(names, tree.client_a_users, strict=True))


def csv_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drop.csv"
    path.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    return path


def users_of(session_factory, client_ref: str) -> list[str]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(User.login)
                .join(Organisation, Organisation.id == User.client_id)
                .where(Organisation.ref == client_ref)
            )
        )


# --- 1. escalation through jobs ----------------------------------------------------------------


def test_a_job_beyond_the_actors_scope_is_refused_before_it_starts(
    db_url, tree, session_factory, tmp_path
):
    drop = csv_file(
        tmp_path, "Nom;Prénom;Adresse e-mail;Rôle\nIntrus;Ivan;ivan@beta.example;administrateur\n"
    )
    before = users_of(session_factory, "CB")
    refused = run(
        db_url,
        "jobs",
        "run",
        "onboarding",
        *("-p", "csv_path", str(drop), "-p", "client", "CB", "-p", "invite", "yes"),
        actor=MARC,
    )
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: sub-account manager marc@virginie.example may not onboard users into client CB "
        "(Bêta Client): it is outside their scope.\n"
    )
    maintenance = run(db_url, "jobs", "run", "invitation_maintenance", actor=ALICE)
    assert maintenance.exit_code == 1
    assert "client administrator alice@virginie.example may not run the invitation maintenance" in (
        maintenance.output
    )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 0  # never started
    assert users_of(session_factory, "CB") == before


def test_nobody_names_the_actor_of_a_job_but_the_runner(db_url, tree, session_factory):
    given = run(db_url, "jobs", "run", "ping", "-p", "actor", "system@selfcare-ops.local")
    assert given.exit_code == 1
    assert "The actor of a run is whoever starts it (--as or SELFCARE_OPS_ACTOR)" in given.output
    with pytest.raises(ValidationError, match="not a parameter"):
        run_job("ping", {"actor": "admin@op.example"})
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 0


@pytest.mark.slow
def test_a_job_runs_as_who_started_it_and_a_routed_line_cannot_leave_their_scope(
    db_url, tree, session_factory, tmp_path
):
    """The attack's file: its client column routes lines to other clients, one line asks for
    an administrator. Run by the manager of Siège, only what he may do is done, as him."""
    drop = csv_file(
        tmp_path,
        "Nom;Prénom;Adresse e-mail;Sous-compte;Rôle;Référence client\n"
        "Petit;Noé;noe.petit@virginie.example;Siège;utilisateur;CA\n"
        "Intrus;Ivan;ivan@beta.example;;administrateur;CB\n"
        "Sudiste;Sam;sam@sudiste.example;;administrateur;CA1\n"
        "Chef;Chloé;chloe@virginie.example;Siège;administrateur;CA\n",
    )
    before = {ref: users_of(session_factory, ref) for ref in ("CB", "CA1")}
    result = run(
        db_url,
        "jobs",
        "run",
        "onboarding",
        *("-p", "csv_path", str(drop), "-p", "client", "CA", "-p", "invite", "yes", "--json"),
        actor=MARC,
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["actor"] == MARC and shown["status"] == "succeeded"
    assert {ref: users_of(session_factory, ref) for ref in ("CB", "CA1")} == before
    with session_factory() as session:
        created = session.scalars(
            select(User).where(User.last_name.in_(["Petit", "Intrus", "Sudiste", "Chef"]))
        ).all()
        assert [(u.last_name, u.role) for u in created] == [("Petit", "user")]
        imported = session.scalars(
            select(AuditEvent).where(AuditEvent.target_type == "import_run")
        ).all()
        assert imported and {e.actor_label for e in imported} == {MARC}
        assert session.scalar(select(JobRun.actor_label)) == MARC
    report = (Path(shown["output_dir"]) / "onboarding_report.csv").read_text(encoding="utf-8-sig")
    assert report.count("outside their scope") == 2  # CB and CA1
    assert "may not grant the administrator role" in report

    mine = json.loads(run(db_url, "jobs", "history", "--json", actor=MARC).stdout)
    assert [(r["job"], r["actor"]) for r in mine] == [("onboarding", MARC)]
    assert json.loads(run(db_url, "jobs", "history", "--json", actor=PB_ADMIN).stdout) == []
    everything = json.loads(run(db_url, "jobs", "history", "--json").stdout)
    assert [r["actor"] for r in everything] == [MARC]
    text = run(db_url, "jobs", "history").output
    assert MARC in text


# --- 1. mail deliver and invite expire ---------------------------------------------------------


def test_only_operator_and_partner_administrators_deliver_the_outbox(db_url, tree, session_factory):
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, people(tree)["veronique"])
    for actor in (MARC, ALICE):
        refused = run(db_url, "mail", "deliver", actor=actor)
        assert refused.exit_code == 1
        assert "may not deliver the queued mail: the outbox holds every client's mail" in (
            refused.output
        )
        status = run(db_url, "mail", "status", "--json", actor=actor)
        assert status.exit_code == 1 and "may not read the outbox counts" in status.output
    with session_factory() as session:
        assert session.scalars(select(OutboundMessage.status)).all() == ["queued"]
    done = run(db_url, "mail", "deliver", "--json", actor=PA_ADMIN)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["sent"] == 1
    with session_factory() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "mail.deliver")).one()
    assert (event.actor_label, event.after["sent"]) == (PA_ADMIN, 1)


def test_a_client_side_actor_gets_no_deliver_button(session_factory, tree):
    from selfcare_ops.widgets import BulkInvitationDashboard

    board = BulkInvitationDashboard(session_factory, tree.client_a_admin, client_ref="CA")
    board.confirm_button.click()
    assert board.send_feedback.kind == "success", board.send_feedback.text
    assert board.deliver_button.disabled and board.delivery_box.layout.display == "none"
    board.deliver_button.click()  # a disabled button's click does nothing
    assert board.deliver_button.runs == 0
    with pytest.raises(AccessDeniedError, match="may not deliver"):  # nor would the service
        board.deliver("CA")
    with session_factory() as session:
        assert set(session.scalars(select(OutboundMessage.status))) == {"queued"}
    with pytest.raises(AccessDeniedError, match="may not deliver"):
        invitations.deliver_and_redact(session_factory, actor=tree.manager_siege)


def test_invite_expire_as_a_manager_touches_only_their_sub_account(db_url, tree, session_factory):
    p = people(tree)
    long_ago = utcnow() - timedelta(days=30)
    with session_factory.begin() as session:
        for login in (p["jp"], p["veronique"]):
            invitations.invite_user(session, tree.system, login, now=long_ago)
    done = run(db_url, "invite", "expire", actor=MARC)
    assert done.exit_code == 0 and done.output == "1 invitation expired.\n"
    with session_factory() as session:
        states = dict(
            session.execute(
                select(User.login, Invitation.status).join(User, User.id == Invitation.user_id)
            ).all()
        )
    assert states == {p["jp"]: "expired", p["veronique"]: "pending"}


# --- 11. an empty actor is an error, not the system actor --------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["clients", "list"],
        ["invite", "expire"],
        ["mail", "deliver"],
        ["jobs", "list"],
        ["jobs", "run", "ping"],
        ["audit", "list"],
    ],
)
@pytest.mark.parametrize("how", ["option", "variable", "blank"])
def test_an_empty_actor_is_refused_in_one_sentence(db_url, tree, session_factory, command, how):
    long_ago = utcnow() - timedelta(days=30)
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, people(tree)["jp"], now=long_ago)
    if how == "option":
        result = run(db_url, "--as", "", *command)
    else:
        result = run(db_url, *command, actor="" if how == "variable" else "   ")
    assert result.exit_code == 1
    assert result.output == EMPTY_ACTOR + "\n"
    with session_factory() as session:  # nothing ran as the system actor
        assert session.scalar(select(Invitation.status)) == "pending"
        assert session.scalar(select(func.count()).select_from(JobRun)) == 0
        assert session.scalar(select(OutboundMessage.status)) == "queued"


def test_an_empty_actor_is_refused_by_the_services_and_the_dashboards(
    db_url, tree, session_factory, monkeypatch
):
    with session_factory() as session:
        for empty in ("", "  "):
            with pytest.raises(ConfigurationError, match="The actor is empty"):
                resolve_actor(session, empty)
        assert resolve_actor(session, None).kind == "system"  # nobody named
    with pytest.raises(ConfigurationError, match="The actor is empty"):
        run_job("ping", {}, actor="")
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    monkeypatch.setenv("SELFCARE_OPS_ACTOR", "")
    shown = open_dashboard()
    assert isinstance(shown, widgets.HTML)
    assert "The actor is empty" in shown.value
    assert open_dashboard(actor_email=MARC).actor.kind == "manager"


# --- 5. a right that grants something ----------------------------------------------------------


def test_manage_rights_governs_who_changes_rights_and_restrictions(
    db_url, tree, session_factory, tmp_path
):
    p = people(tree)
    refused = run(db_url, "rights", "set", p["jp"], "--place-orders", "on", actor=MARC)
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: sub-account manager marc@virginie.example may not change the rights of others: "
        "their right 'manage rights' is off; an administrator of the client can "
        "switch it on.\n"
    )
    restrict = run(db_url, "rights", "restrict", p["jp"], "--contract", "CT-1", actor=MARC)
    assert restrict.exit_code == 1 and "'manage rights' is off" in restrict.output
    with session_factory() as session:
        assert not session.scalar(select(User.right_place_orders).where(User.login == p["jp"]))
        assert session.scalar(select(func.count()).select_from(UserRestriction)) == 0
        with pytest.raises(AccessDeniedError, match="may not grant rights"):
            create_user(
                session,
                tree.manager_siege,
                "CA",
                NewUser("Neuf", "Nadia", sub_account="Siège", rights={"place_orders": True}),
            )
        # the same through a CSV import: the line asking for a right is rejected
        drop = csv_file(tmp_path, "Nom;Prénom;Sous-compte;Passer commande\nNeuf;Nina;Siège;oui\n")
        plan = build_plan(session, tree.manager_siege, drop, client_ref="CA")
        (reason,) = plan.frame["reason"]
        assert plan.frame["action"].tolist() == ["reject"] and "'manage rights' is off" in reason

    # The client administrator (seed 004's gestionnaire) needs no right of her own ...
    with session_factory() as session:
        assert not session.scalar(select(User.right_manage_rights).where(User.login == p["alice"]))
    granted = run(db_url, "rights", "set", p["marc"], "--manage-rights", "on", actor=ALICE)
    assert granted.exit_code == 0, granted.output
    # ... and once she gives it, the manager uses it in his sub-account.
    allowed = run(db_url, "rights", "set", p["jp"], "--place-orders", "on", actor=MARC)
    assert allowed.exit_code == 0, allowed.output
    with session_factory.begin() as session:
        rights.set_rights(session, tree.client_a_admin, p["marc"], manage_rights=False)
    again = run(db_url, "rights", "set", p["jp"], "--place-orders", "off", actor=MARC)
    assert again.exit_code == 1  # switched off: refused at once


# --- 6. scopes that leak -----------------------------------------------------------------------


def test_a_managers_audit_trail_covers_their_sub_account_only(db_url, tree, session_factory):
    p = people(tree)
    with session_factory.begin() as session:
        for login in (p["jp"], p["veronique"], p["alice"]):
            rights.set_rights(session, tree.system, login, view_invoices=True)
    events = json.loads(
        run(db_url, "audit", "list", "--limit", "1000", "--json", actor=MARC).stdout
    )
    seen = {e["target_label"] for e in events}
    assert p["jp"] in seen and p["marc"] in seen
    assert seen <= {p["jp"], p["cedric"], p["marc"]}
    assert not {p["veronique"], p["alice"], p["robert"], "CA", "CB"} & seen
    about_veronique = run(
        db_url, "audit", "list", "--target", p["veronique"], "--json", actor=MARC
    ).stdout
    assert json.loads(about_veronique) == []
    everyone = json.loads(
        run(db_url, "audit", "list", "--limit", "1000", "--json", actor=ALICE).stdout
    )
    assert {p["veronique"], p["alice"]} <= {e["target_label"] for e in everyone}


def test_a_managers_client_counts_are_their_sub_accounts(db_url, tree):
    (row,) = json.loads(run(db_url, "clients", "list", "--json", actor=MARC).stdout)
    counts = {
        k: row[k] for k in ("ref", "users", "not_invited", "invited", "active", "deactivated")
    }
    assert counts == {
        "ref": "CA",
        "users": 3,
        "not_invited": 2,
        "invited": 0,
        "active": 1,
        "deactivated": 0,
    }
    (whole,) = json.loads(run(db_url, "clients", "list", "--json", actor=ALICE).stdout)
    assert whole["users"] == 6


def test_the_adoption_report_covers_the_actors_scope_only(tree, session_factory):
    p = people(tree)
    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, p["veronique"])
        session.execute(update(OutboundMessage).values(status="failed", last_error="550 refused"))
    with session_factory() as session:
        manager = adoption_report(session, tree.manager_siege)
        assert manager.totals["users"] == 3.0 and manager.totals["failed_mails"] == 0.0
        assert manager.funnel_clients[["client_ref", "users"]].values.tolist() == [["CA", 3]]
        assert set(manager.funnel_sub_accounts["sub_account"]) == {"Siège"}
        assert manager.failed_mails.empty
        client = adoption_report(session, tree.client_a_admin)
        assert client.totals["users"] == 6.0 and len(client.failed_mails) == 1
        partner = adoption_report(session, tree.partner_a_admin)
        assert set(partner.funnel_clients["client_ref"]) == {"CA", "CA1"}
        assert set(partner.funnel_partners["partner_ref"]) == {"PA", "PA1"}
        other = adoption_report(session, tree.partner_b_admin)
        assert set(other.funnel_clients["client_ref"]) == {"CB"}
        assert other.totals["users"] == 0.0 and other.failed_mails.empty


# --- 4. invite admin across clients ------------------------------------------------------------


@pytest.fixture
def beta_people(session_factory, tree) -> dict[str, str]:
    """CB's active administrator bob and deactivated user dora."""
    with session_factory.begin() as session:
        bob = create_user(
            session, tree.system, "CB", NewUser("Bob", "Bêta", email="bob@beta.example")
        )
        dora = create_user(
            session,
            tree.system,
            "CB",
            NewUser("Dora", "Humbert", email="dora@beta.example", role="user"),
        )
        bob.status, bob.activated_at = "active", utcnow()
        dora.status, dora.deactivated_at = "deactivated", utcnow()
        return {"bob": bob.login, "dora": dora.login}


def test_invite_admin_never_takes_an_identity_outside_the_inviters_scope(
    db_url, tree, session_factory, beta_people
):
    sentences = {}
    for email in ("bob@beta.example", "dora@beta.example", PB_ADMIN):
        result = run(db_url, "invite", "admin", email, "--org", "CA", actor=ALICE)
        assert result.exit_code == 1
        sentences[email] = result.output.replace(email, "<email>")
        for secret in (*beta_people.values(), "CB", "Bêta", "PB", "deactivated", "active"):
            assert secret not in result.output
    assert len(set(sentences.values())) == 1  # the same sentence whatever the account is
    assert sentences[PB_ADMIN] == (
        "Error: The address <email> cannot be invited to administer CA (Virginie Télécom): it is "
        "already in use outside the scope of client administrator alice@virginie.example.\n"
    )
    with session_factory() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Administrator)
                .where(Administrator.email.in_(["bob@beta.example", "dora@beta.example"]))
            )
            == 0
        )
        bob = resolve_actor(session, "bob@beta.example")
    assert (bob.kind, bob.label) == ("client_admin", "bob@beta.example")


def test_invite_admin_never_moves_a_user_to_another_clients_identity(
    db_url, tree, session_factory, beta_people
):
    p = people(tree)
    moved = run(db_url, "invite", "admin", "bob@beta.example", "--org", "CA")  # the system actor
    assert moved.exit_code == 1
    assert f"is the address of {beta_people['bob']}, a user of client CB" in moved.output
    across = run(db_url, "invite", "admin", "marc@virginie.example", "--org", "CA1", actor=PA_ADMIN)
    assert across.exit_code == 1 and "not CA1 (Société Sudiste)" in across.output
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Administrator)) == 5  # as before
        assert resolve_actor(session, MARC).kind == "manager"
    # What seed 000 asks stays possible: a user of CA becomes an administrator of CA.
    kept = run(db_url, "invite", "admin", MARC, "--org", "CA", actor=ALICE)
    assert kept.exit_code == 0, kept.output
    assert f"already has the account {p['marc']}: it keeps it" in kept.output
    fresh = run(db_url, "invite", "admin", "new.boss@virginie.example", "--org", "CA", actor=ALICE)
    assert fresh.exit_code == 0 and "has no account" in fresh.output
