"""The portal (``selfcare-ops serve``) through Starlette's TestClient, on SQLite and PostgreSQL:
the invitation form and every closed link, the hostile visitor (scanners, forged forms,
guessing), images, supervision, the Selfcare home, headers, errors and language."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from selfcare_ops.accounts.supervision import end_supervision, supervise
from selfcare_ops.config import Settings
from selfcare_ops.invitations.invitee import ATTEMPT_LIMIT, list_link_requests
from selfcare_ops.invitations.service import invite_user, resend, revoke
from selfcare_ops.store.models import (
    Asset,
    AuditEvent,
    Invitation,
    InvitationAttempt,
    LinkRequest,
    OutboundMessage,
    SupervisionSession,
    User,
    utcnow,
)
from selfcare_ops.web.app import create_app
from selfcare_ops.web.links import csrf_value, preview_link

GOOD = {"civility": "Mme", "phone": "06 12 34 56 78", "password": "Lune-Bleue-2026!"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        portal_url="https://portal.example",
        secret_key="s" * 48,
    )


@pytest.fixture
def client(engine, settings) -> TestClient:
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=True) as c:
        yield c


def _invite(session_factory, tree, index: int = 2) -> tuple[str, str]:
    """Invite one of CA's users; returns (login, token)."""
    login = tree.client_a_users[index]
    with session_factory.begin() as session:
        result = invite_user(session, tree.system, login)
    return login, result.token


def _form(client: TestClient, token: str, **fields: str):
    data = {**GOOD, "confirmation": GOOD["password"], **fields}
    data.setdefault("csrf", csrf_value(token, client.app.state.settings))
    return client.post(f"/invitation/{token}", data=data)


def _snapshot(session_factory) -> tuple:
    """Everything a visit could change: invitations, users, audit, attempts, requests."""
    with session_factory() as session:
        invitations = session.execute(
            select(Invitation.id, Invitation.status, Invitation.accepted_at).order_by(Invitation.id)
        ).all()
        users = session.execute(select(User.id, User.status, User.phone).order_by(User.id)).all()
        counts = [
            session.scalar(select(func.count()).select_from(model))
            for model in (AuditEvent, InvitationAttempt, LinkRequest, OutboundMessage)
        ]
    return invitations, users, counts


def _user(session_factory, login: str) -> User:
    with session_factory() as session:
        return session.scalar(select(User).where(User.login == login))


