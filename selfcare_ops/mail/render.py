"""Invitation mails from Jinja2 templates: French (default) and English, HTML and text, branded.

A bulk invitation renders each template once per (kind, language, organisation, branding) and
fills the per-person values (names, login, link) into the result by plain substitution: the
template engine never sees them, and they are HTML-escaped on the way into the HTML part. That
keeps 100,000 invitations cheap and makes escaping of user-supplied text impossible to forget.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound

from selfcare_ops.errors import MailError
from selfcare_ops.mail.inline import InlinePart, parts_for
from selfcare_ops.store.models import LANGUAGES

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
    #: The logo carried inside the mail; ``logo_url`` is then its ``cid:`` reference.
    logo_part: InlinePart | None = field(default=None, repr=False)

    def safe(self) -> MailBranding:
        """Colours that are not ``#RRGGBB`` and logos that are not http(s) fall back.

        A ``cid:`` logo is kept only with the image it names (:attr:`logo_part`).
        """
        part = self.logo_part
        logo = (
            self.logo_url
            if self.logo_url
            and (
                self.logo_url.startswith(("https://", "http://"))
                or (part is not None and self.logo_url == f"cid:{part.content_id}")
            )
            else None
        )
        return MailBranding(
            primary_color=self.primary_color
            if _HEX.match(self.primary_color or "")
            else DEFAULT_PRIMARY,
            text_color=self.text_color if _HEX.match(self.text_color or "") else DEFAULT_TEXT,
            logo_url=logo,
            brand_name=self.brand_name or "Selfcare",
            logo_part=part if logo is not None and logo.startswith("cid:") else None,
        )


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    #: ``None`` for a message written without an HTML part.
    html: str | None
    language: str
    #: Images the HTML shows through ``cid:`` references (multipart/related).
    inline: tuple[InlinePart, ...] = field(default=(), repr=False)


def format_date(day: date, language: str) -> str:
    """'1 décembre 2026' / 'December 1, 2026' without depending on the machine's locale."""
    if language == "fr":
        number = "1er" if day.day == 1 else str(day.day)
        return f"{number} {_MONTHS_FR[day.month - 1]} {day.year}"
    return f"{day:%B} {day.day}, {day.year}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        # Package data (``selfcare_ops/mail/templates``), found the same way in a wheel.
        loader=PackageLoader(__package__ or "selfcare_ops.mail", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_UNSAFE = re.compile(f"[{_MARK}\r\n]")


def _clean(value: object) -> str:
    # No marker characters (they delimit the slots) and no line breaks (subjects are headers).
    text = "" if value is None else str(value)
    if _UNSAFE.search(text) is None:  # the usual case: one scan instead of three copies
        return text
    return text.replace(_MARK, "").replace("\r", " ").replace("\n", " ")


def person_values(
    person: Mapping[str, object], slots: tuple[str, ...] = PERSON_FIELDS
) -> dict[str, str]:
    """The slot values of one recipient, cleaned; ``full_name`` defaults to first + last.

    ``slots`` limits the work to the fields a template shows (bulk invitations).
    """
    values = {name: _clean(person.get(name)) for name in slots}
    if "full_name" in values and not values["full_name"]:
        first, last = _clean(person.get("first_name")), _clean(person.get("last_name"))
        values["full_name"] = f"{first} {last}".strip()
    return values


class MailTemplate:
    """One kind of mail rendered for one frame (language, organisation, branding, dates).

    Its :attr:`subject`, :attr:`text` and :attr:`html` still hold the slot markers, so that it
    can be stored once (:mod:`selfcare_ops.mail.content`) and filled per recipient later.
    Its :attr:`inline` images are not stored with it: the HTML names them by content hash and
    :func:`selfcare_ops.mail.content.load_templates` reads them back from the assets.
    """

    def __init__(self, kind: str, language: str, frame: Mapping[str, object]) -> None:
        if kind not in KINDS:
            raise MailError(
                f"There is no mail template of kind {kind!r}; known: {', '.join(KINDS)}."
            )
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        slots = {name: f"{_MARK}{name}{_MARK}" for name in PERSON_FIELDS}
        # The marker delimits the slots: a marker in an organisation's name (any text of the
        # frame) would shift them and put one person's value where another belongs.
        cleaned = {k: v.replace(_MARK, "") if isinstance(v, str) else v for k, v in frame.items()}
        context = {**cleaned, "person": slots, "language": language}
        branding = frame.get("branding")
        safe_branding = context["branding"] = (
            branding if isinstance(branding, MailBranding) else MailBranding()
        ).safe()
        env = environment()
        try:
            text = env.get_template(f"{kind}.{language}.txt").render(context)
            body_html = env.get_template(f"{kind}.{language}.html").render(context)
        except TemplateNotFound as exc:
            raise MailError(f"The mail template {exc.name} is missing.") from exc
        subject, _, text = text.partition("\n\n")
        logo = safe_branding.logo_part
        inline = parts_for(body_html, {logo.key: logo} if logo is not None else {})
        self._set(
            kind,
            language,
            subject.removeprefix("Subject:").strip(),
            text.lstrip("\n"),
            body_html,
            inline,
        )

    def _set(
        self,
        kind: str,
        language: str,
        subject: str,
        text: str,
        html: str | None,
        inline: tuple[InlinePart, ...] = (),
    ) -> None:
        self.kind, self.language = kind, language
        self._subject, self._text, self._html = subject, text, html
        self.inline = inline
        self._sha256: str | None = None
        self._slots: tuple[str, ...] | None = None

    @classmethod
    def stored(
        cls,
        kind: str,
        language: str,
        subject: str,
        text: str,
        html: str | None,
        inline: tuple[InlinePart, ...] = (),
    ) -> MailTemplate:
        """A template read back from the database (markers included): no rendering again.

        ``inline`` holds the images its HTML refers to, read from the assets.
        """
        template = cls.__new__(cls)
        template._set(kind, language or DEFAULT_LANGUAGE, subject, text, html, inline)
        return template

    @property
    def subject(self) -> str:
        return self._subject

    @property
    def text(self) -> str:
        return self._text

    @property
    def html(self) -> str | None:
        return self._html

    @property
    def sha256(self) -> str:
        """Identifies the content: equal templates are stored once whoever rendered them."""
        if self._sha256 is None:
            parts = [self.kind, self.language, self._subject, self._text, self._html]
            encoded = json.dumps(parts, ensure_ascii=False).encode()
            self._sha256 = hashlib.sha256(encoded).hexdigest()
        return self._sha256

    @property
    def slots(self) -> tuple[str, ...]:
        """The person fields this template shows, in :data:`PERSON_FIELDS` order."""
        if self._slots is None:
            found: set[str] = set()
            for part in (self._subject, self._text, self._html or ""):
                found.update(part.split(_MARK)[1::2])
            self._slots = tuple(name for name in PERSON_FIELDS if name in found)
        return self._slots

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
        values = person_values(person)
        return RenderedMail(
            subject=self._fill(self._subject, values, escape=False),
            text=self._fill(self._text, values, escape=False),
            html=None if self._html is None else self._fill(self._html, values, escape=True),
            language=self.language,
            inline=self.inline,
        )


def render(
    kind: str, language: str, *, frame: Mapping[str, object], person: Mapping[str, object]
) -> RenderedMail:
    """One mail, rendered and filled (for previews and single invitations)."""
    return MailTemplate(kind, language, frame).fill(person)
