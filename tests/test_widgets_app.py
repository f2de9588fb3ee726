"""The tab container and the notebook's entry point."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import ipywidgets as widgets

from selfcare_ops.widgets import Dashboard, open_dashboard
from selfcare_ops.widgets.app import TABS

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "dashboard.ipynb"


def test_every_tab_is_built_and_the_client_follows(session_factory, tree):
    board = Dashboard(session_factory, tree.system)
    assert board.errors == {}
    assert set(board.boards) == {key for key, _, _ in TABS}
    assert board.tab.titles == tuple(title for _, title, _ in TABS)
    assert "system actor" in board.header.value

    board["directory"].search.value = "virginie"
    board["directory"].client_select.value = "CA"
    board.select("bulk")
    assert board["bulk"].client.value == "CA"
    assert "2 invitations à envoyer" in board["bulk"].summary.value
    board.select("branding")
    assert board["branding"].ref == "CA"
    board.select("modules")
    assert board["modules"].ref == "CA"
    board.select("onboarding")
    assert board["onboarding"].client.value == "CA"
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
    assert "Virginie" not in board["directory"].clients_html.value


def test_open_dashboard_explains_an_unusable_database(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    shown = open_dashboard()
    assert isinstance(shown, widgets.HTML)
    assert "not initialised" in shown.value and "Traceback" not in shown.value
    monkeypatch.setenv("SELFCARE_OPS_ACTOR", "nobody@example")
    monkeypatch.setenv("SELFCARE_OPS_DATABASE_URL", "mysql://x")
    assert "not supported" in open_dashboard().value


def test_notebook_opens_the_dashboard_and_is_valid_python():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for source in code:
        ast.parse(source)
    assert any("open_dashboard()" in source for source in code)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert all(not cell.get("outputs") for cell in notebook["cells"] if "outputs" in cell)
