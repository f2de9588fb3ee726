"""Stored images by content hash (``/assets/<sha256>.<ext>``) and the clients' colour sheets
(``/theme/<key>.css``): both immutable, so browsers and proxies keep them for a year."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from selfcare_ops.pages.render import Theme
from selfcare_ops.store.models import Asset
from selfcare_ops.web.pages import browser_language, message_page

IMMUTABLE = "public, max-age=31536000, immutable"
_ASSET = re.compile(r"^([0-9a-f]{64})\.(png|jpg|jpeg)$")
_MIME_EXTENSIONS = {"image/png": ("png",), "image/jpeg": ("jpg", "jpeg")}


def _not_found(request: Request) -> Response:
    return message_page(
        browser_language(request),
        lambda _: _("This page does not exist"),
        lambda _: [_("Check the address, or open the link of your mail again.")],
        status=404,
    )


def _asset(request: Request, name: str) -> Response:
    match = _ASSET.match(name)
    if match is None:
        return _not_found(request)
    sha, extension = match.groups()
    with request.app.state.read_sessions() as session:
        row = session.execute(select(Asset.mime, Asset.content).where(Asset.sha256 == sha)).first()
    if row is None or extension not in _MIME_EXTENSIONS.get(row.mime, ()):
        return _not_found(request)
    return Response(
        bytes(row.content),
        media_type=row.mime,
        headers={"cache-control": IMMUTABLE, "etag": f'"{sha}"'},
    )


async def asset(request: Request) -> Response:
    return await run_in_threadpool(_asset, request, request.path_params["name"])


async def theme(request: Request) -> Response:
    found = Theme.from_key(request.path_params["key"])
    if found is None:
        return _not_found(request)
    return Response(found.css(), media_type="text/css", headers={"cache-control": IMMUTABLE})
