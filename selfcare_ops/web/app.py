"""The portal application: ``create_app(settings)`` builds it, ``selfcare-ops serve`` runs it.

The invitee's and supervisor's side only (no administration): invitation links, the client's
Selfcare home, supervision, previews, images and stylesheets. Every error is a page in the
visitor's language, never a traceback; every response carries the headers of
:mod:`selfcare_ops.web.security`.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import SelfcareError
from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.support.resources import packaged, real_path
from selfcare_ops.web import assets, invitation, selfcare
from selfcare_ops.web.pages import browser_language, message_page
from selfcare_ops.web.security import SecurityMiddleware, with_security_headers

log = logging.getLogger(__name__)
SECRET = "{code:str}"


def _index(request: Request) -> HTMLResponse:
    return message_page(
        browser_language(request),
        lambda _: _("Selfcare"),
        lambda _: [_("Open the link of the mail you received to reach your Selfcare.")],
        status=200,
    )


async def index(request: Request) -> HTMLResponse:
    return _index(request)


def _secured(response: Response) -> Response:
    """A response made outside the middleware (the 500 page) gets its headers here."""
    headers = with_security_headers(list(response.raw_headers))
    response.raw_headers[:] = headers
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    language = browser_language(request)
    if status == 405:
        return message_page(
            language,
            lambda _: _("This page cannot be used this way"),
            lambda _: [_("Open the link of your mail again.")],
            status=405,
        )
    return message_page(
        language,
        lambda _: _("This page does not exist"),
        lambda _: [_("Check the address, or open the link of your mail again.")],
        status=404 if status == 404 else status,
    )


async def toolkit_error(request: Request, exc: Exception) -> Response:
    """A toolkit error that reached the top (the database is down, say): one sentence."""
    log.error("portal error on %s: %s", request.method, exc)
    return _secured(
        message_page(
            browser_language(request),
            lambda _: _("The Selfcare cannot answer right now"),
            lambda _: [_("Please try again in a few minutes.")],
            status=503,
        )
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: a page, never a traceback (the log has it)."""
    if isinstance(exc, SelfcareError):
        return await toolkit_error(request, exc)
    return _secured(
        message_page(
            browser_language(request),
            lambda _: _("Something went wrong"),
            lambda _: [_("Please try again in a few minutes. Nothing was changed.")],
            status=500,
        )
    )


def routes() -> list[Route | Mount]:
    static = StaticFiles(directory=str(real_path(packaged("web", "static"))))
    home_routes = [
        route
        for prefix in ("selfcare", "supervision", "preview")
        for route in (
            Route(f"/{prefix}/{SECRET}", selfcare.selfcare, methods=["GET"]),
            Route(f"/{prefix}/{SECRET}/{{module:str}}", selfcare.selfcare, methods=["GET"]),
        )
    ]
    return [
        Route("/", index, methods=["GET"]),
        Route("/invitation/{token:str}", invitation.invitation, methods=["GET", "POST"]),
        Route("/invitation/{token:str}/new-link", invitation.new_link, methods=["POST"]),
        *home_routes,
        Route("/assets/{name:str}", assets.asset, methods=["GET"]),
        Route("/theme/{key:str}.css", assets.theme, methods=["GET"]),
        Mount("/static", app=static, name="static"),
    ]


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Starlette:
    """The portal on the configured database (``engine`` overrides it, for tests)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityMiddleware)],
        exception_handlers={
            HTTPException: http_error,
            SelfcareError: toolkit_error,
            Exception: server_error,
        },
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    app.state.read_sessions = make_session_factory(engine, read_only=True)
    return app
