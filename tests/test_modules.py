"""Module toggles: inheritance with source, impacts, plan then apply, scopes, audit, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from selfcare_ops.access import require_organisation_admin
from selfcare_ops.cli import main
from selfcare_ops.errors import AccessDeniedError, ValidationError
from selfcare_ops.modules import (
    CATALOGUE,
    apply_module_plan,
    change_many,
    module_key,
    modules_frame,
    parse_state,
    plan_module_change,
    resolve_modules,
    set_module,
    show_modules,
)
from selfcare_ops.organisations import create_organisation, get_organisation
from selfcare_ops.store.models import MODULE_KEYS, AuditEvent, ModuleSetting, Organisation


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


def org_id(session, ref):
    return session.scalar(select(Organisation.id).where(Organisation.ref == ref))


def states(session, ref):
    return resolve_modules(session, org_id(session, ref))


def test_catalogue_follows_the_seed():
    assert tuple(CATALOGUE) == MODULE_KEYS
    assert [m.label for m in CATALOGUE.values()] == [
        "Mes téléphones",
        "Documentations",
        "Gestion des appels",
        "Journaux d'appels",
        "Messagerie vocale",
        "Contacts",
        "Com. unifiées",
        "Mise en avant offres mobiles",
    ]
    assert CATALOGUE["offres_mobiles"].impacts == ("Tableau de bord", "Mes téléphones")
    assert all(not m.impacts for k, m in CATALOGUE.items() if k != "offres_mobiles")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("offres_mobiles", "offres_mobiles"),
        ("Mise en avant offres mobiles", "offres_mobiles"),
        ("mes telephones", "mes_telephones"),
        ("JOURNAUX D'APPELS", "journaux_d_appels"),
        ("Com. unifiées", "com_unifiees"),
    ],
)
def test_modules_are_named_by_key_or_label(text, key):
    assert module_key(text) == key


def test_unknown_module_and_state_are_refused():
    with pytest.raises(ValidationError, match="Unknown module 'fax'.*offres_mobiles"):
        module_key("fax")
    with pytest.raises(ValidationError, match="on, off or inherit"):
        parse_state("maybe")
    assert (parse_state("ON"), parse_state("off"), parse_state("inherit")) == (True, False, None)


def test_default_on_at_the_root(session_factory, tree):
    with session_factory() as session:
        for ref in ("OP", "PA", "CA", "CA1"):
            for state in states(session, ref).values():
                assert state.enabled and state.source is None and state.own is None


def test_inheritance_override_and_reset(session_factory, tree):
    system = tree.system
    with session_factory.begin() as session:
        set_module(session, system, "PA", "contacts", "off")
        set_module(session, system, "CA", "contacts", "on")
        set_module(session, system, "PA1", "messagerie_vocale", "off")
    with session_factory.begin() as session:
        ca, ca1, cb = states(session, "CA"), states(session, "CA1"), states(session, "CB")
        assert (ca["contacts"].enabled, ca["contacts"].source, ca["contacts"].own) == (
            True,
            "CA",
            True,
        )
        assert (ca1["contacts"].enabled, ca1["contacts"].source) == (False, "PA")
        assert (ca1["messagerie_vocale"].enabled, ca1["messagerie_vocale"].source) == (False, "PA1")
        assert cb["contacts"].enabled and cb["contacts"].source is None
        # a parent change does not touch a level that decided for itself
        set_module(session, system, "PA", "messagerie_vocale", "on")
        assert not states(session, "CA1")["messagerie_vocale"].enabled
        change = set_module(session, system, "CA", "contacts", "inherit")
        assert (change.own_before, change.own_after) == (True, None)
        assert (change.enabled_before, change.enabled_after, change.source_after) == (
            True,
            False,
            "PA",
        )
        assert "inherit" in change.describe()
        assert (
            session.scalar(
                select(func.count())
                .select_from(ModuleSetting)
                .where(ModuleSetting.organisation_id == org_id(session, "CA"))
            )
            == 0
        )


def test_impacted_modules_are_listed(session_factory, tree):
    with session_factory.begin() as session:
        change = set_module(session, tree.system, "PA", "Mise en avant offres mobiles", "off")
        assert change.impacts == ("Tableau de bord", "Mes téléphones")
        assert "Impacted modules: Tableau de bord, Mes téléphones." in change.describe()
        plain = set_module(session, tree.system, "PA", "contacts", "off")
        assert plain.impacts == () and "Impacted" not in plain.describe()
        frame = modules_frame(show_modules(session, tree.system, "CA"))
        row = frame.set_index("module").loc["offres_mobiles"]
        assert row["impacts"] == "Tableau de bord, Mes téléphones"
        assert not row["enabled"] and row["source"] == "PA"
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "module.set").order_by(AuditEvent.id)
        ).first()
        assert event.after == {
            "module": "offres_mobiles",
            "own": False,
            "impacts": ["Tableau de bord", "Mes téléphones"],
        }


def test_setting_the_same_state_writes_nothing(session_factory, tree):
    with session_factory.begin() as session:
        set_module(session, tree.system, "CA", "contacts", "off")
        change = set_module(session, tree.system, "CA", "contacts", "off")
        assert not change.changed
        again = set_module(session, tree.system, "CB", "contacts", "inherit")
        assert not again.changed
        count = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("module.%"))
        )
        assert count == 1


@pytest.mark.parametrize(
    ("who", "ref", "allowed"),
    [
        ("partner_a_admin", "CA", True),
        ("partner_b_admin", "CA", False),
        ("client_a_admin", "CA", True),
        ("client_a_admin", "CB", False),
        ("manager_siege", "CA", False),
        ("partner_a1_admin", "PA", False),
    ],
)
def test_who_may_toggle_what(session_factory, tree, who, ref, allowed):
    actor = getattr(tree, who)
    with session_factory.begin() as session:
        if allowed:
            assert set_module(session, actor, ref, "contacts", "off").changed
            return
        with pytest.raises(AccessDeniedError) as info:
            set_module(session, actor, ref, "contacts", "off")
        assert ref in str(info.value)


@pytest.mark.parametrize(
    ("who", "ref", "because"),
    [
        ("manager_siege", "CA", "only administrators may."),
        ("partner_b_admin", "CA", "it is outside their scope"),
    ],
)
def test_module_refusals_are_the_one_access_rule(session_factory, tree, who, ref, because):
    """Modules call ``access.require_organisation_admin``: the same check, the same sentence."""
    actor = getattr(tree, who)
    with session_factory() as session:
        org = get_organisation(session, ref)
        with pytest.raises(AccessDeniedError) as rule:
            require_organisation_admin(actor, org, "change the modules of")
        with pytest.raises(AccessDeniedError) as refused:
            set_module(session, actor, ref, "contacts", "off")
    assert str(refused.value) == str(rule.value)
    assert because in str(refused.value)


def test_plan_then_apply_is_idempotent(session_factory, tree):
    with session_factory.begin() as session:
        for ref in ("C1", "C2", "C3"):
            create_organisation(
                session, tree.system, kind="client", parent_ref="PA", ref=ref, name=f"Client {ref}"
            )
        set_module(session, tree.system, "C2", "offres_mobiles", "off")
    with session_factory.begin() as session:
        plan = plan_module_change(session, tree.partner_a_admin, "offres_mobiles", "off")
        assert list(plan.frame["organisation_ref"]) == ["C1", "C2", "C3", "CA", "CA1"]
        assert (plan.module, plan.state, plan.to_change) == ("offres_mobiles", False, 4)
        assert plan.impacts == ("Tableau de bord", "Mes téléphones")
        skipped = plan.frame.set_index("organisation_ref").loc["C2"]
        assert (skipped["action"], skipped["reason"]) == ("skip", "already off")
        assert session.scalar(select(func.count()).select_from(ModuleSetting)) == 1  # dry run
        result = apply_module_plan(session, tree.partner_a_admin, plan)
        assert result.frame["outcome"].value_counts().to_dict() == {"applied": 4, "skipped": 1}
        assert (result.applied, result.unchanged, result.skipped) == (4, 0, 1)
        assert result.impacts == plan.impacts
    with session_factory.begin() as session:
        for ref in ("C1", "C3", "CA", "CA1"):
            state = states(session, ref)["offres_mobiles"]
            assert (state.enabled, state.source) == (False, ref)
        again = apply_module_plan(session, tree.partner_a_admin, plan)
        assert set(again.frame["outcome"]) == {"unchanged", "skipped"}
        assert (again.applied, again.unchanged) == (0, 4)
        events = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "module.set")
        )
        assert events == 5  # one for C2 above, four from the plan


def test_plan_by_refs_reports_unknown_and_out_of_scope_clients(session_factory, tree):
    with session_factory.begin() as session:
        plan = plan_module_change(
            session, tree.partner_b_admin, "contacts", "off", refs=["CB", "CA", "NOPE"]
        )
        rows = plan.frame.set_index("organisation_ref")
        assert rows.loc["CB", "action"] == "set"
        assert (rows.loc["CA", "action"], rows.loc["CA", "reason"]) == (
            "skip",
            "outside your scope",
        )
        assert (rows.loc["NOPE", "action"], rows.loc["NOPE", "reason"]) == (
            "skip",
            "no such client",
        )
        # an edited plan cannot smuggle an out-of-scope client in
        edited = plan.frame.copy()
        edited.loc[edited["organisation_ref"] == "CA", "action"] = "set"
        result = apply_module_plan(session, tree.partner_b_admin, edited).frame.set_index(
            "organisation_ref"
        )
        assert result.loc["CB", "outcome"] == "applied"
        assert result.loc["CA", "outcome"] == "skipped"
        assert "outside their scope" in result.loc["CA", "detail"]
        assert states(session, "CA")["contacts"].enabled


def test_plan_under_a_partner_and_back_to_inherit(session_factory, tree, tmp_path):
    with session_factory.begin() as session:
        change_many(session, tree.system, "documentations", "off", under="PA", apply=True)
        assert not states(session, "CA")["documentations"].enabled
        assert states(session, "CB")["documentations"].enabled
        plan = plan_module_change(session, tree.system, "documentations", "inherit", under="PA")
        assert set(plan.frame["action"]) == {"reset"}
        # plans survive a round trip through a CSV file
        path = tmp_path / "plan.csv"
        plan.frame.to_csv(path, index=False)
        import pandas as pd

        reread = pd.read_csv(path)
        result = apply_module_plan(session, tree.system, reread)
        assert set(result.frame["outcome"]) == {"applied"} and result.applied == len(reread)
        assert result.impacts == ()  # documentations changes no other section
        assert states(session, "CA")["documentations"].source is None
        with pytest.raises(AccessDeniedError):
            plan_module_change(session, tree.partner_b_admin, "contacts", "off", under="PA")


def test_manager_plan_changes_nothing(session_factory, tree):
    with session_factory.begin() as session:
        plan = plan_module_change(session, tree.manager_siege, "contacts", "off")
        assert list(plan.frame["organisation_ref"]) == ["CA"]
        assert plan.frame.loc[0, "reason"] == "only administrators may change modules"
        assert plan.to_change == 0


# --- CLI -------------------------------------------------------------------------------------


def run(db_url, *args):
    result = CliRunner().invoke(main, list(args), env={"SELFCARE_OPS_DATABASE_URL": db_url})
    assert "Traceback" not in result.output
    return result


def test_cli_show_set_and_set_many(db_url, tree, tmp_path):
    result = run(db_url, "modules", "set", "PA", "offres_mobiles", "off")
    assert result.exit_code == 0, result.output
    assert "Impacted modules: Tableau de bord, Mes téléphones." in result.output
    shown = run(db_url, "modules", "show", "CA", "--json")
    assert shown.exit_code == 0
    data = {row["module"]: row for row in json.loads(shown.output)}
    assert data["offres_mobiles"] == {
        "module": "offres_mobiles",
        "label": "Mise en avant offres mobiles",
        "enabled": False,
        "source": "PA",
        "own": None,
        "impacts": ["Tableau de bord", "Mes téléphones"],
    }
    text = run(db_url, "modules", "show", "CA")
    assert "Mise en avant offres mobiles" in text.output and "from PA" in text.output
    dry = run(
        db_url,
        "modules",
        "set-many",
        "contacts",
        "off",
        "--under",
        "PA",
        "--csv",
        str(tmp_path / "plan.csv"),
    )
    assert dry.exit_code == 0 and "2 clients would change" in dry.output
    plan_text = (tmp_path / "plan.csv").read_text(encoding="utf-8-sig")
    assert plan_text.startswith("organisation_id;organisation_ref;") and ";CA1;" in plan_text
    done = run(db_url, "modules", "set-many", "contacts", "off", "--client", "CA", "--apply")
    assert done.exit_code == 0 and "1 client changed" in done.output
    mobile = ["set-many", "offres_mobiles", "off", "--client", "CA"]
    for extra, said in (([], "1 client would change"), (["--apply"], "1 client changed")):
        shown = run(db_url, "modules", *mobile, *extra)
        assert shown.exit_code == 0 and said in shown.output
        assert "Impacted modules: Tableau de bord, Mes téléphones." in shown.output
    back = run(db_url, "modules", "set", "CA", "contacts", "inherit")
    assert "off -> inherit" in back.output
    assert run(db_url, "modules", "set", "CA", "contacts", "inherit").output.startswith("Unchanged")


def test_cli_refusals_are_one_sentence(db_url, tree):
    bad = run(db_url, "modules", "set", "CA", "fax", "on")
    assert bad.exit_code == 1 and bad.output.startswith("Error: Unknown module 'fax'")
    state = run(db_url, "modules", "set", "CA", "contacts", "maybe")
    assert state.exit_code == 2
    denied = run(db_url, "--as", "admin@pb.example", "modules", "set", "CA", "contacts", "off")
    assert denied.exit_code == 1 and "outside their scope" in denied.output
    missing = run(db_url, "modules", "show", "NOPE")
    assert missing.exit_code == 1 and "NOPE" in missing.output
