"""``orgs create|rename|set-language``: who may, what the tree and the audit trail hold after,
and the language the next invitation mail is written in."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops.cli import main
from selfcare_ops.store.models import AuditEvent, Organisation, OutboundMessage

ALICE = "alice@virginie.example"  # client administrator of CA
MARC = "marc@virginie.example"  # manager of the sub-account Siège
PA_ADMIN = "admin@pa.example"  # partner PA (PA1, CA and CA1 below it)
PB_ADMIN = "admin@pb.example"
JP = "jbubu@virginietelecom.sewan.eu"


def run(db_url, *args, actor=None):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _org(session_factory, ref):
    with session_factory() as session:
        return session.scalar(select(Organisation).where(Organisation.ref == ref))


def _events(session_factory, action):
    with session_factory() as session:
        return session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).all()


def test_partner_admin_creates_a_client_in_their_subtree(db_url, tree, session_factory):
    created = run(
        db_url,
        "orgs",
        "create",
        "client",
        "C0042",
        "--name",
        "  Boulangerie   Dupain ",
        "--parent",
        "PA1",
        "--login-domain",
        "Dupain.Sewan.EU",
        "--json",
        actor=PA_ADMIN,
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout) == {
        "kind": "client",
        "ref": "C0042",
        "name": "Boulangerie Dupain",
        "parent": "PA1",
        "language": None,
        "effective_language": "fr",
        "login_domain": "dupain.sewan.eu",
    }
    org = _org(session_factory, "C0042")
    parent = _org(session_factory, "PA1")
    assert org.path == f"{parent.path}{org.id}/" and org.name_folded == "boulangerie dupain"
    (event,) = [
        e for e in _events(session_factory, "organisation.create") if e.target_label == "C0042"
    ]
    assert event.actor_label == PA_ADMIN and event.after["name"] == "Boulangerie Dupain"
    listed = run(db_url, "clients", "list", "--search", "dupain", "--json", actor=PA_ADMIN)
    assert [c["ref"] for c in json.loads(listed.stdout)] == ["C0042"]


def test_system_creates_a_partner_then_a_client_that_speaks_its_language(db_url, tree):
    partner = run(
        db_url, "orgs", "create", "partner", "P-EN", "--name", "English Reseller", "--parent", "OP",
        "--language", "en",
    )  # fmt: skip
    assert partner.exit_code == 0, partner.output
    assert partner.stdout == (
        "Created the partner P-EN (English Reseller) under OP; mails of P-EN are in English.\n"
    )
    client = run(db_url, "orgs", "create", "client", "C-EN", "--name", "Acme", "--parent", "P-EN")
    assert client.exit_code == 0, client.output
    assert "mails of C-EN are in English, inherited from P-EN." in client.stdout


@pytest.mark.parametrize(
    ("actor", "parent", "message"),
    [
        (PB_ADMIN, "PA", "may not add a client under partner PA (Partenaire Alpha)"),
        (PA_ADMIN, "OP", "may not add a client under operator OP"),
        (ALICE, "PA", "client administrator alice@virginie.example may not create partners"),
        (MARC, "PA", "sub-account manager marc@virginie.example may not create partners"),
    ],
)
def test_creation_outside_ones_scope_is_refused(
    db_url, tree, session_factory, actor, parent, message
):
    refused = run(
        db_url, "orgs", "create", "client", "C0099", "--name", "X", "--parent", parent, actor=actor
    )
    assert refused.exit_code == 1
    assert message in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert _org(session_factory, "C0099") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["client", "CB", "--name", "Twice", "--parent", "PB"],
            "The reference 'CB' is already used",
        ),
        (["client", "C 01", "--name", "X", "--parent", "PB"], "The reference 'C 01' is not valid"),
        (["client", "C01", "--name", "  ", "--parent", "PB"], "An organisation needs a name."),
        (["client", "C01", "--name", "X", "--parent", "CB"], "A client cannot be placed under"),
        (
            ["partner", "P9", "--name", "X", "--parent", "NOPE"],
            "No organisation is known as 'NOPE'",
        ),
        (
            ["client", "C01", "--name", "X", "--parent", "PB", "--login-domain", "pas un domaine"],
            "The login domain 'pas un domaine' is not a domain name",
        ),
    ],
)
def test_bad_creations_are_one_sentence(db_url, tree, session_factory, args, message):
    refused = run(db_url, "orgs", "create", *args, actor=PB_ADMIN)
    assert refused.exit_code == 1
    assert message in refused.stderr and "Traceback" not in refused.output
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 7


def test_rename_is_audited_and_scoped(db_url, tree, session_factory):
    renamed = run(db_url, "orgs", "rename", "CA", "Virginie Télécom SAS", actor=PA_ADMIN)
    assert renamed.exit_code == 0, renamed.output
    assert renamed.stdout == (
        "The client CA is now named Virginie Télécom SAS (was Virginie Télécom).\n"
    )
    (event,) = _events(session_factory, "organisation.rename")
    assert (event.before, event.after) == (
        {"name": "Virginie Télécom"},
        {"name": "Virginie Télécom SAS"},
    )
    found = run(db_url, "clients", "list", "--search", "telecom sas", "--json")
    assert [c["name"] for c in json.loads(found.stdout)] == ["Virginie Télécom SAS"]
    again = run(db_url, "orgs", "rename", "CA", "Virginie Télécom SAS")
    assert "already named" in again.stdout
    assert len(_events(session_factory, "organisation.rename")) == 1
    for actor, message in [
        (PB_ADMIN, "may not rename client CA"),
        (MARC, "only administrators may"),
    ]:
        refused = run(db_url, "orgs", "rename", "CA", "Pirate", actor=actor)
        assert refused.exit_code == 1 and message in refused.stderr
    assert _org(session_factory, "CA").name == "Virginie Télécom SAS"


def test_set_language_changes_the_next_mail_and_inherit_gives_it_back(
    db_url, tree, session_factory
):
    english = run(db_url, "orgs", "set-language", "PA", "en", actor=PA_ADMIN)
    assert english.exit_code == 0, english.output
    assert english.stdout == "mails of PA are in English.\n"
    below = run(db_url, "orgs", "set-language", "CA", "inherit")
    assert below.stdout == "Nothing changed: mails of CA are in English, inherited from PA.\n"
    assert run(db_url, "invite", "user", JP).exit_code == 0
    back = run(db_url, "orgs", "set-language", "PA", "inherit", actor=PA_ADMIN)
    assert back.stdout == "mails of PA are in French, inherited from OP.\n"
    assert run(db_url, "invite", "resend", JP).exit_code == 0
    with session_factory() as session:
        languages = session.scalars(
            select(OutboundMessage.language).order_by(OutboundMessage.id)
        ).all()
    assert languages == ["en", "fr"]
    events = _events(session_factory, "organisation.language")
    assert [(e.before, e.after) for e in events] == [
        ({"language": None}, {"language": "en"}),
        ({"language": "en"}, {"language": None}),
    ]


def test_set_language_refusals(db_url, tree, session_factory):
    root = run(db_url, "orgs", "set-language", "OP", "inherit")
    assert root.exit_code == 1 and "root of the tree" in root.stderr
    for actor, message in [(MARC, "only administrators may"), (PB_ADMIN, "outside their scope")]:
        refused = run(db_url, "orgs", "set-language", "CA", "en", actor=actor)
        assert refused.exit_code == 1 and message in refused.stderr
    wrong = run(db_url, "orgs", "set-language", "CA", "de")
    assert wrong.exit_code == 2
    assert _org(session_factory, "CA").language is None
    assert _events(session_factory, "organisation.language") == []
