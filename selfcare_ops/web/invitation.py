"""``/invitation/<token>``: the invitee's form (seed 004) and every page about a closed link.

GET and HEAD only read: a mail scanner that follows the link changes nothing. A POST is checked
whole before anything is written; a failed one (what a scanner submitting the form sends) is
counted and spends nothing; a good one spends the token and activates the account in one
transaction (:func:`selfcare_ops.invitations.acceptance.accept`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from selfcare_ops.accounts.passwords import MIN_LENGTH
from selfcare_ops.errors import SelfcareError, TokenError
from selfcare_ops.i18n import LANGUAGES
from selfcare_ops.invitations.acceptance import accept
from selfcare_ops.invitations.invitee import (
    RENEWABLE_STATES,
    record_failure,
    request_new_link,
    too_many_failures,
)
from selfcare_ops.pages.render import gettext_for
from selfcare_ops.web.forms import FIELDS, check_form
from selfcare_ops.web.links import csrf_ok, csrf_value, home_link
from selfcare_ops.web.lookup import LinkView, link_view, look_and_language, open_link
from selfcare_ops.web.pages import (
    Look,
    browser_language,
    day,
    mask_email,
    message_page,
    page,
)


def _who(session: Session, link: LinkView) -> tuple[LinkView, str, Look]:
    """The link, the page's language (the user's, else their organisations') and the look."""
    look, chain = look_and_language(
        session,
        link.organisation_id,
        link.organisation_ref,
        link.organisation_name,
        link.organisation_path,
    )
    language = link.user_language if link.user_language in LANGUAGES else chain
    return link, str(language), look


def closed_page(request: Request, session: Session, token: str, reason: str) -> HTMLResponse:
    """The page of a link that no longer opens the form, in the invitee's language."""
    invitation = link_view(session, token) if reason != "invalid" else None
    if invitation is None:
        return message_page(
            browser_language(request),
            lambda _: _("This link does not work"),
            lambda _: [
                _(
                    "Check that the whole link was copied from the mail, or ask your "
                    "administrator for a new invitation."
                )
            ],
            status=404,
        )
    _, language, look = _who(session, invitation)
    state = invitation.state()
    closed_on = day(invitation.closed_at, language)
    renewable = state in RENEWABLE_STATES and invitation.kind == "user"
    email = mask_email(invitation.email)
    if state == "accepted":
        title, lines = (
            lambda _: _("This link was already used"),
            lambda _: [
                _("Your account was activated on {date}.").format(
                    date=day(invitation.accepted_at, language)
                ),
                _("Sign in to your Selfcare with your login and your password."),
            ],
        )
    elif state == "expired":
        title, lines = (
            lambda _: _("This link has expired"),
            lambda _: [
                _("It worked until {date}.").format(date=day(invitation.expires_at, language)),
                _("You can receive a new link at {email}.").format(email=email)
                if renewable
                else _("Ask your administrator to invite you again."),
            ],
        )
    elif state == "superseded":
        title, lines = (
            lambda _: _("This link was replaced by a newer one"),
            lambda _: [
                _(
                    "A more recent invitation was sent on {date}: use the link of the latest mail."
                ).format(date=closed_on),
                _("You can also receive a new link at {email}.").format(email=email)
                if renewable
                else _("Ask your administrator to invite you again."),
            ],
        )
    elif state == "revoked":
        title, lines = (
            lambda _: _("This invitation was cancelled"),
            lambda _: [
                _("Your administrator cancelled it on {date}.").format(date=closed_on),
                _("Ask them for a new invitation if you still need an account."),
            ],
        )
    else:  # bounced
        title, lines = (
            lambda _: _("This invitation could not be delivered"),
            lambda _: [
                _("The mail server refused the invitation mail, so this link was closed."),
                _("Ask your administrator to check your email address and invite you again."),
            ],
        )
    return message_page(
        language,
        title,
        lines,
        status=410,
        look=look,
        new_link_action=f"/invitation/{token}/new-link" if renewable else None,
        csrf=csrf_value(token, request.app.state.settings) if renewable else "",
    )


