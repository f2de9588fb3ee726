"""Sub-accounts (seed 002): listing with counts, creation and renaming by administrators only,
names unique per client ignoring case and accents, moving users between sub-accounts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from selfcare_ops.accounts import subaccounts
from selfcare_ops.errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError
from selfcare_ops.store.models import AuditEvent, SubAccount, User


def test_list_counts_users_per_sub_account(session_factory, tree):
    with session_factory() as session:
        frame = subaccounts.list_sub_accounts(session, tree.client_a_admin, "CA")
        assert list(frame.columns) == subaccounts.SUB_ACCOUNT_COLUMNS
        rows = frame.set_index("name")[["users", "active", "managers"]].to_dict("index")
        assert rows == {
            "Agence": {"users": 1, "active": 0, "managers": 0},
            "Siège": {"users": 3, "active": 1, "managers": 1},
        }
        assert frame.attrs["without_sub_account"] == 2  # alice (administrator) and robert
        mine = subaccounts.list_sub_accounts(session, tree.manager_siege, "CA")
        assert list(mine["name"]) == ["Siège"]
        assert "without_sub_account" not in mine.attrs
        assert len(subaccounts.list_sub_accounts(session, tree.partner_a_admin, "CA")) == 2
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            subaccounts.list_sub_accounts(session, tree.partner_b_admin, "CA")
        with pytest.raises(NotFoundError, match="ZZ"):
            subaccounts.list_sub_accounts(session, tree.system, "ZZ")
        empty = subaccounts.list_sub_accounts(session, tree.system, "CB")
        assert empty.empty and list(empty.columns) == subaccounts.SUB_ACCOUNT_COLUMNS


def test_administrators_create_and_rename_with_audit(session_factory, tree):
    with session_factory.begin() as session:
        created = subaccounts.create_sub_account(
            session, tree.client_a_admin, "CA", "  Direction   Générale "
        )
        assert created.name == "Direction Générale"
        assert "created" in created.describe()
        renamed = subaccounts.rename_sub_account(
            session, tree.client_a_admin, "CA", "direction generale", "Direction"
        )
        assert (renamed.previous_name, renamed.name) == ("Direction Générale", "Direction")
        accents = subaccounts.rename_sub_account(
            session, tree.partner_a_admin, "CA", "siege", "SIÈGE"
        )
        assert accents.name == "SIÈGE"  # only case changed: same folded name, allowed
        subaccounts.create_sub_account(session, tree.partner_b_admin, "CB", "Siège")
        subaccounts.create_sub_account(session, tree.operator_admin, "CA1", "Siège")
    with session_factory() as session:
        names = session.scalars(
            select(SubAccount.name).where(SubAccount.client_id == created_client_id(session))
        ).all()
        assert sorted(names) == ["Agence", "Direction", "SIÈGE"]
        recorded = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("subaccount.%")).order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.before, e.after) for e in recorded[:3]] == [
            ("subaccount.create", None, {"name": "Direction Générale"}),
            ("subaccount.rename", {"name": "Direction Générale"}, {"name": "Direction"}),
            ("subaccount.rename", {"name": "Siège"}, {"name": "SIÈGE"}),
        ]
        assert recorded[0].target_label == "CA/Direction Générale"
        assert recorded[0].actor_label == "alice@virginie.example"


def created_client_id(session):
    return session.scalar(select(SubAccount.client_id).where(SubAccount.name == "Agence"))


def test_names_are_unique_per_client_ignoring_case_and_accents(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(ConflictError, match="already has a sub-account named 'Siège'"):
            subaccounts.create_sub_account(session, tree.client_a_admin, "CA", " SIEGE ")
        with pytest.raises(ConflictError, match="ignoring case and accents"):
            subaccounts.rename_sub_account(session, tree.client_a_admin, "CA", "Agence", "siège")
        with pytest.raises(NotFoundError, match="Its sub-accounts: 'Agence', 'Siège'"):
            subaccounts.rename_sub_account(session, tree.client_a_admin, "CA", "Compta", "X")
        with pytest.raises(ValidationError, match="needs a name"):
            subaccounts.create_sub_account(session, tree.client_a_admin, "CA", "   ")
        with pytest.raises(ValidationError, match="at most 120 characters") as caught:
            subaccounts.create_sub_account(session, tree.client_a_admin, "CA", "x" * 121)
        assert (caught.value.limit, caught.value.actual) == (120, 121)
        with pytest.raises(ValidationError, match="control characters"):
            subaccounts.create_sub_account(session, tree.client_a_admin, "CA", "a\x00b")
        assert session.scalar(select(func.count()).select_from(SubAccount)) == 2


def test_managers_and_other_partners_may_not_create_or_rename(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(AccessDeniedError, match="only administrators may"):
            subaccounts.create_sub_account(session, tree.manager_siege, "CA", "Compta")
        with pytest.raises(AccessDeniedError, match="only administrators may"):
            subaccounts.rename_sub_account(session, tree.manager_siege, "CA", "Siège", "Paris")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            subaccounts.create_sub_account(session, tree.partner_b_admin, "CA", "Compta")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            subaccounts.rename_sub_account(session, tree.partner_a1_admin, "CA", "Siège", "Paris")
        assert sorted(session.scalars(select(SubAccount.name)).all()) == ["Agence", "Siège"]
        assert (
            session.scalar(select(func.count()).where(AuditEvent.action.like("subaccount.%"))) == 0
        )


def test_moving_users_between_sub_accounts(session_factory, tree):
    alice, marc, jp, cedric, veronique, robert = tree.client_a_users
    with session_factory.begin() as session:
        moved = subaccounts.move_user(session, tree.client_a_admin, veronique, "siege")
        assert (moved.previous_sub_account, moved.sub_account) == ("Agence", "Siège")
        out = subaccounts.move_user(session, tree.client_a_admin, jp, None)
        assert out.sub_account is None and "no sub-account" in out.describe()
        same = subaccounts.move_user(session, tree.manager_siege, cedric, "Siège")
        assert "nothing changed" in same.describe()
        with pytest.raises(AccessDeniedError, match="only to their own sub-account"):
            subaccounts.move_user(session, tree.manager_siege, cedric, "Agence")
        with pytest.raises(AccessDeniedError, match="outside their sub-account"):
            subaccounts.move_user(session, tree.manager_siege, robert, "Siège")
        with pytest.raises(ValidationError, match="administrator of CA"):
            subaccounts.move_user(session, tree.client_a_admin, alice, "Agence")
        with pytest.raises(ValidationError, match="must stay in exactly one"):
            subaccounts.move_user(session, tree.client_a_admin, marc, None)
        with pytest.raises(NotFoundError, match="Compta"):
            subaccounts.move_user(session, tree.client_a_admin, cedric, "Compta")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            subaccounts.move_user(session, tree.partner_b_admin, cedric, "Agence")
    with session_factory() as session:
        placed = dict(
            session.execute(
                select(User.login, SubAccount.name).outerjoin(
                    SubAccount, SubAccount.id == User.sub_account_id
                )
            ).all()
        )
        assert (placed[veronique], placed[jp], placed[cedric]) == ("Siège", None, "Siège")
        recorded = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.move").order_by(AuditEvent.id)
        ).all()
        assert [(e.target_label, e.before, e.after) for e in recorded] == [
            (veronique, {"sub_account": "Agence"}, {"sub_account": "Siège"}),
            (jp, {"sub_account": "Siège"}, {"sub_account": None}),
        ]


@given(st.text(max_size=140))
@settings(max_examples=300, deadline=None)
def test_clean_name_is_total_and_stable(raw):
    try:
        name = subaccounts.clean_name(raw)
    except ValidationError as error:
        assert error.field == "name" and str(error).endswith(".")
        return
    assert name == name.strip() and "  " not in name and 0 < len(name) <= 120
    assert subaccounts.clean_name(name) == name