def _text(response) -> str:
    """The page's visible text, tags removed and entities of apostrophes read back."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)).replace("&#39;", "'")


# --- opening the link changes nothing ---------------------------------------------------------


def test_get_and_head_show_the_branded_form_and_spend_nothing(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    before = _snapshot(session_factory)
    page = client.get(f"/invitation/{token}")
    head = client.head(f"/invitation/{token}")
    assert page.status_code == 200 and head.status_code == 200
    text = _text(page)
    assert "Activez votre compte" in text and login in text
    assert "Virginie Télécom" in text
    assert "au moins 12 caractères" in text  # the rules, before typing
    assert 'name="csrf"' in page.text and 'type="password"' in page.text
    assert re.search(r'href="/theme/[0-9a-f]{6}-(none|[0-9a-f]{6})-[0-9a-f]{6}\.css"', page.text)
    # a scanner following the link, again and again
    for _ in range(3):
        client.get(f"/invitation/{token}")
    assert _snapshot(session_factory) == before


def test_a_good_form_activates_the_account_once(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    response = _form(client, token)
    assert response.status_code == 200, response.text
    assert "Votre compte est actif" in _text(response)
    user = _user(session_factory, login)
    assert (user.status, user.civility, user.phone) == ("active", "Mme", "+33612345678")
    with session_factory() as session:
        invitation = session.scalar(select(Invitation).where(Invitation.user_id == user.id))
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == str(user.id))
        ).all()
    assert invitation.status == "accepted"
    assert "invitation.accept" in actions
    # the confirmation leads to the client's Selfcare home
    home = re.search(r'href="(/selfcare/[^"]+)"', response.text).group(1)
    page = client.get(home)
    assert page.status_code == 200
    assert "Bonjour Jean-Pierre" in _text(page) and "Tableau de bord" in _text(page)
    # the same link now says it was used, and a second POST spends nothing more
    again = client.get(f"/invitation/{token}")
    assert again.status_code == 410 and "déjà été utilisé" in _text(again)
    assert _form(client, token).status_code == 410


def test_empty_or_wrong_fields_spend_nothing_and_say_why_next_to_each_field(
    client, session_factory, tree
):
    login, token = _invite(session_factory, tree)
    empty = client.post(
        f"/invitation/{token}", data={"csrf": csrf_value(token, client.app.state.settings)}
    )
    assert empty.status_code == 400
    assert empty.text.count('class="sc-error"') == 4
    wrong = _form(
        client,
        token,
        civility="Dr",
        phone="12",
        password="abcdefghijklmnop",
        confirmation="autre chose",
    )
    assert wrong.status_code == 400
    text = _text(wrong)
    assert "Choisissez votre civilité" in text
    assert "06 12 34 56 78" in text
    assert "deux sortes de caractères" in text
    assert "Les deux mots de passe diffèrent" in text
    assert 'value="12"' in wrong.text  # what was typed stays
    assert "abcdefghijklmnop" not in wrong.text  # except the passwords
    user = _user(session_factory, login)
    assert user.status == "invited" and user.phone is None
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(InvitationAttempt)) == 2


def test_a_form_value_of_another_token_is_refused(client, session_factory, tree):
    login, token = _invite(session_factory, tree, 2)
    _, other = _invite(session_factory, tree, 4)
    forged = _form(client, token, csrf=csrf_value(other, client.app.state.settings))
    assert forged.status_code == 400
    assert "pas celui de ce lien" in _text(forged)
    assert _form(client, token, csrf="").status_code == 400
    assert _user(session_factory, login).status == "invited"


def test_ten_failures_then_too_many_attempts_even_with_good_fields(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    for _ in range(ATTEMPT_LIMIT):
        assert _form(client, token, phone="0").status_code == 400
    blocked = _form(client, token)
    assert blocked.status_code == 429
    assert "Trop de tentatives" in _text(blocked)
    assert _user(session_factory, login).status == "invited"
    # the window is 15 minutes: older failures count no more
    with session_factory.begin() as session:
        session.execute(
            update(InvitationAttempt).values(failed_at=utcnow() - timedelta(minutes=16))
        )
    assert _form(client, token).status_code == 200
    assert _user(session_factory, login).status == "active"


# --- closed links -----------------------------------------------------------------------------


def test_each_closed_link_has_its_own_page(client, session_factory, tree):
    login, expired = _invite(session_factory, tree, 2)
    with session_factory.begin() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.token_hash.isnot(None))
            .values(expires_at=utcnow() - timedelta(hours=1))
        )
    page = client.get(f"/invitation/{expired}")
    assert page.status_code == 410
    assert "Ce lien a expiré" in _text(page) and "Recevoir un nouveau lien" in _text(page)
    assert "j***@virginie.example" in _text(page)  # the address, masked

    login4, superseded = _invite(session_factory, tree, 4)
    with session_factory.begin() as session:
        resend(session, tree.system, login4)
    page = client.get(f"/invitation/{superseded}")
    assert page.status_code == 410
    assert "remplacé par un plus récent" in _text(page)
    assert "Recevoir un nouveau lien" in _text(page)

    with session_factory.begin() as session:
        latest = invite_user(session, tree.system, login)
        revoke(session, tree.system, login)
    page = client.get(f"/invitation/{latest.token}")
    assert page.status_code == 410
    assert "Cette invitation a été annulée" in _text(page)
    assert "Recevoir un nouveau lien" not in _text(page)

    page = client.get("/invitation/" + "x" * 43)
    assert page.status_code == 404 and "Ce lien ne fonctionne pas" in _text(page)
    assert client.get("/invitation/%3Cscript%3E").status_code == 404


def test_a_new_link_is_queued_once_a_day_and_listed_for_analysts(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    with session_factory.begin() as session:
        session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(hours=1)))
    csrf = csrf_value(token, client.app.state.settings)
    assert client.post(f"/invitation/{token}/new-link", data={"csrf": "x"}).status_code == 400
    sent = client.post(f"/invitation/{token}/new-link", data={"csrf": csrf})
    assert sent.status_code == 200 and "Un nouveau lien est en route" in _text(sent)
    user = _user(session_factory, login)
    with session_factory() as session:
        invitations = session.scalars(
            select(Invitation).where(Invitation.user_id == user.id).order_by(Invitation.id)
        ).all()
        request = session.scalar(select(LinkRequest))
        audited = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "invitation.request_link")
        )
        ledger = list_link_requests(session, tree.system)
        other_scope = list_link_requests(session, tree.partner_b_admin)
    assert len(invitations) == 2 and invitations[-1].status == "pending"
    assert invitations[-1].email == invitations[0].email
    assert request.outcome == "queued" and request.new_invitation_id == invitations[-1].id
    assert audited.actor_kind == "invitee"
    assert list(ledger["login"]) == [login] and list(ledger["outcome"]) == ["queued"]
    assert other_scope.empty
    again = client.post(f"/invitation/{token}/new-link", data={"csrf": csrf})
    assert again.status_code in (410, 429)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(LinkRequest)) == 1
        assert (
            session.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.user_id == user.id)
            )
            == 2
        )


def test_an_open_link_asks_for_nothing_new(client, session_factory, tree):
    _, token = _invite(session_factory, tree)
    before = _snapshot(session_factory)
    csrf = csrf_value(token, client.app.state.settings)
    response = client.post(f"/invitation/{token}/new-link", data={"csrf": csrf})
    assert response.status_code == 200 and "Activez votre compte" in _text(response)
    assert _snapshot(session_factory) == before


# --- images, stylesheets, headers, errors ---------------------------------------------------


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 0, 0)).save(out, "PNG")
    return out.getvalue()


def test_assets_are_served_by_content_hash_and_nothing_else(client, session_factory):
    data = _png()
    sha = "a" * 64
    with session_factory.begin() as session:
        session.add(
            Asset(sha256=sha, mime="image/png", width=4, height=4, size=len(data), content=data)
        )
    response = client.get(f"/assets/{sha}.png")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/png"
    assert "immutable" in response.headers["cache-control"]
    for path in (f"/assets/{sha}.jpg", f"/assets/{'b' * 64}.png", "/assets/..%2Fsecret", "/x"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert "Cette page n'existe pas" in _text(missing)


def test_theme_sheets_follow_their_name(client):
    sheet = client.get("/theme/003366-0066cc-ffffff.css")
    assert sheet.status_code == 200 and "text/css" in sheet.headers["content-type"]
    assert "linear-gradient(90deg, #003366, #0066cc)" in sheet.text
    assert client.get("/theme/zzz;color:red.css").status_code == 404


def test_every_page_carries_the_security_headers(client, session_factory, tree):
    _, token = _invite(session_factory, tree)
    for path in (f"/invitation/{token}", "/invitation/nope", "/", "/static/selfcare.css"):
        headers = client.get(path).headers
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-frame-options"] == "DENY"
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
    assert client.get(f"/invitation/{token}").headers["cache-control"] == "no-store"


def test_the_access_log_never_shows_a_token(client, session_factory, tree, caplog):
    _, token = _invite(session_factory, tree)
    with caplog.at_level(logging.INFO, logger="selfcare_ops.web.access"):
        client.get(f"/invitation/{token}?utm=1")
        _form(client, token, phone="")
    lines = [r.getMessage() for r in caplog.records if r.name == "selfcare_ops.web.access"]
    assert len(lines) == 2
    assert all("/invitation/[redacted]" in line for line in lines)
    assert not any(token in line or "utm" in line for line in lines)


def test_an_unexpected_failure_is_a_page_not_a_traceback(tmp_path, settings):
    from selfcare_ops.store.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables at all
    app = create_app(settings, engine=broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/invitation/" + "a" * 43)
    assert response.status_code in (500, 503)
    assert "Traceback" not in response.text and "sqlite" not in response.text.lower()
    assert response.headers["x-frame-options"] == "DENY"
    assert "<h1" in response.text


def test_user_values_are_escaped(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    with session_factory.begin() as session:
        session.execute(
            update(User)
            .where(User.login == login)
            .values(first_name="<script>alert(1)</script>", last_name="<script>")
        )
    response = _form(client, token)
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    home = re.search(r'href="(/selfcare/[^"]+)"', response.text).group(1)
    page = client.get(home)
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_pages_follow_the_user_then_the_client_language(client, session_factory, tree):
    login, token = _invite(session_factory, tree)
    with session_factory.begin() as session:
        session.execute(update(User).where(User.login == login).values(language="en"))
    page = client.get(f"/invitation/{token}")
    assert 'lang="en"' in page.text and "Activate your account" in _text(page)
    assert "at least 12 characters" in _text(page)
    from selfcare_ops.organisations import set_language

    login2, token2 = _invite(session_factory, tree, 4)
    with session_factory.begin() as session:
        set_language(session, tree.system, "PA", "en")
    assert "Activate your account" in _text(client.get(f"/invitation/{token2}"))


# --- supervision and previews -----------------------------------------------------------------


def test_supervision_shows_the_banner_on_every_page_and_is_audited_once(
    client, session_factory, tree, settings
):
    alice = tree.client_a_users[0]
    with session_factory.begin() as session:
        result = supervise(
            session, tree.system, alice, reason="Ticket 42 <b>", minutes=30, settings=settings
        )
    path = result.link.removeprefix(settings.portal_url)
    home = client.get(path)
    assert home.status_code == 200
    text = _text(home)
    assert "Session supervisée par" in text and "motif : Ticket 42 <b>" in text.replace(
        "&lt;", "<"
    ).replace("&gt;", ">")
    assert "<b>" not in home.text
    module = client.get(path + "/mes_telephones")
    assert module.status_code == 200 and "Session supervisée par" in _text(module)
    assert client.get(path + "/offres_mobiles").status_code == 404
    client.head(path)
    with session_factory() as session:
        opened = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.supervise_open")
        ).all()
        record = session.get(SupervisionSession, result.session_id)
    assert len(opened) == 1 and record.opened_at is not None
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(forged).status_code == 404
    with session_factory.begin() as session:
        end_supervision(session, tree.system, result.session_id)
    ended = client.get(path)
    assert ended.status_code == 410 and "Cette supervision est terminée" in _text(ended)


def test_an_expired_supervision_link_says_so(client, session_factory, tree, settings):
    alice = tree.client_a_users[0]
    with session_factory.begin() as session:
        result = supervise(
            session,
            tree.system,
            alice,
            reason="Ticket 43",
            minutes=5,
            now=utcnow() - timedelta(minutes=10),
            settings=settings,
        )
    page = client.get(result.link.removeprefix(settings.portal_url))
    assert page.status_code == 410 and "a expiré" in _text(page)


def test_a_preview_link_opens_the_client_home_for_an_hour(client, session_factory, tree, settings):
    from selfcare_ops.store.models import Organisation

    with session_factory() as session:
        ca = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
    link = preview_link(ca, settings=settings)
    page = client.get(link.removeprefix(settings.portal_url))
    assert page.status_code == 200 and "Aperçu du Selfcare de Virginie Télécom" in _text(page)
    assert client.get("/preview/1.99.bad").status_code == 410


def test_the_preview_file_and_the_portal_draw_the_same_home(
    client, session_factory, tree, settings
):
    from selfcare_ops.branding import render_preview_html
    from selfcare_ops.store.models import Organisation

    with session_factory() as session:
        ca = session.scalar(select(Organisation.id).where(Organisation.ref == "CA"))
        preview = render_preview_html(session, ca)
    page = client.get(preview_link(ca, settings=settings).removeprefix(settings.portal_url)).text

    def parts(html: str) -> tuple:
        menu = re.findall(r'class="sc-menu-item"[^>]*>([^<]+)<', html)
        theme = re.search(r"sc-page (sc-theme-[0-9a-f-]+)", html).group(1)
        message = re.search(r'class="sc-message-text">([^<]*)<', html).group(1)
        return menu, theme, message

    assert parts(preview) == parts(page)
    assert "<style>" in preview and "<style>" not in page  # inline only in the file


def test_an_administrator_invitation_is_accepted_on_the_same_path(client, session_factory, tree):
    from selfcare_ops.invitations.admin import invite_admin
    from selfcare_ops.store.models import Administrator

    with session_factory.begin() as session:
        result = invite_admin(
            session, tree.system, "nouvelle.admin@exemple.fr", "CA", display_name="Nouvelle"
        )
    token = result.invitation.token
    page = client.get(f"/invitation/{token}")
    assert page.status_code == 200 and "nouvelle.admin@exemple.fr" in _text(page)
    done = _form(client, token)
    assert done.status_code == 200 and "Votre accès administrateur est actif" in _text(done)
    assert "/selfcare/" not in done.text  # administrators have no user home
    with session_factory() as session:
        admin = session.scalar(
            select(Administrator).where(Administrator.email == "nouvelle.admin@exemple.fr")
        )
    assert admin.active and admin.password_hash


def test_other_methods_get_a_page(client, session_factory, tree):
    _, token = _invite(session_factory, tree)
    response = client.put(f"/invitation/{token}", data={})
    assert response.status_code == 405 and "<h1" in response.text
    assert response.headers["x-frame-options"] == "DENY"
