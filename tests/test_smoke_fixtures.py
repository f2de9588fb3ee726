from sqlalchemy import func, select

from selfcare_ops.store.models import ClientUserCount, User


def test_tree_fixture_counts_users_by_status(session_factory, tree):
    with session_factory() as session:
        counts = dict(
            session.execute(
                select(ClientUserCount.status, ClientUserCount.users).where(
                    ClientUserCount.users > 0
                )
            ).all()
        )
        assert counts == {"active": 2, "not_invited": 3, "deactivated": 1}
        assert session.scalar(select(func.count()).select_from(User)) == 6
        assert tree.client_a_admin.kind == "client_admin"
        assert tree.manager_siege.kind == "manager"
