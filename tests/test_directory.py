"""Directory queries: accent-insensitive search, counts, filters, keyset paging, scope."""

import pytest
from sqlalchemy import update

from selfcare_ops import directory
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.errors import AccessDeniedError, NotFoundError, ValidationError
from selfcare_ops.organisations import create_organisation
from selfcare_ops.store.models import User


@pytest.mark.parametrize("text", ["telecom", "TÉLÉCOM", "virginie tél", "ca"])
def test_search_is_accent_and_case_insensitive(session_factory, tree, text):
    with session_factory() as session:
        page = directory.search_clients(session, tree.system, text)
        assert "CA" in set(page.rows["ref"])


def test_search_escapes_like_wildcards(session_factory, tree):
    with session_factory() as session:
        assert directory.search_clients(session, tree.system, "%").rows.empty
        assert directory.search_clients(session, tree.system, "_").rows.empty


def test_client_counts_by_status(session_factory, tree):
    with session_factory() as session:
        rows = directory.search_clients(session, tree.system).rows.set_index("ref")
        assert list(rows.columns) == directory.CLIENT_COLUMNS[1:]
        ca = rows.loc["CA"]
        assert (ca["users"], ca["not_invited"], ca["invited"], ca["active"], ca["deactivated"]) == (
            6,
            3,
            0,
            2,
            1,
        )
        assert rows.loc["CB"]["users"] == 0
        assert rows.loc["CA"]["partner_ref"] == "PA"


def test_client_pages_cover_everything_once(session_factory, tree):
    with session_factory.begin() as session:
        for number in range(23):
            create_organisation(
                session,
                tree.system,
                kind="client",
                parent_ref="PB",
                ref=f"X{number:02d}",
                name=f"Client Éphémère {number:02d}",
            )
    with session_factory() as session:
        first = directory.search_clients(session, tree.system, "ephemere", page_size=10)
        assert (first.total, first.pages, first.label) == (23, 3, "Page 1 / 3")
        refs = []
        for number in range(1, 4):
            refs += list(
                directory.search_clients(
                    session, tree.system, "éphémère", page=number, page_size=10
                ).rows["ref"]
            )
        assert sorted(refs) == [f"X{n:02d}" for n in range(23)]
        assert directory.search_clients(session, tree.system, "éphémère", page=9).rows.empty


def test_client_search_is_scoped(session_factory, tree):
    with session_factory() as session:
        assert set(directory.search_clients(session, tree.partner_a_admin).rows["ref"]) == {
            "CA",
            "CA1",
        }
        assert set(directory.search_clients(session, tree.client_a_admin).rows["ref"]) == {"CA"}
        assert set(
            directory.search_clients(session, tree.system, partner_ref="PA").rows["ref"]
        ) == {"CA", "CA1"}
        with pytest.raises(AccessDeniedError):
            directory.search_clients(session, tree.partner_b_admin, partner_ref="PA")


def test_user_listing_flags_deactivated_and_filters(session_factory, tree):
    with session_factory() as session:
        page = directory.list_users(session, tree.system, "CA")
        assert page.total == 6 and page.next_cursor is None
        assert list(page.rows.columns) == directory.USER_COLUMNS
        flagged = page.rows.set_index("last_name")["deactivated"]
        assert flagged["Convenant"] and not flagged["Bubu"]
        assert list(page.rows["last_name"]) == sorted(page.rows["last_name"])
        no_email = directory.list_users(session, tree.system, "CA", has_email=False)
        assert list(no_email.rows["last_name"]) == ["Pichon"] and no_email.total == 1
        active = directory.list_users(session, tree.system, "CA", status="active")
        assert set(active.rows["last_name"]) == {"Dupont", "Lefèvre"} and active.total == 2
        siege = directory.list_users(session, tree.system, "CA", sub_account="siege")
        assert set(siege.rows["last_name"]) == {"Lefèvre", "Bubu", "Pichon"}
        found = directory.list_users(session, tree.system, "CA", search="cedric")
        assert list(found.rows["last_name"]) == ["Pichon"]
        found = directory.list_users(session, tree.system, "CA", search="VIRGINIE.EXAMPLE")
        assert len(found.rows) == 5


def test_keyset_pages_walk_all_users_once(session_factory, tree):
    with session_factory.begin() as session:
        for number in range(37):
            create_user(session, tree.system, "CB", NewUser("Même", f"Nom{number % 5}"))
        session.execute(
            update(User)
            .where(User.login.like("mnom1%"))
            .values(
                status="deactivated", deactivated_at=User.created_at, activated_at=User.created_at
            )
        )
    with session_factory() as session:
        seen, cursor, pages = [], None, 0
        while True:
            page = directory.list_users(session, tree.system, "CB", page_size=10, cursor=cursor)
            seen += list(page.rows["login"])
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 4 and len(seen) == len(set(seen)) == 37
        assert len(directory.iter_users(session, tree.system, "CB", page_size=7)) == 37


def test_manager_lists_only_their_sub_account(session_factory, tree):
    with session_factory() as session:
        page = directory.list_users(session, tree.manager_siege, "CA")
        assert set(page.rows["last_name"]) == {"Lefèvre", "Bubu", "Pichon"}
        assert page.total == 3
        with pytest.raises(AccessDeniedError):
            directory.list_users(session, tree.manager_siege, "CA", sub_account="Agence")
        with pytest.raises(AccessDeniedError):
            directory.list_users(session, tree.partner_b_admin, "CA")


def test_bad_arguments_are_explained(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(NotFoundError, match="No client is known as 'NOPE'"):
            directory.list_users(session, tree.system, "NOPE")
        with pytest.raises(ValidationError, match="status"):
            directory.list_users(session, tree.system, "CA", status="asleep")
        with pytest.raises(ValidationError, match="cursor"):
            directory.list_users(session, tree.system, "CA", cursor="garbage")
        with pytest.raises(ValidationError, match="page size"):
            directory.search_clients(session, tree.system, page_size=0)
        with pytest.raises(ValidationError, match="sub-account"):
            directory.list_users(session, tree.system, "CA", sub_account="Mars")
