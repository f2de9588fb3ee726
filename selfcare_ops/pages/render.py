"""The invitee's pages as HTML: one Jinja environment, one language per page.

Shared by the web application and by ``branding preview --out x.html`` (see
:mod:`selfcare_ops.pages.home`): the Selfcare home is the same template in both, so a preview
cannot disagree with what users see. No Starlette here; the domain may import this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from selfcare_ops.i18n import LANGUAGES, translation
from selfcare_ops.support.resources import packaged

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
#: Operator colours when a stored value is not ``#RRGGBB`` (it never should be).
DEFAULT_PRIMARY = "#e2001a"
DEFAULT_TEXT = "#ffffff"
THEME_KEY = re.compile(r"^[0-9a-f]{6}-(?:[0-9a-f]{6}|none)-[0-9a-f]{6}$")


def module_labels(_: Callable[[str], str]) -> dict[str, str]:
    """The menu's words in the page's language (``_`` is that language's gettext)."""
    return {
        "mes_telephones": _("My phones"),
        "documentations": _("Documentation"),
        "gestion_des_appels": _("Call management"),
        "journaux_d_appels": _("Call logs"),
        "messagerie_vocale": _("Voicemail"),
        "contacts": _("Contacts"),
        "com_unifiees": _("Unified comms"),
    }


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Templates of ``selfcare_ops/web/templates``, HTML-escaped, strict about missing names."""
    env = Environment(
        loader=PackageLoader("selfcare_ops", "web/templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,  # templates are package data: they change with the package only
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["module_labels"] = module_labels
    return env


def render(name: str, language: str, context: Mapping[str, Any]) -> str:
    """Template ``name`` in ``language``: ``_`` and ``ngettext`` speak it, for this page only."""
    catalog = translation(language)
    return (
        environment()
        .get_template(name)
        .render({**context, "_": catalog.gettext, "ngettext": catalog.ngettext, "lang": language})
    )


def gettext_for(language: str) -> Callable[[str], str]:
    return translation(language).gettext


def page_language(*candidates: str | None) -> str:
    """The first known language of ``candidates`` (user, then organisation chain), else French."""
    for candidate in candidates:
        if candidate and candidate in LANGUAGES:
            return candidate
    return "fr"


@dataclass(frozen=True)
class Theme:
    """The colours of a client's look; ``key`` names its stylesheet (``/theme/<key>.css``)."""

    primary: str
    gradient: str | None
    text: str

    @classmethod
    def of(cls, primary: Any, gradient: Any, text: Any) -> Theme:
        def colour(value: Any, default: str | None) -> str | None:
            return str(value).lower() if value and _HEX.match(str(value)) else default

        return cls(
            colour(primary, DEFAULT_PRIMARY) or DEFAULT_PRIMARY,
            colour(gradient, None),
            colour(text, DEFAULT_TEXT) or DEFAULT_TEXT,
        )

    @classmethod
    def from_key(cls, key: str) -> Theme | None:
        """The theme a stylesheet name describes, None for a name that is not one."""
        if not THEME_KEY.match(key):
            return None
        primary, gradient, text = key.split("-")
        return cls(f"#{primary}", None if gradient == "none" else f"#{gradient}", f"#{text}")

    @property
    def key(self) -> str:
        gradient = self.gradient[1:] if self.gradient else "none"
        return f"{self.primary[1:]}-{gradient}-{self.text[1:]}"

    @property
    def css_class(self) -> str:
        return f"sc-theme-{self.key}"

    @property
    def background(self) -> str:
        if self.gradient:
            return f"linear-gradient(90deg, {self.primary}, {self.gradient})"
        return self.primary

    def css(self) -> str:
        """The rules that colour the page: bars, buttons, accents (values checked above)."""
        scope = f".{self.css_class}"
        bar = f"background:{self.background};color:{self.text};"
        return (
            f"{scope} .sc-bar,{scope} .sc-button{{{bar}}}\n"
            f"{scope} .sc-bar a{{color:{self.text};}}\n"
            f"{scope} .sc-accent{{background:{self.primary};}}\n"
            f"{scope} .sc-title{{color:{self.primary};}}\n"
        )


@lru_cache(maxsize=1)
def base_css() -> str:
    """The application's stylesheet (also inlined in standalone previews)."""
    return packaged("web", "static", "selfcare.css").read_text(encoding="utf-8")
