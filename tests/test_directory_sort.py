"""Lists sorted in the database: every page follows the chosen order, on both backends."""

import pytest

from selfcare_ops import directory
from selfcare_ops.accounts.users import NewUser, create_user
from selfcare_ops.errors import ValidationError
from selfcare_ops.organisations import create_organisation


def _make_clients(session_factory, tree) -> None:
    with session_factory.begin() as session:
        for number in range(13):
            create_organisation(
                session,
                tree.system,
                kind="client",
                parent_ref="PB" if number % 2 else "PA",
                ref=f"S{(13 - number):02d}",  # the references run against the names
                name=f"Sorté {number:02d}",
            )


def _walk_clients(session, tree, **sort) -> list[str]:
    refs: list[str] = []
    first = directory.search_clients(session, tree.system, "sorte", page_size=5, **sort)
    for number in range(1, first.pages + 1):
        page = directory.search_clients(
            session, tree.system, "sorte", page=number, page_size=5, **sort
        )
        refs += list(page.rows["ref"])
    return refs


def test_client_pages_follow_the_sort_across_pages(session_factory, tree):
    _make_clients(session_factory, tree)
    with session_factory() as session:
        by_name = _walk_clients(session, tree)
        assert by_name == [f"S{(13 - n):02d}" for n in range(13)]
        by_ref = _walk_clients(session, tree, sort="ref")
        assert by_ref == sorted(by_ref) and len(set(by_ref)) == 13
        assert _walk_clients(session, tree, sort="ref", descending=True) == by_ref[::-1]
        assert _walk_clients(session, tree, sort="name", descending=True) == by_name[::-1]
        by_partner = directory.search_clients(
            session, tree.system, "sorte", page_size=50, sort="partner_name"
        ).rows
        names = list(by_partner["partner_name"])
        assert names == sorted(names, key=str.casefold) and len(set(names)) == 2
        # the counts still belong to their own client
        assert set(by_partner["users"]) == {0}


def test_user_keyset_pages_follow_the_sort_both_ways(session_factory, tree):
    with session_factory.begin() as session:
        for number in range(17):
            create_user(session, tree.system, "CB", NewUser(f"Zoé{number:02d}", f"Tri{number % 4}"))

    def walk(**sort) -> list[str]:
        seen, cursor = [], None
        with session_factory() as session:
            while True:
                page = directory.list_users(
                    session, tree.system, "CB", page_size=5, cursor=cursor, **sort
                )
                seen += list(page.rows["login"])
                cursor = page.next_cursor
                if cursor is None:
                    return seen

    by_login = walk(sort="login")
    assert len(by_login) == len(set(by_login)) == 17
    assert by_login == sorted(by_login)
    assert walk(sort="login", descending=True) == by_login[::-1]
    by_name = walk()
    assert walk(sort="name", descending=True) == by_name[::-1]
    assert sorted(by_name) == by_login


def test_an_unknown_sort_is_one_clear_sentence(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(ValidationError, match="sorted by name, ref, partner_name"):
            directory.search_clients(session, tree.system, sort="users")
        with pytest.raises(ValidationError, match="sorted by name, login"):
            directory.list_users(session, tree.system, "CA", sort="email")
