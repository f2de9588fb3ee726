"""The tab container and the notebook's entry point."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ipywidgets as widgets
from grid_support import click_row, shown

from selfcare_ops.widgets import Dashboard, open_dashboard
from selfcare_ops.widgets.app import TABS, tab_title

TEST_LANGUAGE = "fr"  # the dashboard as French analysts read it


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "dashboard.ipynb"


def test_every_tab_is_built_and_the_client_follows(session_factory, tree):
    board = Dashboard(session_factory, tree.system)
    assert board.errors == {}
    assert set(board.boards) == {"directory"}  # the others are built when first opened
    assert board.tab.titles == tuple(tab_title(code) for _, code, _ in TABS)
    assert "acteur système" in board.header.value

    board["directory"].search.value = "virginie"
    click_row(board["directory"].clients_grid, "CA")
    board.select("bulk")
    assert board["bulk"].client.value == "CA"
    assert "2 invitations à envoyer" in board["bulk"].summary.value
    board.select("branding")
    assert board["branding"].ref == "CA"
    board.select("modules")
    assert board["modules"].ref == "CA"
    board.select("onboarding")
    assert board["onboarding"].client.value == "CA"
    assert set(board.boards) == {key for key, _, _ in TABS}
    assert board.tab.titles == tuple(tab_title(code) for _, code, _ in TABS)
    bundle = board._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_open_dashboard_uses_the_configured_database(db_url, tree, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    board = open_dashboard()
    assert isinstance(board, Dashboard), getattr(board, "value", board)
    assert board.actor.kind == "system"
    monkeypatch.setenv("SELFCARE_OPS_ACTOR", "admin@pb.example")
    board = open_dashboard()
    assert board.actor.kind == "partner_admin"
    assert "Virginie" not in shown(board["directory"].clients_grid)


def test_open_dashboard_explains_an_unusable_database(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    shown = open_dashboard()
    assert isinstance(shown, widgets.HTML)
    assert "pas initialisée" in shown.value and "Traceback" not in shown.value
    monkeypatch.setenv("SELFCARE_OPS_ACTOR", "nobody@example")
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", "mysql://x")
    assert "pas prise en charge" in open_dashboard().value


def test_open_dashboard_explains_a_language_we_lack(db_url, tree, monkeypatch):
    """SELFCARE_OPS_LANG=de: one sentence in the fallback language (the locale's, else French),
    not a traceback from the first translated label."""
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    monkeypatch.setenv("SELFCARE_OPS_LANG", "de")
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
    shown = open_dashboard()
    assert isinstance(shown, widgets.HTML)
    assert "Le tableau de bord" in shown.value and "SELFCARE_OPS_LANG doit" in shown.value
    assert "&#x27;de&#x27;" in shown.value and "Traceback" not in shown.value


def test_notebook_opens_the_dashboard_and_is_valid_python():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for source in code:
        ast.parse(source)
    assert any("open_dashboard()" in source for source in code)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert all(not cell.get("outputs") for cell in notebook["cells"] if "outputs" in cell)


def test_notebook_runs_in_a_kernel_and_displays_the_tabs(db_url, tree, monkeypatch, tmp_path):
    """What JupyterLab and Voila do: run the notebook's cells in a real kernel."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", db_url)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    state = (
        notebook.metadata.get("widgets", {})
        .get("application/vnd.jupyter.widget-state+json", {})
        .get("state", {})
    )
    titles = [m["state"].get("titles") for m in state.values() if m["model_name"] == "TabModel"]
    assert titles == [
        ["Annuaire", "Invitations en masse", "Import CSV", "Personnalisation", "Modules et droits"]
    ]


def test_a_broken_tab_shows_its_reason_and_spares_the_others(session_factory, tree, monkeypatch):
    from selfcare_ops.widgets import app

    broken = [*app.TABS[:1], ("bulk", "Invitations en masse", "selfcare_ops.widgets.nowhere:X")]
    monkeypatch.setattr(app, "TABS", broken)
    board = Dashboard(session_factory, tree.system)
    board.select("bulk")
    assert set(board.boards) == {"directory"}
    assert "ModuleNotFoundError" in board.errors["bulk"]
    assert "n&#x27;a pas pu s&#x27;ouvrir" in board.tab.children[1].value
    assert "Traceback" not in board.tab.children[1].value
