"""The dashboard speaks one language at a time (issue 14): built in French or in English, with
every tab opened on a client, no word of the other language shows; the switch in the header
rebuilds the tabs in the language chosen; plurals follow each language's rule."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import ipywidgets as widgets
import pytest
from grid_support import click_row

from selfcare_ops.i18n import set_language
from selfcare_ops.widgets.app import TABS, Dashboard

#: Words that would betray the other language (data of the tree and the branding preview, which
#: shows the portal as its users see it, are left out of what is read).
MARKERS = {
    "fr": [
        r"\bUsers?\b",
        r"\bSearch\b",
        r"\bChoose\b",
        r"\bSave\b",
        r"\binvitations? to send\b",
        r"\bSub-account\b",
        r"\bDeliver\b",
        r"\bPrepare\b",
        r"\bnot invited\b",
        r"\bDirectory\b",
        r"\bFind\b",
        r"\bReset\b",
        r"\bRights?\b",
        r"\bColumns?\b",
        r"\bfile\b",
    ],
    "en": [
        r"\bUtilisateur",
        r"\butilisateurs\b",
        r"\bRechercher\b",
        r"\bChoisir\b",
        r"\bEnregistrer\b",
        r"\bà envoyer\b",
        r"\bSous-compte\b",
        r"\bDistribuer\b",
        r"\bPréparer\b",
        r"\bnon invités?\b",
        r"\bAnnuaire\b",
        r"\bChercher\b",
        r"\bRéinitialiser\b",
        r"\bDroits?\b",
        r"\bfichier\b",
        r"\bPersonnalisation\b",
        r"\bStatut\b",
    ],
}


@pytest.fixture
def reset_language() -> Iterator[None]:
    """The language chosen by a test goes back to the environment's after it."""
    yield
    set_language(None)


def _texts(widget: widgets.Widget, skip: set[int]) -> Iterator[str]:
    """Every word a person reads in ``widget`` and its children (tags stripped)."""
    if id(widget) in skip:
        return
    for name in ("description", "placeholder", "tooltip"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            yield value
    if isinstance(widget, widgets.HTML | widgets.Label):
        yield html.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", " ", widget.value or ""))
    if isinstance(widget, widgets.Tab):
        yield from widget.titles
    labels = getattr(widget, "_options_labels", None)
    if labels:
        yield from labels
    for child in getattr(widget, "children", ()):
        yield from _texts(child, skip)


def _everything(session_factory, tree, language: str) -> str:
    set_language(language)
    board = Dashboard(session_factory, tree.system)
    board["directory"].search.value = "virginie"
    click_row(board["directory"].clients_grid, "CA")
    click_row(board["directory"].users_grid, tree.client_a_users[2])
    for key, _title, _target in TABS:
        board.select(key)
    click_row(board["modules"].users_grid, tree.client_a_users[2])
    previews = {id(board["branding"].preview)}
    return "\n".join(_texts(board.widget, previews))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_dashboard_speaks_one_language(session_factory, tree, language, reset_language):
    text = _everything(session_factory, tree, language)
    other = "en" if language == "fr" else "fr"
    found = [
        text[max(hit.start() - 40, 0) : hit.end() + 40]
        for marker in MARKERS[language]
        for hit in re.finditer(marker, text)
    ]
    assert not found, f"{other} words in the {language} dashboard: {found}"
    # and it does speak its own language
    own = [m for m in MARKERS[other] if re.search(m, text)]
    assert len(own) >= 5, own


def test_the_language_switch_rebuilds_the_tabs(session_factory, tree, reset_language):
    set_language("fr")
    board = Dashboard(session_factory, tree.system)
    board["directory"].search.value = "virginie"
    click_row(board["directory"].clients_grid, "CA")
    board.select("bulk")
    assert board.tab.titles[0] == "Annuaire"
    assert "2 invitations à envoyer" in board["bulk"].summary.value
    board.language.value = "en"
    assert board.tab.titles[:2] == ("Directory", "Bulk invitations")
    assert "Signed in as" in board.header.value
    assert board["directory"].client_ref == "CA"  # the analyst's client is kept
    assert board.tab.selected_index == 1
    assert "2 invitations to send" in board["bulk"].summary.value
    board.language.value = "fr"
    assert "Connecté en tant que" in board.header.value


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        ("fr", ["0 invitation à envoyer", "1 invitation à envoyer", "2 invitations à envoyer"]),
        ("en", ["0 invitations to send", "1 invitation to send", "2 invitations to send"]),
    ],
)
def test_plurals_follow_each_languages_rule(language, counts, reset_language):
    from selfcare_ops.widgets.bulk import invitations_to_send, reason_label

    set_language(language)
    assert [invitations_to_send(n) for n in (0, 1, 2)] == counts
    expected = {
        "fr": "pas d'adresse e-mail : à activer directement dans la vue utilisateur",
        "en": "no email address: activate them directly in the user view",
    }
    assert reason_label("no_email", "x").replace("\u00a0", " ") == expected[language]
