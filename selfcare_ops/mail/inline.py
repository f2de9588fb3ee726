"""Images carried inside a mail (``cid:`` parts of a multipart/related HTML body).

A branded mail shows its logo with no portal reachable when the image travels with it. The
image is not copied into each message nor into each stored template: the template's HTML names
it by content hash (``<img src="cid:logo-<sha256[:24]>@selfcare">``), the bytes stay once in
the ``assets`` table, and :func:`load_inline_parts` reads them back when the template is loaded
for delivery. The Content-ID is therefore the same for every mail showing the same image; 96 bits
of the hash keep its header line short (under 78 characters) and two images apart.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from selfcare_ops.store.models import Asset

CRLF = "\r\n"
#: ``cid:`` references as the HTML templates write them; text escaped by Jinja2 cannot
#: produce one (the quote before ``cid:`` would be ``&#34;``).
_REFERENCE = re.compile(r'src="cid:logo-([0-9a-f]{24})@selfcare"')
#: Hex digits of the content hash in a Content-ID.
KEY_LENGTH = 24
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
ASSETS = Asset.__table__


def logo_content_id(sha256: str) -> str:
    """The Content-ID (without angle brackets) of the image with this content hash."""
    return f"logo-{sha256[:KEY_LENGTH]}@selfcare"


@dataclass(frozen=True)
class InlinePart:
    """One image of a mail: its Content-ID, type and bytes."""

    sha256: str
    mime: str
    data: bytes = field(repr=False)

    @property
    def key(self) -> str:
        """The part of the content hash the Content-ID carries."""
        return self.sha256[:KEY_LENGTH]

    @property
    def content_id(self) -> str:
        return logo_content_id(self.sha256)

    @property
    def filename(self) -> str:
        return f"logo.{_EXTENSIONS.get(self.mime, 'bin')}"

    @cached_property
    def mime_part(self) -> str:
        """The part's headers and base64 body (CRLF line ends), encoded once per image."""
        encoded = base64.encodebytes(self.data).decode("ascii").replace("\n", CRLF)
        return (
            f"Content-Type: {self.mime}{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}"
            f"Content-ID: <{self.content_id}>{CRLF}"
            f'Content-Disposition: inline; filename="{self.filename}"{CRLF}'
            f"{CRLF}{encoded}"
        )


def referenced(html: str | None) -> tuple[str, ...]:
    """The keys (:attr:`InlinePart.key`) of the images an HTML body shows through ``cid:``."""
    if not html or "cid:" not in html:
        return ()
    return tuple(dict.fromkeys(_REFERENCE.findall(html)))


def load_inline_parts(
    connection: Session | Connection, keys: Iterable[str]
) -> dict[str, InlinePart]:
    """The stored images of these keys, by key (one query); unknown keys are left out."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = connection.execute(
        select(ASSETS.c.sha256, ASSETS.c.mime, ASSETS.c.content)
        .where(or_(*(ASSETS.c.sha256.startswith(key) for key in wanted)))
        .order_by(ASSETS.c.id)
    ).all()
    found: dict[str, InlinePart] = {}
    for row in rows:
        part = InlinePart(row.sha256, row.mime, bytes(row.content))
        found.setdefault(part.key, part)
    return found


def parts_for(html: str | None, images: Mapping[str, InlinePart]) -> tuple[InlinePart, ...]:
    """The parts ``html`` refers to, taken from ``images`` by key (missing ones left out)."""
    return tuple(images[key] for key in referenced(html) if key in images)


def from_asset(asset: Any, content: bytes) -> InlinePart:
    """An inline part from an asset's identity (``sha256``, ``mime``) and its bytes."""
    return InlinePart(str(asset.sha256), str(asset.mime), bytes(content))


def related_part(html_part: str, parts: Iterable[InlinePart], boundary: str) -> str:
    """``html_part`` and its images as one multipart/related part (RFC 2387).

    ``boundary`` must not occur in the parts: base64 and quoted-printable never write ``=_``.
    """
    body = "".join(
        f"--{boundary}{CRLF}{part}{CRLF}"
        for part in (html_part, *(image.mime_part.rstrip(CRLF) for image in parts))
    )
    return (
        f'Content-Type: multipart/related; type="text/html"; boundary="{boundary}"{CRLF}'
        f"{CRLF}{body}--{boundary}--"
    )
