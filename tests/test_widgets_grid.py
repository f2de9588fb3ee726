"""The directory's and the modules tab's grids: a click picks, a header sort asks the database.

Each test drives the grid the way the browser does (its ``selections`` and ``_transforms``
traits, which the front end sends on a click and on a header's sort menu), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from grid_support import click_row, keys, shown

from selfcare_ops import directory
from selfcare_ops.organisations import create_organisation
from selfcare_ops.widgets import DirectoryDashboard
from selfcare_ops.widgets.modules import ModulesRightsDashboard

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


def _many_clients(session_factory, tree, count: int = 14) -> None:
    with session_factory.begin() as session:
        for number in range(count):
            create_organisation(
                session,
                tree.system,
                kind="client",
                parent_ref="PB",
                ref=f"G{number:02d}",
                name=f"Grille {count - number:02d}",  # names run against the references
            )


def test_a_click_on_a_client_row_opens_its_users_and_a_click_on_a_user_picks_them(
    session_factory, tree
):
    board = DirectoryDashboard(session_factory, tree.system)
    assert board.users_box.layout.display == "none"
    assert board.clients_grid.grid.selection_mode == "row"
    click_row(board.clients_grid, "CA")
    assert board.client_ref == "CA" and board.users_box.layout.display == ""
    assert sorted(keys(board.users_grid)) == sorted(tree.client_a_users)
    assert board.invite_button.disabled  # nobody picked yet
    bubu = tree.client_a_users[2]
    click_row(board.users_grid, bubu)
    assert board.selected["login"] == bubu
    assert "Bubu" in board.user_detail.value and not board.invite_button.disabled
    # a click in the grid's empty space (no row) keeps the picked user, as a list box does
    board.users_grid.grid.selections = []
    assert board.selected["login"] == bubu
    # another client: its users, nobody picked
    click_row(board.clients_grid, "CA1")
    assert board.client_ref == "CA1" and board.selected is None


def test_a_header_sort_reads_the_whole_list_again_in_that_order(session_factory, tree):
    _many_clients(session_factory, tree)
    board = DirectoryDashboard(session_factory, tree.system, client_page_size=10)
    assert board.client_sort.value == "name"
    board.clients_grid.click_header_sort("ref", descending=True)
    assert board.client_sort.value == "-ref"
    with session_factory() as session:
        everything = directory.search_clients(
            session, tree.system, page_size=100, sort="ref", descending=True
        )
    expected = list(everything.rows["ref"])
    assert keys(board.clients_grid) == expected[:10]  # the first page of the whole list
    assert board.clients_grid.grid._transforms == []  # the grid did not sort one page itself
    board.next_clients.click()
    assert keys(board.clients_grid) == expected[10:20]
    # the drop-down does the same, back to names from the first page
    board.client_sort.value = "name"
    assert board.clients_page_label.value.startswith("Page 1 /")
    names = [n.casefold() for n in board.client_page.rows["name"]]
    assert names == sorted(names)


def test_a_column_the_database_does_not_sort_is_refused_in_one_sentence(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system)
    before = keys(board.clients_grid)
    board.clients_grid.click_header_sort("users", descending=True)
    assert board.feedback.kind == "error"
    assert "Réf., Client, Partenaire" in board.feedback.text
    assert keys(board.clients_grid) == before and board.clients_grid.grid._transforms == []
    board.clients_grid.grid._transforms = [
        {"type": "filter", "column": "Client", "operator": "contains", "value": "Vir"}
    ]
    assert board.feedback.kind == "error" and "une seule page" in board.feedback.text
    assert board.clients_grid.grid._transforms == []
    assert keys(board.clients_grid) == before


def test_the_picked_client_stays_picked_across_pages(session_factory, tree):
    _many_clients(session_factory, tree)
    board = DirectoryDashboard(session_factory, tree.system, client_page_size=10)
    first = keys(board.clients_grid)[0]
    click_row(board.clients_grid, first)
    assert board.clients_grid.grid.selections[0]["r1"] == 0
    board.next_clients.click()
    assert board.client_ref == first and board.clients_grid.grid.selections == []
    board.prev_clients.click()
    assert board.clients_grid.grid.selections[0]["r1"] == 0  # highlighted again
    # open_client (another tab, a script) picks a client that is not on the page
    board.open_client("CA")
    assert board.client_ref == "CA" and "Virginie" in board.client_title.value


def test_user_grid_sorts_by_login_both_ways_and_pages_in_that_order(session_factory, tree):
    board = DirectoryDashboard(session_factory, tree.system, user_page_size=4)
    board.open_client("CA")
    board.users_grid.click_header_sort("login", descending=True)
    assert board.user_sort.value == "-login"
    seen = keys(board.users_grid)
    board.next_users.click()
    seen += keys(board.users_grid)
    assert seen == sorted(tree.client_a_users, reverse=True)
    board.users_grid.click_header_sort("state")
    assert "Nom, Identifiant" in board.feedback.text
    # actions follow the grid: deactivate the user picked in the sorted grid
    board.user_sort.value = "login"
    target = keys(board.users_grid)[0]
    click_row(board.users_grid, target)
    assert board.selected["login"] == target
    assert "Identifiant" in shown(board.users_grid)


def test_modules_tab_picks_a_user_in_its_grid_and_sorts_it(session_factory, tree):
    board = ModulesRightsDashboard(session_factory, tree.system)
    board.picker.choose("CA")
    assert not hasattr(board, "user_select")
    board.users_grid.click_header_sort("login", descending=True)
    assert keys(board.users_grid) == sorted(tree.client_a_users, reverse=True)
    bubu = tree.client_a_users[2]
    click_row(board.users_grid, bubu)
    assert not board.right_boxes["place_orders"].disabled
    board.right_boxes["place_orders"].value = True
    assert board.rights_feedback.kind == "success"
    assert bubu in board.rights_feedback.text
