"""Rendering a page for one request: language, branding of the card, the HTML response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse

from selfcare_ops.i18n import LANGUAGES
from selfcare_ops.mail.render import format_date
from selfcare_ops.organisations import effective_language
from selfcare_ops.pages.render import Theme, gettext_for, render
from selfcare_ops.store.models import Organisation, User

PAGE_DEFAULTS: dict[str, Any] = {
    "theme": None,
    "banner_text": None,
    "logo_src": None,
    "organisation_name": None,
    "new_link_action": None,
    "csrf": "",
    "home_link": None,
    "lines": [],
}


def browser_language(request: Request) -> str:
    """The first of our languages the browser asks for (pages about an unknown link)."""
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"


def person_language(session: Session, organisation_id: int, user: User | None) -> str:
    """The user's language, else the first one set up the tree (client, partners, operator)."""
    if user is not None and user.language in LANGUAGES:
        return str(user.language)
    org = session.get(Organisation, organisation_id)
    return effective_language(session, org)[0] if org is not None else "fr"


@dataclass(frozen=True)
class Look:
    """How a card page is branded: the client's colours, logo and name."""

    theme: Theme | None = None
    logo_src: str | None = None
    organisation_name: str | None = None

    def context(self) -> dict[str, Any]:
        return {
            "theme": self.theme,
            "logo_src": self.logo_src,
            "organisation_name": self.organisation_name,
        }


def page(template: str, language: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(render(template, language, {**PAGE_DEFAULTS, **context}), status)


def message_page(
    language: str,
    title: Callable[[Callable[[str], str]], str],
    lines: Callable[[Callable[[str], str]], list[str]],
    *,
    status: int,
    look: Look | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page that says what happened and what to do, in ``language``."""
    _ = gettext_for(language)
    return page(
        "message.html",
        language,
        {**(look or Look()).context(), "title": title(_), "lines": lines(_), **context},
        status,
    )


def day(moment: datetime | None, language: str) -> str:
    if moment is None:
        return "?"
    return format_date(moment.date(), language)


def mask_email(email: str) -> str:
    """``jean.dupont@example.com`` -> ``j***@example.com``: enough to recognise one's own."""
    local, _, domain = (email or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
