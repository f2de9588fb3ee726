"""Invitation mails from Jinja2 templates: French (default) and English, HTML and text, branded.

A bulk invitation renders each template once per (kind, language, organisation, branding) and
fills the per-person values (names, login, link) into the result by plain substitution: the
template engine never sees them, and they are HTML-escaped on the way into the HTML part. That
keeps 100,000 invitations cheap and makes escaping of user-supplied text impossible to forget.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from ..errors import MailError
from ..models import LANGUAGES

TEMPLATES_DIR = Path(__file__).with_name("templates")
DEFAULT_LANGUAGE = "fr"
KINDS = ("invitation_user", "invitation_admin", "admin_access")
#: Values that differ per recipient; templates place them with ``{{ person.<name> }}``.
PERSON_FIELDS = ("first_name", "last_name", "full_name", "login", "email", "link")
DEFAULT_PRIMARY = "#E2001A"
DEFAULT_TEXT = "#FFFFFF"
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
_MARK = "\x1e"
_MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


@dataclass(frozen=True)
class MailBranding:
    """What a mail shows of a client's personalisation (operator defaults otherwise)."""

    primary_color: str = DEFAULT_PRIMARY
    text_color: str = DEFAULT_TEXT
    logo_url: str | None = None
    brand_name: str = "Selfcare"

    def safe(self) -> MailBranding:
        """Colours that are not ``#RRGGBB`` and logos that are not http(s) fall back."""
        logo = (
            self.logo_url
            if self.logo_url and self.logo_url.startswith(("https://", "http://"))
            else None
        )
        return MailBranding(
            primary_color=self.primary_color
            if _HEX.match(self.primary_color or "")
            else DEFAULT_PRIMARY,
            text_color=self.text_color if _HEX.match(self.text_color or "") else DEFAULT_TEXT,
            logo_url=logo,
            brand_name=self.brand_name or "Selfcare",
        )


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    language: str


def format_date(day: date, language: str) -> str:
    """'1 décembre 2026' / 'December 1, 2026' without depending on the machine's locale."""
    if language == "fr":
        number = "1er" if day.day == 1 else str(day.day)
        return f"{number} {_MONTHS_FR[day.month - 1]} {day.year}"
    return f"{day:%B} {day.day}, {day.year}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _clean(value: object) -> str:
    # No marker characters (they delimit the slots) and no line breaks (subjects are headers).
    text = "" if value is None else str(value)
    return text.replace(_MARK, "").replace("\r", " ").replace("\n", " ")


class MailTemplate:
    """One kind of mail rendered for one frame (language, organisation, branding, dates)."""

    def __init__(self, kind: str, language: str, frame: Mapping[str, object]) -> None:
        if kind not in KINDS:
            raise MailError(
                f"There is no mail template of kind {kind!r}; known: {', '.join(KINDS)}."
            )
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.kind, self.language = kind, language
        slots = {name: f"{_MARK}{name}{_MARK}" for name in PERSON_FIELDS}
        context = {**frame, "person": slots, "language": language}
        branding = frame.get("branding")
        context["branding"] = (
            branding if isinstance(branding, MailBranding) else MailBranding()
        ).safe()
        env = environment()
        try:
            text = env.get_template(f"{kind}.{language}.txt").render(context)
            body_html = env.get_template(f"{kind}.{language}.html").render(context)
        except TemplateNotFound as exc:
            raise MailError(f"The mail template {exc.name} is missing.") from exc
        subject, _, text = text.partition("\n\n")
        self._subject = subject.removeprefix("Subject:").strip()
        self._text = text.lstrip("\n")
        self._html = body_html

    @staticmethod
    def _fill(template: str, values: Mapping[str, str], escape: bool) -> str:
        if _MARK not in template:
            return template
        parts = template.split(_MARK)
        # Odd positions are slot names: "a\x1efirst_name\x1eb" -> ["a", "first_name", "b"].
        for index in range(1, len(parts), 2):
            value = values.get(parts[index], "")
            parts[index] = html.escape(value, quote=True) if escape else value
        return "".join(parts)

    def fill(self, person: Mapping[str, object]) -> RenderedMail:
        """The mail for one recipient; ``person`` holds :data:`PERSON_FIELDS`."""
        values = {name: _clean(person.get(name)) for name in PERSON_FIELDS}
        if not values["full_name"]:
            values["full_name"] = f"{values['first_name']} {values['last_name']}".strip()
        return RenderedMail(
            subject=self._fill(self._subject, values, escape=False),
            text=self._fill(self._text, values, escape=False),
            html=self._fill(self._html, values, escape=True),
            language=self.language,
        )


def render(
    kind: str, language: str, *, frame: Mapping[str, object], person: Mapping[str, object]
) -> RenderedMail:
    """One mail, rendered and filled (for previews and single invitations)."""
    return MailTemplate(kind, language, frame).fill(person)
