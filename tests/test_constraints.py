"""Rules that hold in the database itself, whoever writes to it."""

import pytest
from row_support import raw_user_row
from sqlalchemy import exc, insert, select, text, update

from selfcare_ops.store.models import ClientUserCount, Organisation, User, count_new_users, utcnow


def _user_row(client_id: int, login: str, **overrides):
    return {**raw_user_row(client_id, login, "Anne", "Test"), **overrides}


def _client_id(session, ref="CA"):
    return session.scalar(select(Organisation.id).where(Organisation.ref == ref))


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "sleeping"},
        {"role": "king"},
        {"civility": "Dr"},
        {"language": "de"},
        {"status": "invited"},  # invited without the date it was sent
        {"status": "active"},
        {"status": "deactivated"},
    ],
    ids=["status", "role", "civility", "language", "invited-date", "active-date", "deact-date"],
)
def test_check_constraints_refuse_bad_states(session_factory, tree, overrides):
    with session_factory() as session:
        with pytest.raises(exc.IntegrityError):
            session.execute(insert(User), [_user_row(_client_id(session), "x@y", **overrides)])
            session.flush()
        session.rollback()


def test_login_is_unique(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(exc.IntegrityError):
            session.execute(insert(User), [_user_row(_client_id(session), tree.client_a_users[0])])
        session.rollback()


def test_foreign_keys_are_enforced(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(exc.IntegrityError):
            session.execute(insert(User), [_user_row(999_999, "ghost@nowhere")])
        session.rollback()


def test_administrator_has_no_sub_account(session_factory, tree):
    with session_factory() as session:
        user = session.scalar(select(User).where(User.login == tree.client_a_users[2]))
        assert user.sub_account_id is not None
        with pytest.raises(exc.IntegrityError):
            session.execute(update(User).where(User.id == user.id).values(role="administrator"))
        session.rollback()


def test_only_the_operator_is_a_root(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(exc.IntegrityError):
            session.execute(
                text(
                    "INSERT INTO organisations (kind, ref, name, name_folded, path, created_at, "
                    "updated_at) VALUES ('client', 'ORPHAN', 'x', 'x', '/', :now, :now)"
                ),
                {"now": utcnow()},
            )
        session.rollback()


def test_counts_follow_inserts_status_changes_moves_and_deletes(session_factory, tree):
    def counts(session, ref):
        return dict(
            session.execute(
                select(ClientUserCount.status, ClientUserCount.users).where(
                    ClientUserCount.client_id == _client_id(session, ref), ClientUserCount.users > 0
                )
            ).all()
        )

    with session_factory.begin() as session:
        ca, cb = _client_id(session, "CA"), _client_id(session, "CB")
        session.add_all([User(**_user_row(cb, "n1@b")), User(**_user_row(cb, "n2@b"))])
        session.flush()  # the ORM counts the users it inserts
        assert counts(session, "CB") == {"not_invited": 2}
        session.execute(insert(User), [_user_row(cb, "n3@b")])
        count_new_users(session.connection(), {(cb, "not_invited"): 1})  # Core writers count
        assert counts(session, "CB") == {"not_invited": 3}
        session.execute(text("DELETE FROM users WHERE login = 'n3@b'"))
        session.execute(
            update(User).where(User.login == "n1@b").values(status="invited", invited_at=utcnow())
        )
        assert counts(session, "CB") == {"not_invited": 1, "invited": 1}
        session.execute(update(User).where(User.login == "n2@b").values(client_id=ca))
        assert counts(session, "CB") == {"invited": 1}
        assert counts(session, "CA")["not_invited"] == 4
        session.execute(text("DELETE FROM users WHERE login = 'n1@b'"))
        assert counts(session, "CB") == {}
