"""What every response of the portal carries, and what its access log never shows.

Headers: no referrer (a token in the address never leaks to a linked site), a strict
Content-Security-Policy (no script at all, styles and images from the portal only), no
framing, no sniffing, and ``Cache-Control: no-store`` on every page (they hold tokens and
personal data; images and stylesheets set their own long cache). The access log writes the
path with the secret part replaced by ``[redacted]`` and never the query string.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
NO_STORE = (b"cache-control", b"no-store")
#: Paths whose next segment is a secret (a token or a signed code).
_SECRET_PATH = re.compile(r"^/(invitation|supervision|selfcare|preview)/[^/]+")
ACCESS_LOGGER = "selfcare_ops.web.access"
access_log = logging.getLogger(ACCESS_LOGGER)


def redact_path(path: str) -> str:
    """``/invitation/<token>/new-link`` -> ``/invitation/[redacted]/new-link``."""
    return _SECRET_PATH.sub(r"/\1/[redacted]", path)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    extra = [header for header in SECURITY_HEADERS if header[0] not in names]
    if b"cache-control" not in names:
        extra.append(NO_STORE)
    return [*headers, *extra]


class SecurityMiddleware:
    """Adds the security headers to every response and writes the redacted access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: dict[str, Any] = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": with_security_headers(list(message["headers"]))}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s HTTP/%s" %d',
                client[0],
                scope.get("method", "-"),
                redact_path(scope.get("path", "")),
                scope.get("http_version", "1.1"),
                status["code"],
            )
