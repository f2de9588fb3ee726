"""Every scope refusal of DOMAIN.md and seed 002, and what each actor may see."""

import pytest
from sqlalchemy import select

from selfcare_ops import access
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.errors import AccessDeniedError, NotFoundError
from selfcare_ops.organisations import create_administrator, create_organisation
from selfcare_ops.store.models import Organisation, SubAccount, User


def _org(session, ref):
    return session.scalar(select(Organisation).where(Organisation.ref == ref))


def _user(session, login):
    return session.scalar(select(User).where(User.login == login))


@pytest.mark.parametrize(
    ("actor_name", "visible"),
    [
        ("system", {"OP", "PA", "PA1", "PB", "CA", "CA1", "CB"}),
        ("operator_admin", {"OP", "PA", "PA1", "PB", "CA", "CA1", "CB"}),
        ("partner_a_admin", {"PA", "PA1", "CA", "CA1"}),
        ("partner_a1_admin", {"PA1", "CA1"}),
        ("partner_b_admin", {"PB", "CB"}),
        ("client_a_admin", {"CA"}),
        ("manager_siege", {"CA"}),
    ],
)
def test_each_actor_sees_its_subtree_only(session_factory, tree, actor_name, visible):
    actor = getattr(tree, actor_name)
    with session_factory() as session:
        scope = access.organisation_scope(actor)
        seen = set(session.scalars(select(Organisation.ref).where(scope)))
        assert seen == visible
        for org in session.scalars(select(Organisation)):
            assert access.can_see_organisation(actor, org) == (org.ref in visible)


def test_partner_admin_cannot_change_another_partners_client(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            access.require_organisation(tree.partner_b_admin, _org(session, "CA"))
        with pytest.raises(AccessDeniedError):
            create_organisation(
                session,
                tree.partner_b_admin,
                kind="client",
                parent_ref="PA",
                ref="CX",
                name="Intrus",
            )


def test_nested_partner_admin_cannot_reach_up(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(AccessDeniedError):
            access.require_organisation(tree.partner_a1_admin, _org(session, "PA"))
        with pytest.raises(AccessDeniedError):
            create_administrator(session, tree.partner_a1_admin, "PA", "x@x.example", "X")


def test_manager_sees_only_their_sub_account(session_factory, tree):
    manager = tree.manager_siege
    with session_factory() as session:
        alice, marc, bubu, pichon, duduche, convenant = (
            _user(session, login) for login in tree.client_a_users
        )
        assert access.can_see_user(manager, bubu) and access.can_see_user(manager, pichon)
        assert access.can_see_user(manager, marc)
        for other in (alice, duduche, convenant):
            assert not access.can_see_user(manager, other)
            with pytest.raises(AccessDeniedError, match="outside their sub-account"):
                access.require_user(manager, other)
        visible = set(session.scalars(select(User.login).where(access.user_scope(manager))))
        assert visible == {marc.login, bubu.login, pichon.login}


def test_manager_adds_only_non_administrators_to_their_sub_account(session_factory, tree):
    manager = tree.manager_siege
    with session_factory() as session:
        with pytest.raises(AccessDeniedError, match="administrator role"):
            create_user(session, manager, "CA", NewUser("Eve", "Admin", role="administrator"))
        with pytest.raises(AccessDeniedError, match="own sub-account"):
            create_user(session, manager, "CA", NewUser("Eve", "Ailleurs", sub_account="Agence"))
        # Without a sub-account, what a manager creates goes into their own one.
        defaulted = create_user(session, manager, "CA", NewUser("Eve", "Nulle", role="manager"))
        assert defaulted.sub_account_id == manager.sub_account_id
        created = create_user(
            session, manager, "CA", NewUser("Eve", "Siège", role="manager", sub_account="Siège")
        )
        assert created.sub_account_id == manager.sub_account_id
        with pytest.raises(AccessDeniedError):
            create_user(session, manager, "CB", NewUser("Eve", "Beta", sub_account="Siège"))
        session.rollback()


def test_client_admin_cannot_touch_another_client(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(AccessDeniedError):
            create_user(session, tree.client_a_admin, "CB", NewUser("Eve", "Beta"))
        with pytest.raises(AccessDeniedError):
            access.require_organisation(tree.client_a_admin, _org(session, "PA"))


def test_sub_account_of_another_client_is_refused(session_factory, tree):
    with session_factory() as session:
        siege = session.scalar(select(SubAccount).where(SubAccount.name == "Siège"))
        with pytest.raises(AccessDeniedError, match="does not belong"):
            access.require_assignable(tree.system, _org(session, "CB"), "user", siege)


def test_resolve_actor_by_email(session_factory, tree):
    with session_factory() as session:
        assert access.resolve_actor(session, None).kind == "system"
        assert access.resolve_actor(session, "ADMIN@pa.example").kind == "partner_admin"
        assert access.resolve_actor(session, "marc@virginie.example").kind == "manager"
        assert access.resolve_actor(session, "alice@virginie.example").kind == "client_admin"
        with pytest.raises(NotFoundError):
            access.resolve_actor(session, "nobody@nowhere.example")
        with pytest.raises(NotFoundError):  # a plain user is not an actor
            access.resolve_actor(session, "jp.bubu@virginie.example")


def test_inactive_client_side_actor_is_refused(session_factory, tree):
    with session_factory() as session:
        convenant = _user(session, tree.client_a_users[5])
        convenant.role = "administrator"
        convenant.sub_account_id = None
        with pytest.raises(AccessDeniedError, match="deactivated"):
            access.actor_for_user(convenant)
        session.rollback()