def _form_page(
    request: Request,
    session: Session,
    token: str,
    invitation: LinkView,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    _, language, look = _who(session, invitation)
    context: dict[str, Any] = {
        **look.context(),
        "login": invitation.login,
        "email": invitation.email,
        "expires_on": day(invitation.expires_at, language),
        "action": f"/invitation/{token}",
        "csrf": csrf_value(token, request.app.state.settings),
        "values": values or {"civility": "", "phone": ""},
        "errors": errors or {},
        "min_length": MIN_LENGTH,
    }
    return page("invitation.html", language, context, status)


def _show(request: Request, token: str) -> HTMLResponse:
    with request.app.state.read_sessions() as session:
        invitation, reason = open_link(session, token)
        if invitation is None:
            return closed_page(request, session, token, reason)
        return _form_page(request, session, token, invitation)


def _too_many(session: Session, invitation: LinkView) -> HTMLResponse:
    _, language, look = _who(session, invitation)
    return message_page(
        language,
        lambda _: _("Too many attempts"),
        lambda _: [
            _("This form was sent with errors too many times in a short while."),
            _("Wait 15 minutes, then open the link of your mail again."),
        ],
        status=429,
        look=look,
    )


def _submit(request: Request, token: str, form: dict[str, str]) -> HTMLResponse:
    settings = request.app.state.settings
    with request.app.state.sessions() as session:
        invitation, reason = open_link(session, token)
        if invitation is None:
            return closed_page(request, session, token, reason)
        if too_many_failures(session, invitation.id):
            return _too_many(session, invitation)
        _link, language, look = _who(session, invitation)
        _ = gettext_for(language)
        if not csrf_ok(token, form.get("csrf", ""), settings):
            result = check_form({}, _, login=None, email=None)
            result.values = {"civility": form.get("civility", ""), "phone": form.get("phone", "")}
            result.errors = {
                "form": _(
                    "This form is not the one of this link: open the link of your mail again."
                )
            }
        else:
            result = check_form(form, _, login=invitation.login, email=invitation.email)
        if not result.ok:
            record_failure(session, invitation.id)
            session.commit()
            return _form_page(
                request,
                session,
                token,
                invitation,
                values=result.values,
                errors=result.errors,
                status=400,
            )
        try:
            accepted = accept(session, token, **result.clean)
            session.commit()
        except TokenError as error:
            session.rollback()
            return closed_page(request, session, token, error.reason)
        except SelfcareError as error:
            session.rollback()
            record_failure(session, invitation.id)
            session.commit()
            return _form_page(
                request,
                session,
                token,
                invitation,
                values=result.values,
                errors={"form": str(error)},
                status=400,
            )
        first_name = invitation.first_name
    if accepted.user_id is not None:
        return message_page(
            language,
            lambda _: _("Your account is active"),
            lambda _: [
                _("Welcome, {name}.").format(name=first_name),
                _(
                    "From now on, sign in to your Selfcare with the login {login} and the "
                    "password you chose."
                ).format(login=accepted.login),
            ],
            status=200,
            look=look,
            home_link=home_link(accepted.user_id, settings=settings),
        )
    return message_page(
        language,
        lambda _: _("Your administrator access is active"),
        lambda _: [
            _("Sign in to the administration with {email} and the password you chose.").format(
                email=accepted.email
            )
        ],
        status=200,
        look=look,
    )


async def invitation(request: Request) -> HTMLResponse:
    token = request.path_params["token"]
    if request.method in ("GET", "HEAD"):
        return await run_in_threadpool(_show, request, token)
    async with request.form(max_files=0, max_fields=len(FIELDS) + 4) as data:
        form = {key: str(data.get(key) or "") for key in (*FIELDS, "csrf")}
    return await run_in_threadpool(_submit, request, token, form)


def _new_link(request: Request, token: str, csrf: str) -> HTMLResponse:
    settings = request.app.state.settings
    with request.app.state.sessions() as session:
        invitation = link_view(session, token)
        if invitation is None:
            return closed_page(request, session, token, "invalid")
        _, language, look = _who(session, invitation)
        if not csrf_ok(token, csrf, settings):
            return message_page(
                language,
                lambda _: _("This request did not come from the page of your link"),
                lambda _: [_("Open the link of your mail again, then use its button.")],
                status=400,
                look=look,
            )
        try:
            outcome = request_new_link(session, token)
            session.commit()
        except TokenError as error:
            session.rollback()
            if error.reason in ("pending", "sent"):
                return _show(request, token)
            return closed_page(request, session, token, error.reason)
    email = mask_email(outcome.email)
    if outcome.outcome == "queued":
        title, lines, status = (
            lambda _: _("A new link is on its way"),
            lambda _: [
                _("We are sending a new invitation to {email}.").format(email=email),
                _("Use the link of that mail: this one no longer works."),
            ],
            200,
        )
    elif outcome.outcome == "already":
        title, lines, status = (
            lambda _: _("A new link was already asked for"),
            lambda _: [
                _(
                    "A new link can be asked for once a day: look for the latest mail at {email}."
                ).format(email=email),
                _("If nothing came, ask your administrator to invite you again."),
            ],
            429,
        )
    else:  # refused, or an administrator's invitation
        title, lines, status = (
            lambda _: _("No new link can be sent"),
            lambda _: [_("Ask your administrator to invite you again.")],
            409,
        )
    return message_page(language, title, lines, status=status, look=look)


async def new_link(request: Request) -> HTMLResponse:
    token = request.path_params["token"]
    async with request.form(max_files=0, max_fields=4) as data:
        csrf = str(data.get("csrf") or "")
    return await run_in_threadpool(_new_link, request, token, csrf)


__all__ = ["closed_page", "invitation", "new_link"]
