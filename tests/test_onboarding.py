"""CSV onboarding against the database (SQLite and PostgreSQL): apply, idempotence, crashes,
strict mode, scope, sub-accounts, invitations, audit and streaming."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from selfcare_ops.audit import list_events
from selfcare_ops.errors import AccessDeniedError, ImportFileError, NotFoundError
from selfcare_ops.onboarding import apply_plan, build_plan, import_users, write_report
from selfcare_ops.store.models import (
    AuditEvent,
    ImportRun,
    Invitation,
    OutboundMessage,
    SubAccount,
    User,
    utcnow,
)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


HEADER = "Nom;Prénom;Adresse e-mail;Téléphone;Sous-compte;Rôle"
DOMAIN = "virginietelecom.sewan.eu"


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "cp1252") -> bytes:
    return "\r\n".join([header, *lines, ""]).encode(encoding)


def plan_for(session_factory, actor, data, **options):
    options.setdefault("client_ref", "CA")
    with session_factory() as session:
        return build_plan(session, actor, data, **options)


def users_named(session_factory, *last_names: str) -> dict[str, User]:
    with session_factory() as session:
        found = session.scalars(select(User).where(User.last_name.in_(last_names))).all()
        return {user.last_name: user for user in found}


def count(session_factory, model, *where) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


SEVEN = csv_bytes(
    "Un;Alain;alain.un@virginie.example;01 23 45 67 01;Siège;",
    "Deux;Bea;bea.deux@virginie.example;;Agence;",
    "Trois;Carl;carl.trois@virginie.example;;;",
    "Quatre;Dora;;;;",
    "Cinq;Eric;eric.cinq@virginie.example;;;gestionnaire",
    "Six;Fanny;fanny.six@virginie.example;;Siège;",
    "Sept;Gael;gael.sept@virginie.example;;;",
)


def test_apply_creates_users_with_derived_columns_and_audit(session_factory, tree) -> None:
    plan = plan_for(session_factory, tree.system, SEVEN)
    assert plan.counts == {
        "rows": 7,
        "create": 7,
        "update": 0,
        "unchanged": 0,
        "reject": 0,
        "invite": 0,
    }
    calls: list[tuple[int, int]] = []
    before = utcnow()
    report = apply_plan(
        session_factory, tree.system, plan, batch_size=3, progress=lambda *a: calls.append(a)
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert report.counts["create"] == 7
    assert set(report.frame["outcome"]) == {"created"}
    created = users_named(session_factory, "Un", "Cinq", "Quatre")
    un = created["Un"]
    assert un.login == f"aun@{DOMAIN}"
    assert (un.phone, un.status, un.role) == ("+33123456701", "not_invited", "user")
    assert (un.sort_name, un.email_folded) == ("un alain", "alain.un@virginie.example")
    assert "aun@virginietelecom.sewan.eu" in un.search_text
    assert before <= un.created_at <= utcnow() and un.created_at.tzinfo is not None
    assert un.status_changed_at == un.created_at == un.updated_at
    assert created["Cinq"].role == "administrator"  # "gestionnaire": the client's administrator
    assert created["Quatre"].email is None
    with session_factory() as session:
        run = session.get(ImportRun, report.run_id)
        assert run.finished_at is not None and run.counts["create"] == 7
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("%import%"))).all()
    # Each created user points at the import; the import has one event with its counts.
    seven = users_named(session_factory, "Un", "Deux", "Trois", "Quatre", "Cinq", "Six", "Sept")
    assert [user.import_run_id for user in seven.values()] == [report.run_id] * 7
    assert not [e for e in events if e.action == "user.import.create"]
    summary = [e for e in events if e.action == "import.apply"]
    assert len(summary) == 1 and summary[0].after["create"] == 7
    with session_factory() as session:
        history = list_events(session, tree.system, target=un.login)
    assert "import.apply" in set(history["action"])  # the user's history shows the import


def test_reimport_changes_nothing_and_sends_nothing(session_factory, tree) -> None:
    first = import_users(session_factory, tree.system, SEVEN, client_ref="CA", invite=True)
    assert first.counts["create"] == 7
    assert first.counts["invite"] == 6  # Dora has no email
    assert count(session_factory, OutboundMessage) == 6
    assert count(session_factory, User, User.status == "invited") == 6
    events = count(session_factory, AuditEvent)
    second = import_users(session_factory, tree.system, SEVEN, client_ref="CA", invite=True)
    assert second.counts == {
        "rows": 7,
        "create": 0,
        "update": 0,
        "unchanged": 7,
        "reject": 0,
        "invite": 0,
    }
    assert count(session_factory, OutboundMessage) == 6
    assert count(session_factory, Invitation) == 6
    # Only the import's own summary event is added: no user changed.
    assert count(session_factory, AuditEvent) == events + 1


def test_invite_later_invites_the_not_yet_invited(session_factory, tree) -> None:
    import_users(session_factory, tree.system, SEVEN, client_ref="CA")
    assert count(session_factory, OutboundMessage) == 0
    plan = plan_for(session_factory, tree.system, SEVEN, invite=True)
    assert (plan.counts["unchanged"], plan.counts["invite"]) == (7, 6)
    report = apply_plan(session_factory, tree.system, plan)
    assert report.counts["invite"] == 6
    assert report.frame["invite"].sum() == 6
    assert count(session_factory, OutboundMessage) == 6


class Boom(RuntimeError):
    pass


def test_crash_in_second_batch_leaves_whole_batches_and_rerun_completes(
    session_factory, tree
) -> None:
    plan = plan_for(session_factory, tree.system, SEVEN, invite=True)

    def crash(number: int, session) -> None:
        if number == 2:
            raise Boom("power cut")

    with pytest.raises(Boom):
        apply_plan(session_factory, tree.system, plan, batch_size=3, on_batch=crash)
    done = users_named(session_factory, "Un", "Deux", "Trois", "Quatre", "Cinq", "Six", "Sept")
    assert sorted(done) == ["Deux", "Trois", "Un"]  # batch 1 whole, batch 2 not at all
    assert count(session_factory, OutboundMessage) == 3
    assert count(session_factory, User, User.import_run_id.is_not(None)) == 3

    # Applying the same (now stale) plan again completes it without duplicating anything.
    report = apply_plan(session_factory, tree.system, plan, batch_size=3)
    assert (report.counts["create"], report.counts["unchanged"]) == (4, 3)
    assert report.counts["invite"] == 3
    assert count(session_factory, User, User.client_id == tree_client_id(session_factory)) == 13
    assert count(session_factory, OutboundMessage) == 6

    # And a fresh run of the file finds everything done.
    again = import_users(session_factory, tree.system, SEVEN, client_ref="CA", invite=True)
    assert again.counts["unchanged"] == 7 and again.counts["invite"] == 0


def tree_client_id(session_factory, ref: str = "CA") -> int:
    from selfcare_ops.store.models import Organisation

    with session_factory() as session:
        return session.scalar(select(Organisation.id).where(Organisation.ref == ref))


def test_streaming_import_crash_then_rerun(session_factory, tree) -> None:
    def crash(number: int, session) -> None:
        if number == 2:
            raise Boom("disk full")

    with pytest.raises(Boom):
        import_users(
            session_factory,
            tree.system,
            SEVEN,
            client_ref="CA",
            batch_size=2,
            chunk_size=3,
            on_batch=crash,
        )
    assert len(users_named(session_factory, "Un", "Deux", "Trois", "Quatre")) == 2
    report = import_users(session_factory, tree.system, SEVEN, client_ref="CA", batch_size=2)
    assert (report.counts["create"], report.counts["unchanged"]) == (5, 2)


def test_strict_writes_nothing_when_a_row_is_rejected(session_factory, tree, tmp_path) -> None:
    data = csv_bytes("Bon;Jean;bon@virginie.example;;;", "Mauvais;Jean;pas-un-email;;;")
    target = tmp_path / "strict.csv"
    report = import_users(
        session_factory, tree.system, data, client_ref="CA", strict=True, report_path=target
    )
    assert "not applied" in target.read_text(encoding="utf-8-sig")
    with session_factory() as session:
        assert session.get(ImportRun, report.run_id).report_path == str(target)
    assert report.counts["create"] == 0 and report.counts["reject"] == 1
    assert list(report.frame["outcome"]) == ["not applied", "rejected"]
    assert users_named(session_factory, "Bon") == {}
    assert count(session_factory, AuditEvent, AuditEvent.action == "import.refused") == 1
    # Without --strict the valid row goes in.
    loose = import_users(session_factory, tree.system, data, client_ref="CA")
    assert (loose.counts["create"], loose.counts["reject"]) == (1, 1)


def test_strict_is_one_transaction(session_factory, tree) -> None:
    plan = plan_for(session_factory, tree.system, SEVEN)

    def crash(number: int, session) -> None:
        if number == 3:
            raise Boom("late failure")

    with pytest.raises(Boom):
        apply_plan(session_factory, tree.system, plan, strict=True, batch_size=2, on_batch=crash)
    assert users_named(session_factory, "Un", "Deux", "Trois") == {}


def test_updates_by_login_and_email(session_factory, tree) -> None:
    data = csv_bytes(
        "Dupont;Alice;alice.new@virginie.example;06 11 22 33 44;;",
        header="Nom;Prénom;Adresse e-mail;Mobile;Sous-compte;Identifiant",
    )
    data = csv_bytes(
        f"Dupont;Alice;alice.new@virginie.example;06 11 22 33 44;;adupont@{DOMAIN}",
        "Bubu;Jean-Pierre;jp.bubu@virginie.example;;Agence;",
        header="Nom;Prénom;Adresse e-mail;Mobile;Sous-compte;Identifiant",
    )
    plan = plan_for(session_factory, tree.system, data)
    assert list(plan.frame["changes"]) == [("email", "mobile"), ("sub_account",)]
    apply_plan(session_factory, tree.system, plan)
    found = users_named(session_factory, "Dupont", "Bubu")
    alice = found["Dupont"]
    assert (alice.email, alice.email_folded, alice.mobile) == (
        "alice.new@virginie.example",
        "alice.new@virginie.example",
        "+33611223344",
    )
    assert "alice.new@virginie.example" in alice.search_text
    with session_factory() as session:
        agence = session.scalar(select(SubAccount).where(SubAccount.name == "Agence"))
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "user.import.update",
                AuditEvent.target_label == f"adupont@{DOMAIN}",
            )
        ).one()
    assert found["Bubu"].sub_account_id == agence.id
    assert event.before["email"] == "alice@virginie.example"
    assert event.after["email"] == "alice.new@virginie.example"


def test_email_of_a_user_of_another_client_is_refused(session_factory, tree) -> None:
    data = csv_bytes("Intrus;Paul;alice@virginie.example;;;")
    plan = plan_for(session_factory, tree.system, data, client_ref="CB")
    row = plan.frame.iloc[0]
    assert row["action"] == "reject"
    assert "belongs to a user of another client" in row["reason"]


def test_login_given_with_someone_elses_email_is_a_conflict(session_factory, tree) -> None:
    data = csv_bytes(
        "Nouveau;Nina;alice@virginie.example;;;nnouveau",
        header="Nom;Prénom;Email;Tel;Sous-compte;Login",
    )
    row = plan_for(session_factory, tree.system, data).frame.iloc[0]
    assert row["action"] == "reject"
    assert f"already the email of the user adupont@{DOMAIN}" in row["reason"]
    assert "line 2, column 'Email'" in row["reason"]


def test_generated_logins_are_unique_and_stable(session_factory, tree) -> None:
    data = csv_bytes("Dupont;Jean;;;;", "Dupont;Jeanne;;;;", "Bubu;Jacques;;;;")
    plan = plan_for(session_factory, tree.system, data)
    # jbubu is taken by Jean-Pierre Bubu (another person): Jacques gets jbubu2.
    assert list(plan.frame["login"]) == [
        f"jdupont@{DOMAIN}",
        f"jdupont2@{DOMAIN}",
        f"jbubu2@{DOMAIN}",
    ]
    apply_plan(session_factory, tree.system, plan)
    again = plan_for(session_factory, tree.system, data)
    assert list(again.frame["action"]) == ["unchanged"] * 3
    assert list(again.frame["login"]) == list(plan.frame["login"])


def test_duplicates_across_chunks_are_caught(session_factory, tree) -> None:
    data = csv_bytes(
        "Un;Alain;meme@virginie.example;;;",
        "Deux;Bea;b@virginie.example;;;",
        "Trois;Carl;c@virginie.example;;;",
        "Quatre;Dora;MEME@virginie.example;;;",
    )
    report = import_users(session_factory, tree.system, data, client_ref="CA", chunk_size=2)
    assert list(report.frame["outcome"]) == ["created", "created", "created", "rejected"]
    assert "already appears on line 2" in report.frame.iloc[3]["reason"]


def test_sub_accounts_created_when_asked(session_factory, tree) -> None:
    data = csv_bytes("Un;Alain;;;Nouvelle agence;", "Deux;Bea;;;nouvelle  AGENCE;")
    refused = plan_for(session_factory, tree.system, data)
    assert refused.counts["reject"] == 2
    assert "pass --create-sub-accounts" in refused.frame.iloc[0]["reason"]
    plan = plan_for(session_factory, tree.client_a_admin, data, create_sub_accounts=True)
    assert plan.counts["create"] == 2
    assert "will be created" in plan.frame.iloc[0]["notes"]
    apply_plan(session_factory, tree.client_a_admin, plan)
    with session_factory() as session:
        subs = session.scalars(
            select(SubAccount).where(SubAccount.name_folded == "nouvelle agence")
        )
        (sub,) = subs.all()
    found = users_named(session_factory, "Un", "Deux")
    assert found["Un"].sub_account_id == found["Deux"].sub_account_id == sub.id
    assert count(session_factory, AuditEvent, AuditEvent.action == "subaccount.create") == 1
    again = plan_for(session_factory, tree.client_a_admin, data, create_sub_accounts=True)
    assert again.counts["unchanged"] == 2


def test_administrator_role_ignores_the_sub_account(session_factory, tree) -> None:
    plan = plan_for(session_factory, tree.system, csv_bytes("Chef;Ana;;;Siège;administrateur"))
    row = plan.frame.iloc[0]
    assert (row["action"], row["role"], row["sub_account_id"]) == ("create", "administrator", None)
    assert "ignored" in row["notes"]
    apply_plan(session_factory, tree.system, plan)
    assert users_named(session_factory, "Chef")["Chef"].sub_account_id is None


# --- scope ---------------------------------------------------------------------------------------


def test_manager_imports_only_into_their_sub_account(session_factory, tree) -> None:
    data = csv_bytes(
        "Ici;Anne;;;Siège;",
        "Ailleurs;Bob;;;Agence;",
        "Promu;Carl;;;Siège;administrateur",
        "Sans;Dan;;;;",
        "Duduche;Véronique;v.duduche@virginie.example;01 02 03 04 05;;",
    )
    plan = plan_for(session_factory, tree.manager_siege, data)
    actions = dict(zip(plan.frame["line"], plan.frame["action"], strict=True))
    reasons = dict(zip(plan.frame["line"], plan.frame["reason"], strict=True))
    assert actions == {2: "create", 3: "reject", 4: "reject", 5: "reject", 6: "reject"}
    assert "may add people only to their own sub-account, not to 'Agence'" in reasons[3]
    assert reasons[3].startswith("line 3, column 'Sous-compte': ")
    assert "may not grant the administrator role" in reasons[4]
    assert reasons[4].startswith("line 4, column 'Rôle': ")
    assert "only to their own sub-account, not without one" in reasons[5]
    assert "outside their sub-account" in reasons[6]
    report = apply_plan(session_factory, tree.manager_siege, plan)
    assert report.counts["create"] == 1
    assert users_named(session_factory, "Ailleurs", "Promu") == {}


def test_manager_may_not_create_sub_accounts(session_factory, tree) -> None:
    data = csv_bytes("Un;Alain;;;Nouvelle agence;")
    plan = plan_for(session_factory, tree.manager_siege, data, create_sub_accounts=True)
    assert "may not create sub-accounts" in plan.frame.iloc[0]["reason"]


def test_client_outside_scope_is_refused(session_factory, tree) -> None:
    with pytest.raises(AccessDeniedError, match="outside their scope"):
        plan_for(session_factory, tree.partner_b_admin, SEVEN, client_ref="CA")
    with pytest.raises(NotFoundError):
        plan_for(session_factory, tree.system, SEVEN, client_ref="NOPE")


def test_multi_client_rows_outside_scope_are_rejected(session_factory, tree) -> None:
    data = csv_bytes("CA;Un;Alain", "CB;Deux;Bea", header="Client;Nom;Prénom")
    plan = plan_for(session_factory, tree.partner_b_admin, data, client_ref=None)
    assert list(plan.frame["action"]) == ["reject", "create"]
    assert "outside their scope" in plan.frame.iloc[0]["reason"]


def test_without_client_column_a_client_is_required(session_factory, tree) -> None:
    with pytest.raises(ImportFileError, match="--client"):
        plan_for(session_factory, tree.system, SEVEN, client_ref=None)


# --- other inputs and outputs ---------------------------------------------------------------


def test_dataframe_input(session_factory, tree) -> None:
    frame = pd.DataFrame(
        {
            "Last name": ["Frame", "Pandas"],
            "First name": ["Fiona", None],
            "Mobile": [612345678, None],
            "Place orders": [True, False],
        }
    )
    plan = plan_for(session_factory, tree.system, frame)
    assert list(plan.frame["action"]) == ["create", "reject"]
    first = plan.frame.iloc[0]
    assert (first["mobile"], first["right_place_orders"]) == ("+33612345678", True)
    assert "line 3, column 'First name'" in plan.frame.iloc[1]["reason"]


def test_report_separator_encoding_and_formula_cells(session_factory, tree, tmp_path) -> None:
    data = csv_bytes(
        "=1+1;Zoé;;;;", "+Plus;Léon;;;;", header="Nom;Prénom;Mail;Tel;Sous-compte;Rôle"
    )
    report = import_users(session_factory, tree.system, data, client_ref="CA")
    path = write_report(report, tmp_path / "r.csv", sep=",", encoding="cp1252")
    text = path.read_bytes().decode("cp1252")
    assert text.startswith("Line,Client,Action,Outcome")
    assert "'=1+1,Zoé" in text and "'+Plus,Léon" in text
    default = write_report(report, tmp_path / "d.csv")
    assert default.read_bytes().startswith(b"\xef\xbb\xbfLine;Client")


def test_streaming_report_written_even_with_rejects(session_factory, tree, tmp_path) -> None:
    data = csv_bytes("Bon;Jean;;;;", ";Sansnom;;;;")
    target = tmp_path / "out" / "report.csv"
    report = import_users(
        session_factory, tree.system, data, client_ref="CA", report_path=target, keep_rows=False
    )
    assert report.counts["reject"] == 1
    lines = target.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 3 and "rejected" in lines[2]
    assert list(report.frame["outcome"]) == ["rejected"]  # only rejects kept


def test_dry_run_writes_no_user(session_factory, tree, tmp_path: Path) -> None:
    report = import_users(
        session_factory,
        tree.system,
        SEVEN,
        client_ref="CA",
        dry_run=True,
        invite=True,
        report_path=tmp_path / "dry.csv",
    )
    assert report.counts["create"] == 7 and report.counts["invite"] == 6
    assert set(report.frame["outcome"]) == {"would be created"}
    assert users_named(session_factory, "Un") == {}
    assert count(session_factory, OutboundMessage) == 0
    with session_factory() as session:
        assert session.get(ImportRun, report.run_id).dry_run is True
