"""The tab container that holds every dashboard, and how a notebook opens it.

The client picked in the directory follows the analyst: opening the bulk-invitation,
branding or modules tab afterwards starts from that client. A dashboard that cannot be built
(its service missing, the database unreachable) shows its reason in its own tab instead of
breaking the others.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor
from selfcare_ops.widgets.common import error_message

log = logging.getLogger("selfcare_ops.widgets")

TABS: list[tuple[str, str, str]] = [
    ("directory", "Annuaire", "selfcare_ops.widgets.directory:DirectoryDashboard"),
    ("bulk", "Invitations en masse", "selfcare_ops.widgets.bulk:BulkInvitationDashboard"),
    ("onboarding", "Import CSV", "selfcare_ops.widgets.onboarding:OnboardingDashboard"),
    ("branding", "Personnalisation", "selfcare_ops.widgets.branding:BrandingStudio"),
    ("modules", "Modules et droits", "selfcare_ops.widgets.modules:ModulesRightsDashboard"),
]


def _load(target: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class Dashboard:
    """Every dashboard in one ``Tab``, built from a session factory and an actor."""

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor) -> None:
        self.session_factory = session_factory
        self.actor = actor
        self.boards: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        children = []
        for key, _title, target in TABS:
            try:
                board = _load(target)(session_factory, actor)
            except Exception as exc:  # one broken tab must not take the others down
                log.exception("the %s dashboard could not be built", key)
                self.errors[key] = error_message(exc)
                children.append(
                    widgets.HTML(
                        f'<div class="selfcare-unavailable" style="color:#b71c1c">'
                        f"Ce tableau de bord n'a pas pu s'ouvrir : "
                        f"{html.escape(self.errors[key])}</div>"
                    )
                )
                continue
            self.boards[key] = board
            children.append(board.widget)
        self.tab = widgets.Tab(children=children, titles=[title for _, title, _ in TABS])
        self.tab.add_class("selfcare-dashboard")
        self.header = widgets.HTML(
            f'<div class="selfcare-header">Connecté en tant que '
            f"<b>{html.escape(actor.describe())}</b></div>"
        )
        self.widget = widgets.VBox([self.header, self.tab])
        self.tab.observe(self._on_tab, names="selected_index")

    def __getitem__(self, key: str) -> Any:
        return self.boards[key]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def select(self, key: str) -> None:
        self.tab.selected_index = [k for k, _, _ in TABS].index(key)

    def _on_tab(self, change: dict) -> None:
        key = TABS[change["new"]][0] if change["new"] is not None else None
        directory = self.boards.get("directory")
        client_ref = directory.client_ref if directory is not None else None
        board = self.boards.get(key or "")
        if board is None or not client_ref:
            return
        follow = getattr(board, "follow_client", None)
        if follow is not None:
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
        return widgets.HTML(
            f'<div class="selfcare-unavailable" style="color:#b71c1c">'
            f"Le tableau de bord n'a pas pu s'ouvrir : {html.escape(error_message(exc))}</div>"
        )
