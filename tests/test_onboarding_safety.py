"""CSV onboarding that cannot hurt (SQLite and PostgreSQL): roles, safe updates, email
corrections voiding links, interrupted imports audited, and the one role-change hook."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, update

from selfcare_ops.audit import list_events
from selfcare_ops.errors import TokenError
from selfcare_ops.invitations.acceptance import inspect_token
from selfcare_ops.mail.content import message_content
from selfcare_ops.onboarding import apply_plan, build_plan, import_users
from selfcare_ops.store.models import AuditEvent, ImportRun, Invitation, OutboundMessage, User


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


DOMAIN = "virginietelecom.sewan.eu"
ALICE = f"adupont@{DOMAIN}"


def csv_bytes(header: str, *lines: str) -> bytes:
    return "\r\n".join([header, *lines, ""]).encode("cp1252")


def plan_for(session_factory, actor, data, **options):
    options.setdefault("client_ref", "CA")
    with session_factory() as session:
        return build_plan(session, actor, data, **options)


def user(session_factory, login: str) -> User:
    with session_factory() as session:
        found = session.scalar(select(User).where(User.login == login))
        assert found is not None
        session.expunge(found)
        return found


def by_line(plan, line: int) -> dict:
    rows = plan.frame[plan.frame["line"] == line]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


# --- 1. roles ---------------------------------------------------------------------------------


def test_a_manager_line_needs_a_sub_account_on_create_and_update(session_factory, tree) -> None:
    data = csv_bytes(
        "Identifiant;Nom;Prénom;Sous-compte;Rôle",
        ";Neuf;Nina;;Responsable de sous-compte",
        f"{ALICE};Dupont;Alice;;Manager",
        f"jbubu@{DOMAIN};Bubu;Jean-Pierre;-;Responsable",
        f"cpichon@{DOMAIN};Pichon;Cédric;;Responsable",
    )
    plan = plan_for(session_factory, tree.system, data)
    for line in (2, 3, 4):
        row = by_line(plan, line)
        assert row["action"] == "reject"
        assert row["reason"].startswith(f"line {line}, column 'Sous-compte': a manager")
    # Pichon is in Siège already: an empty cell keeps it, so they can become its manager.
    pichon = by_line(plan, 5)
    assert (pichon["action"], pichon["role"], pichon["changes"]) == ("update", "manager", ("role",))
    apply_plan(session_factory, tree.system, plan)
    assert user(session_factory, ALICE).role == "administrator"
    assert user(session_factory, f"jbubu@{DOMAIN}").role == "user"
    assert user(session_factory, f"cpichon@{DOMAIN}").role == "manager"
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(User.last_name == "Neuf")) == 0


def test_gestionnaire_is_the_client_administrator_and_ambiguous_with_a_sub_account(
    session_factory, tree
) -> None:
    data = csv_bytes(
        "Nom;Prénom;Sous-compte;Rôle",
        "Chef;Gaston;;Gestionnaire",
        "Sousch;Agathe;Agence;Gestionnaire",
    )
    plan = plan_for(session_factory, tree.system, data)
    chef, sousch = by_line(plan, 2), by_line(plan, 3)
    assert (chef["action"], chef["role"]) == ("create", "administrator")
    assert sousch["action"] == "reject"
    assert sousch["reason"].startswith("line 3, column 'Rôle': 'Gestionnaire' with the sub-account")
    assert "'Responsable de sous-compte' for the manager of 'Agence'" in sousch["reason"]
    apply_plan(session_factory, tree.system, plan)
    gaston = user(session_factory, f"gchef@{DOMAIN}")
    assert (gaston.role, gaston.sub_account_id) == ("administrator", None)


# --- 2. safe updates -------------------------------------------------------------------------


def test_a_login_whose_names_and_email_all_differ_is_a_conflict(session_factory, tree) -> None:
    data = csv_bytes(
        "Identifiant;Nom;Prénom;Adresse e-mail",
        f"{ALICE};Martin;Paul;paul.martin@virginie.example",
    )
    row = by_line(plan_for(session_factory, tree.system, data), 2)
    assert row["action"] == "reject"
    assert row["reason"].startswith(f"line 2, column 'Identifiant': the login {ALICE} is ")
    assert "Alice Dupont's (alice@virginie.example)" in row["reason"]
    report = import_users(session_factory, tree.system, data, client_ref="CA")
    assert report.counts["reject"] == 1
    alice = user(session_factory, ALICE)
    assert (alice.first_name, alice.last_name, alice.email) == (
        "Alice",
        "Dupont",
        "alice@virginie.example",
    )


def test_a_login_with_some_details_in_common_is_an_update(session_factory, tree) -> None:
    data = csv_bytes(
        "Identifiant;Nom;Prénom;Adresse e-mail",
        # A new name, same email: a marriage, not another person.
        f"{ALICE};Martin;Alicia;alice@virginie.example",
        # Both names differ but the email cell is empty (kept): not all three differ.
        f"jbubu@{DOMAIN};Boubou;Jean;",
        # An accent and a case corrected are the same names.
        f"cpichon@{DOMAIN};PICHON;Cedric;c.pichon@virginie.example",
    )
    plan = plan_for(session_factory, tree.system, data)
    assert list(plan.frame["action"]) == ["update"] * 3
    apply_plan(session_factory, tree.system, plan)
    assert user(session_factory, ALICE).last_name == "Martin"
    assert user(session_factory, f"jbubu@{DOMAIN}").email == "jp.bubu@virginie.example"


def test_empty_cells_keep_stored_values_and_a_dash_clears(session_factory, tree) -> None:
    header = (
        "Identifiant;Nom;Prénom;Téléphone;Fonction;Sous-compte;Gérer les droits;Passer commande"
    )
    setup = csv_bytes(header, f"jbubu@{DOMAIN};Bubu;Jean-Pierre;01 23 45 67 89;Chef;;oui;oui")
    import_users(session_factory, tree.system, setup, client_ref="CA")
    before = user(session_factory, f"jbubu@{DOMAIN}")
    assert (before.right_manage_rights, before.right_place_orders) == (True, True)

    empty = csv_bytes(header, f"jbubu@{DOMAIN};Bubu;Jean-Pierre;;;;;")
    report = import_users(session_factory, tree.system, empty, client_ref="CA")
    assert report.counts["unchanged"] == 1
    kept = user(session_factory, f"jbubu@{DOMAIN}")
    assert (kept.phone, kept.function, kept.sub_account_id) == (
        "+33123456789",
        "Chef",
        before.sub_account_id,
    )
    assert (kept.right_manage_rights, kept.right_place_orders) == (True, True)

    cleared = csv_bytes(header, f"jbubu@{DOMAIN};Bubu;Jean-Pierre;-;-;-;non;-")
    plan = plan_for(session_factory, tree.system, cleared)
    assert by_line(plan, 2)["changes"] == (
        "phone",
        "function",
        "right_manage_rights",
        "right_place_orders",
        "sub_account",
    )
    apply_plan(session_factory, tree.system, plan)
    after = user(session_factory, f"jbubu@{DOMAIN}")
    assert (after.phone, after.function, after.sub_account_id) == (None, None, None)
    assert (after.right_manage_rights, after.right_place_orders) == (False, False)


def test_a_dash_cannot_clear_a_required_field(session_factory, tree) -> None:
    data = csv_bytes("Identifiant;Nom;Prénom;Rôle", f"jbubu@{DOMAIN};-;Jean-Pierre;-")
    row = by_line(plan_for(session_factory, tree.system, data), 2)
    assert row["action"] == "reject"
    assert (
        "line 2, column 'Nom': '-' clears a value, but every user has a last name"
        in (row["reason"])
    )
    assert "column 'Rôle': '-' clears a value, but every user has a role" in row["reason"]


# --- 4. an email correction voids the link -----------------------------------------------------

TYPO = csv_bytes("Nom;Prénom;Adresse e-mail", "Lefort;Jeanne;jeanne.lefort@virginie.exmaple")
FIXED = csv_bytes(
    "Identifiant;Nom;Prénom;Adresse e-mail",
    f"jlefort@{DOMAIN};Lefort;Jeanne;jeanne.lefort@virginie.example",
)


def _token_sent_to(session_factory, email: str) -> str:
    with session_factory() as session:
        message = session.scalar(select(OutboundMessage).where(OutboundMessage.recipient == email))
        found = re.search(r"/invitation/([A-Za-z0-9_-]{43})", message_content(message).text)
        assert found is not None
        return found.group(1)


def _link_state(session_factory, token: str) -> str:
    with session_factory() as session:
        try:
            inspect_token(session, token)
        except TokenError as error:
            return error.reason
        return "valid"


def test_correcting_the_email_with_invite_voids_the_old_link_and_invites_again(
    session_factory, tree
) -> None:
    first = import_users(session_factory, tree.system, TYPO, client_ref="CA", invite=True)
    assert first.counts["invite"] == 1
    old = _token_sent_to(session_factory, "jeanne.lefort@virginie.exmaple")
    assert _link_state(session_factory, old) == "valid"

    plan = plan_for(session_factory, tree.system, FIXED, invite=True)
    row = by_line(plan, 2)
    assert (row["action"], row["changes"], row["invite"]) == ("update", ("email",), True)
    assert "the invitation link sent to the old address is voided" in row["notes"]
    report = apply_plan(session_factory, tree.system, plan)
    assert (report.counts["update"], report.counts["invite"]) == (1, 1)

    assert _link_state(session_factory, old) == "superseded"
    # The mail to the mistyped address had not left: it never will, and keeps no link.
    with session_factory() as session:
        typo = session.scalar(
            select(OutboundMessage).where(
                OutboundMessage.recipient == "jeanne.lefort@virginie.exmaple"
            )
        )
        assert (typo.status, typo.cancel_reason) == ("cancelled", "email_changed")
        assert old not in str(typo.person)
    new = _token_sent_to(session_factory, "jeanne.lefort@virginie.example")
    assert _link_state(session_factory, new) == "valid"
    assert user(session_factory, f"jlefort@{DOMAIN}").status == "invited"


def test_correcting_the_email_without_invite_leaves_the_user_not_invited(
    session_factory, tree
) -> None:
    import_users(session_factory, tree.system, TYPO, client_ref="CA", invite=True)
    old = _token_sent_to(session_factory, "jeanne.lefort@virginie.exmaple")
    with session_factory.begin() as session:  # the mail has left: the link is "sent"
        session.execute(update(Invitation).values(status="sent", sent_at=func.now()))

    report = import_users(session_factory, tree.system, FIXED, client_ref="CA")
    assert (report.counts["update"], report.counts["invite"]) == (1, 0)
    (note,) = report.frame["notes"]
    assert "voided; the user goes back to not invited" in note
    assert _link_state(session_factory, old) == "superseded"
    jeanne = user(session_factory, f"jlefort@{DOMAIN}")
    assert (jeanne.status, jeanne.invited_at, jeanne.email) == (
        "not_invited",
        None,
        "jeanne.lefort@virginie.example",
    )
    with session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "user.import.update",
                AuditEvent.target_label == f"jlefort@{DOMAIN}",
            )
        ).one()
    assert event.before["email"] == "jeanne.lefort@virginie.exmaple"
    assert (event.before["status"], event.after["status"]) == ("invited", "not_invited")
    assert event.after["links_voided"] == 1


def test_a_dry_run_says_the_link_would_be_voided_and_keeps_it(session_factory, tree) -> None:
    import_users(session_factory, tree.system, TYPO, client_ref="CA", invite=True)
    old = _token_sent_to(session_factory, "jeanne.lefort@virginie.exmaple")
    dry = import_users(session_factory, tree.system, FIXED, client_ref="CA", dry_run=True)
    assert "is voided" in dry.frame["notes"].iloc[0]
    assert _link_state(session_factory, old) == "valid"


# --- 5. interrupted imports are audited --------------------------------------------------------

SEVEN = csv_bytes(
    "Nom;Prénom;Adresse e-mail",
    *(f"Coupe{n};Anne;coupe{n}@virginie.example" for n in range(1, 8)),
)


class PowerCut(RuntimeError):
    pass


def test_a_killed_import_leaves_its_users_traced_to_an_audited_run(session_factory, tree) -> None:
    def crash(number: int, session) -> None:
        if number == 2:
            raise PowerCut("killed")

    with pytest.raises(PowerCut):
        import_users(
            session_factory,
            tree.system,
            SEVEN,
            client_ref="CA",
            invite=True,
            batch_size=3,
            chunk_size=7,
            on_batch=crash,
        )
    first = user(session_factory, f"acoupe1@{DOMAIN}")
    with session_factory() as session:
        run = session.get(ImportRun, first.import_run_id)
        assert run.finished_at is None
        assert (run.counts["rows"], run.counts["create"], run.counts["invite"]) == (3, 3, 3)
        history = list_events(session, tree.system, target=first.login)
    (event,) = history[history["action"] == "import.apply"].to_dict("records")
    assert (event["target_id"], event["organisation_ref"]) == (str(run.id), "CA")
    assert (event["after"]["create"], event["after"]["finished"]) == (3, False)

    again = import_users(session_factory, tree.system, SEVEN, client_ref="CA", invite=True)
    assert (again.counts["create"], again.counts["unchanged"]) == (4, 3)
    with session_factory() as session:
        events = {
            e.target_id: e.after
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "import.apply"))
        }
        assert session.get(ImportRun, again.run_id).finished_at is not None
    last = user(session_factory, f"acoupe7@{DOMAIN}")
    assert events[str(run.id)]["create"] == 3 and not events[str(run.id)]["finished"]
    assert events[str(again.run_id)]["create"] == 4
    assert events[str(again.run_id)]["unchanged"] == 3
    assert events[str(again.run_id)]["finished"] is True
    assert last.import_run_id == again.run_id


def test_each_batch_commit_brings_the_event_up_to_date(session_factory, tree) -> None:
    seen: list[tuple[int, int, bool]] = []

    def look(number: int, session) -> None:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "import.apply"))
        seen.append((event.after["rows"], event.after["create"], event.after["finished"]))

    plan = plan_for(session_factory, tree.system, SEVEN)
    apply_plan(session_factory, tree.system, plan, batch_size=3, on_batch=look)
    assert seen == [(3, 3, False), (6, 6, False), (7, 7, False)]
    with session_factory() as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "import.apply"))
    assert (event.after["create"], event.after["finished"]) == (7, True)
