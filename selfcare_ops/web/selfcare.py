"""The client's Selfcare home behind three kinds of link: the user's own right after the
acceptance (``/selfcare``), an administrator's supervision (``/supervision``, with the seed's
banner on every page, its opening audited once) and an analyst's preview (``/preview``)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from selfcare_ops.accounts.supervision import open_supervision, record_opening
from selfcare_ops.errors import TokenError
from selfcare_ops.pages.home import HomeView, asset_path, home_view
from selfcare_ops.pages.render import gettext_for
from selfcare_ops.store.models import User
from selfcare_ops.web.links import read_code
from selfcare_ops.web.pages import browser_language, message_page, page, person_language


def _home_page(
    view: HomeView,
    language: str,
    base: str,
    module: str | None,
    *,
    greeting: str | None = None,
    banner_text: str | None = None,
) -> HTMLResponse:
    if module is not None and module not in view.modules:
        return _not_found(language)
    context = {
        **view.context(logo_src=asset_path(view.logo), banner_src=asset_path(view.banner)),
        "links": base,
        "module_page": module,
        "greeting": greeting,
        "banner_text": banner_text,
        "sample": False,
        "issues": [],
    }
    return page("home.html", language, context)


def _not_found(language: str) -> HTMLResponse:
    return message_page(
        language,
        lambda _: _("This page does not exist"),
        lambda _: [_("Check the address, or open the link of your mail again.")],
        status=404,
    )


def _expired_link(language: str) -> HTMLResponse:
    return message_page(
        language,
        lambda _: _("This link has expired"),
        lambda _: [_("Links to this page work for one hour: sign in to your Selfcare instead.")],
        status=410,
    )


def _user_home(request: Request, code: str, module: str | None) -> HTMLResponse:
    user_id = read_code("home", code, settings=request.app.state.settings)
    if user_id is None:
        return _expired_link(browser_language(request))
    with request.app.state.read_sessions() as session:
        user = session.get(User, user_id)
        if user is None or user.status != "active":
            return _expired_link(browser_language(request))
        language = person_language(session, user.client_id, user)
        view = home_view(session, user.client_id)
        _ = gettext_for(language)
        greeting = _("Hello {name}").format(name=user.first_name)
    return _home_page(view, language, f"/selfcare/{code}", module, greeting=greeting)


def _supervised_home(request: Request, code: str, module: str | None) -> HTMLResponse:
    settings = request.app.state.settings
    with request.app.state.sessions() as session:
        try:
            record = open_supervision(session, code, settings=settings)
        except TokenError as error:
            language = browser_language(request)
            reason = error.reason
            return message_page(
                language,
                lambda _: (
                    _("This supervision has ended")
                    if reason == "ended"
                    else _("This supervision link has expired")
                    if reason == "expired"
                    else _("This supervision link is not valid")
                ),
                lambda _: [_("Open a new supervision from the toolkit if you still need one.")],
                status=404 if reason == "invalid" else 410,
            )
        if request.method != "HEAD":
            record_opening(session, record)
            session.commit()
        user = session.get(User, record.user_id)
        assert user is not None
        language = person_language(session, user.client_id, user)
        view = home_view(session, user.client_id)
        _ = gettext_for(language)
        banner = _("Session supervised by {who} until {time} UTC — reason: {reason}").format(
            who=record.actor_label, time=f"{record.expires_at:%H:%M}", reason=record.reason
        )
        greeting = _("Hello {name}").format(name=user.first_name)
    return _home_page(
        view, language, f"/supervision/{code}", module, greeting=greeting, banner_text=banner
    )


def _preview(request: Request, code: str, module: str | None) -> HTMLResponse:
    organisation_id = read_code("preview", code, settings=request.app.state.settings)
    if organisation_id is None:
        return _expired_link(browser_language(request))
    with request.app.state.read_sessions() as session:
        from selfcare_ops.store.models import Organisation

        org = session.get(Organisation, organisation_id)
        if org is None:
            return _not_found(browser_language(request))
        language = person_language(session, org.id, None)
        view = home_view(session, org.id)
        _ = gettext_for(language)
        banner = _("Preview of the Selfcare of {name}, as its users see it.").format(name=org.name)
    return _home_page(view, language, f"/preview/{code}", module, banner_text=banner)


_HANDLERS = {"selfcare": _user_home, "supervision": _supervised_home, "preview": _preview}


async def selfcare(request: Request) -> HTMLResponse:
    kind = request.url.path.split("/", 2)[1]
    handler = _HANDLERS[kind]
    params = request.path_params
    return await run_in_threadpool(handler, request, params["code"], params.get("module"))
