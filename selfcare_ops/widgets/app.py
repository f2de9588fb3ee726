"""The tab container that holds every dashboard, and how a notebook opens it.

Only the directory is built when the page opens; every other tab is built the first time it
is opened (its module imported then too), so the page is usable within seconds of the kernel.
The client picked in the directory follows the analyst: opening the bulk-invitation,
branding or modules tab afterwards starts from that client. After a dashboard changed the
database, every other tab reads its figures again when it is next opened. A dashboard that
cannot be built (its service missing, the database unreachable) shows its reason in its own
tab instead of breaking the others. The language switch in the header (fr / en) rebuilds the
tabs in the language chosen.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor
from selfcare_ops.errors import ConfigurationError
from selfcare_ops.i18n import LANGUAGES, _, current_language, fallback_language, set_language
from selfcare_ops.widgets.common import error_message

log = logging.getLogger("selfcare_ops.widgets")

#: (key, title code, dashboard): the title's words come from :func:`tab_title`.
TABS: list[tuple[str, str, str]] = [
    ("directory", "directory", "selfcare_ops.widgets.directory:DirectoryDashboard"),
    ("bulk", "bulk", "selfcare_ops.widgets.bulk:BulkInvitationDashboard"),
    ("onboarding", "onboarding", "selfcare_ops.widgets.onboarding:OnboardingDashboard"),
    ("branding", "branding", "selfcare_ops.widgets.branding:BrandingStudio"),
    ("modules", "modules", "selfcare_ops.widgets.modules:ModulesRightsDashboard"),
]


def tab_title(code: str) -> str:
    titles = {
        "directory": _("Directory"),
        "bulk": _("Bulk invitations"),
        "onboarding": _("CSV import"),
        "branding": _("Branding"),
        "modules": _("Modules and rights"),
    }
    return titles.get(code, code)


def _load(target: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _unavailable(text: str) -> widgets.HTML:
    return widgets.HTML(
        '<div class="selfcare-unavailable" style="color:#b71c1c">{}</div>'.format(
            html.escape(_("This dashboard could not open: {reason}").format(reason=text))
        )
    )


class Dashboard:
    """Every dashboard in one ``Tab``, built from a session factory and an actor; each tab is
    built when it is first opened."""

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor) -> None:
        self.session_factory = session_factory
        self.actor = actor
        self.boards: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        #: Tabs whose figures are older than the database's last change made here.
        self.stale: set[str] = set()
        self.tab = widgets.Tab()
        self.tab.add_class("selfcare-dashboard")
        self.header = widgets.HTML("")
        self.language = widgets.ToggleButtons(
            options=[(code.upper(), code) for code in LANGUAGES],
            value=current_language(),
            tooltip="Langue / Language",
        )
        self.language.style.button_width = "44px"
        self.language.add_class("selfcare-language")
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [self.header, self.language],
                    layout=widgets.Layout(justify_content="space-between", align_items="center"),
                ),
                self.tab,
            ]
        )
        self._lay_out()
        self.tab.observe(self._on_tab, names="selected_index")
        self.language.observe(self._on_language, names="value")

    def _lay_out(self) -> None:
        """The header and empty tabs in the current language; the directory built."""
        self.header.value = '<div class="selfcare-header">{}</div>'.format(
            _("Signed in as {actor}").format(actor=f"<b>{html.escape(self.actor.describe())}</b>")
        )
        self.tab.children = [self._placeholder() for _ in TABS]
        self.tab.titles = [tab_title(code) for _, code, _ in TABS]
        self._build(TABS[0][0])

    def _on_language(self, change: dict) -> None:
        """Speak ``change["new"]``: every tab is built again in it (the directory's client is
        kept, unsaved edits are not)."""
        client_ref = self.boards["directory"].client_ref if "directory" in self.boards else None
        set_language(change["new"])
        self.boards.clear()
        self.errors.clear()
        self.stale.clear()
        selected = self.tab.selected_index or 0
        self._lay_out()
        directory = self.boards.get("directory")
        if client_ref and directory is not None:
            try:
                directory.open_client(client_ref)
            except Exception:
                log.exception("the directory could not reopen %s", client_ref)
        if selected:
            self.tab.selected_index = 0
            self.tab.selected_index = selected

    @staticmethod
    def _placeholder() -> widgets.HTML:
        return widgets.HTML(
            '<p class="selfcare-loading"><i>{}</i></p>'.format(html.escape(_("Opening…")))
        )

    def __getitem__(self, key: str) -> Any:
        if key not in self.boards and key not in self.errors:
            self._build(key)
        return self.boards[key]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _index(self, key: str) -> int:
        return [k for k, _, _ in TABS].index(key)

    def _build(self, key: str) -> Any:
        """Build the dashboard of tab ``key`` (once) and put it in its tab."""
        if key in self.boards:
            return self.boards[key]
        if key in self.errors:
            return None
        index = self._index(key)
        target = TABS[index][2]
        try:
            board = _load(target)(self.session_factory, self.actor)
        except Exception as exc:  # one broken tab must not take the others down
            log.exception("the %s dashboard could not be built", key)
            self.errors[key] = error_message(exc)
            shown: widgets.Widget = _unavailable(self.errors[key])
            board = None
        else:
            self.boards[key] = board
            if hasattr(board, "on_change"):
                board.on_change = self._on_board_change
            shown = board.widget
        children = list(self.tab.children)
        children[index] = shown
        self.tab.children = children
        return board

    def select(self, key: str) -> None:
        index = self._index(key)
        if self.tab.selected_index == index:
            self._opened(key)
        else:
            self.tab.selected_index = index

    def _on_board_change(self, source: Any) -> None:
        """A dashboard changed the database: the others read it again when next opened."""
        self.stale = {key for key, board in self.boards.items() if board is not source}

    def _on_tab(self, change: dict) -> None:
        if change["new"] is None:
            return
        self._opened(TABS[change["new"]][0])

    def _opened(self, key: str) -> None:
        board = self._build(key)
        if board is None:
            return
        if key in self.stale:
            self.stale.discard(key)
            refresh = getattr(board, "refresh", None)
            if refresh is not None:
                try:
                    refresh()
                except Exception:  # the tab keeps its figures and says nothing worse
                    log.exception("the %s dashboard could not refresh", key)
        directory = self.boards.get("directory")
        client_ref = directory.client_ref if directory is not None else None
        follow = getattr(board, "follow_client", None)
        if follow is not None and client_ref and key != "directory":
            follow(client_ref)


def open_dashboard(
    database_url: str | None = None, actor_email: str | None = None
) -> Dashboard | widgets.HTML:
    """The dashboard on the configured database (``SELFCARE_OPS_DATABASE_URL`` or the default
    SQLite file) as the configured actor: ``actor_email``, else ``SELFCARE_OPS_ACTOR``, else
    (neither set) the system actor. An empty actor is refused like on the command line.

    When the database is not usable the result is one readable sentence, not a traceback.
    """
    from selfcare_ops.access import resolve_actor
    from selfcare_ops.config import get_settings
    from selfcare_ops.store.db import check_ready, make_engine, make_session_factory

    try:
        current_language()
    except ConfigurationError as exc:  # a bad SELFCARE_OPS_LANG: said in the fallback language
        set_language(fallback_language())
        return _unavailable(exc)
    try:
        settings = get_settings()
        engine = make_engine(database_url or settings.database_url)
        check_ready(engine)
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            actor = resolve_actor(
                session, actor_email if actor_email is not None else settings.actor
            )
        return Dashboard(session_factory, actor)
    except Exception as exc:
        log.exception("the dashboard could not be opened")
        return _unavailable(exc)


def _unavailable(error: Exception) -> widgets.HTML:
    """What the page shows instead of the dashboard: one sentence saying why."""
    sentence = _("The dashboard could not open: {reason}").format(reason=error_message(error))
    return widgets.HTML(
        f'<div class="selfcare-unavailable" style="color:#b71c1c">{html.escape(sentence)}</div>'
    )
