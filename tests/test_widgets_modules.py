"""The modules and rights dashboard: toggles with inheritance, rights saved at once."""

from __future__ import annotations

from grid_support import click_row, keys
from sqlalchemy import select

from selfcare_ops.store.models import ModuleSetting, User
from selfcare_ops.widgets.modules import ModulesRightsDashboard

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


def _own(session_factory, org_ref: str, module: str):
    from selfcare_ops.store.models import Organisation

    with session_factory() as session:
        return session.scalar(
            select(ModuleSetting.enabled)
            .join(Organisation, Organisation.id == ModuleSetting.organisation_id)
            .where(Organisation.ref == org_ref, ModuleSetting.module == module)
        )


def _rights(session_factory, login: str) -> tuple[bool, bool, bool]:
    with session_factory() as session:
        user = session.scalars(select(User).where(User.login == login)).one()
        return user.right_manage_rights, user.right_place_orders, user.right_view_invoices


def test_module_toggles_inherit_and_show_their_source(session_factory, tree):
    partner = ModulesRightsDashboard(session_factory, tree.system)
    partner.picker.choose("PA")
    row = partner.rows["contacts"]
    assert row.toggle.value == "inherit"
    assert "activé — valeur par défaut" in row.state.value
    row.toggle.value = "off"  # saved at once
    assert partner.modules_feedback.kind == "success", partner.modules_feedback.text
    assert _own(session_factory, "PA", "contacts") is False
    assert "désactivé — défini ici" in row.state.value
    # a partner is no client: no user rights there
    assert partner.rights_box.layout.display == "none"

    board = ModulesRightsDashboard(session_factory, tree.system)
    board.picker.choose("CA")
    assert board.rows["contacts"].toggle.value == "inherit"
    assert "désactivé — hérité de PA" in board.rows["contacts"].state.value
    mobile = board.rows["offres_mobiles"]
    assert "Tableau de bord" in mobile.impacts.value and "Mes téléphones" in mobile.impacts.value
    mobile.toggle.value = "off"
    assert "Modules impactés\u00a0: Tableau de bord, Mes téléphones" in board.modules_feedback.text
    board.rows["contacts"].toggle.value = "on"
    assert "activé — défini ici" in board.rows["contacts"].state.value
    board.rows["contacts"].toggle.value = "inherit"
    assert _own(session_factory, "CA", "contacts") is None
    assert "hérité de PA" in board.rows["contacts"].state.value


def test_rights_toggles_are_saved_at_once(session_factory, tree):
    board = ModulesRightsDashboard(session_factory, tree.system)
    board.picker.choose("CA")
    assert board.rights_box.layout.display == ""
    assert all(box.disabled for box in board.right_boxes.values())
    bubu = tree.client_a_users[2]
    click_row(board.users_grid, bubu)
    assert not board.right_boxes["place_orders"].disabled
    board.right_boxes["place_orders"].value = True
    assert _rights(session_factory, bubu) == (False, True, False)
    assert "Passer commande" in board.rights_note.value and "accordé" in board.rights_note.value
    board.right_boxes["view_invoices"].value = True
    board.right_boxes["place_orders"].value = False
    assert _rights(session_factory, bubu) == (False, False, True)
    board.user_search.value = "duduche"
    assert keys(board.users_grid) == [tree.client_a_users[4]]


def test_refusals_are_readable_and_put_the_toggle_back(session_factory, tree):
    manager = ModulesRightsDashboard(session_factory, tree.manager_siege)
    manager.picker.choose("CA")
    manager.rows["contacts"].toggle.value = "off"
    assert manager.modules_feedback.kind == "error"
    assert "administrateurs" in manager.modules_feedback.text
    assert manager.rows["contacts"].toggle.value == "inherit"
    assert _own(session_factory, "CA", "contacts") is None

    admin = ModulesRightsDashboard(session_factory, tree.client_a_admin)
    admin.picker.choose("CA")
    alice = tree.client_a_users[0]
    click_row(admin.users_grid, alice)  # herself
    admin.right_boxes["manage_rights"].value = not admin.right_boxes["manage_rights"].value
    assert admin.rights_feedback.kind == "error"
    assert "ses propres droits" in admin.rights_feedback.text
    before = _rights(session_factory, alice)[0]
    assert admin.right_boxes["manage_rights"].value == before

    outsider = ModulesRightsDashboard(session_factory, tree.partner_b_admin)
    outsider.picker.choose("CA")
    assert outsider.feedback.kind == "error" and "hors de son périmètre" in outsider.feedback.text
    assert outsider.modules_box.layout.display == "none" and outsider.ref is None
