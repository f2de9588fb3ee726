"""The invitee's path end to end in Debian's Chromium (Playwright): an analyst invites a demo
user from the CLI, the mail goes over SMTP to aiosmtpd, the link is taken from the received
mail and opened in the portal that ``selfcare-ops serve`` runs here on a free loopback port;
the form is filled in the page, and the user is then ``active`` in ``users list`` and counted
in the adoption report. The acceptance page, an expired link and a supervised session are
saved under docs/ (1366 x 768).

Chromium comes from the distribution, never from ``playwright install``; without it the test
skips outside CI and fails in CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    demo_database,
    require_browser,
    stop_server,
)
from click.testing import CliRunner
from smtp_support import SmtpServer, free_port
from sqlalchemy import select, update

from selfcare_ops.access import system_actor
from selfcare_ops.branding import set_branding
from selfcare_ops.cli import main
from selfcare_ops.demo import DEMO_CLIENT_REF
from selfcare_ops.reports import funnel_by_client
from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.store.models import Invitation, Organisation, User, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PASSWORD = "Lune-Bleue-2026!"


@pytest.fixture
def chromium() -> Path:
    return require_browser()


@pytest.fixture
def portal_env(tmp_path: Path, smtp_server: SmtpServer) -> dict[str, str]:
    """The demo database and the settings every command and the server share."""
    url = demo_database(tmp_path)
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        set_branding(
            session,
            system_actor(session),
            DEMO_CLIENT_REF,
            primary_color="#003a70",
            gradient_color="#0077c8",
            banner_message="Bienvenue sur votre Selfcare : vos lignes, vos appels, vos factures.",
            banner_link="https://www.example.com/offres",
        )
    engine.dispose()
    port = free_port()
    return {
        "SELFCARE_OPS_DATABASE_URL": url,
        "SELFCARE_OPS_DATA_DIR": str(tmp_path / "data"),
        "SELFCARE_OPS_SECRET_KEY": "e2e-" + "k" * 44,
        "SELFCARE_OPS_PORTAL_URL": f"http://127.0.0.1:{port}",
        "SELFCARE_OPS_MAIL_TRANSPORT": "smtp",
        "SELFCARE_OPS_SMTP_HOST": "127.0.0.1",
        "SELFCARE_OPS_SMTP_PORT": str(smtp_server.port),
        "PORTAL_PORT": str(port),
    }


@pytest.fixture
def portal(chromium: Path, portal_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``selfcare-ops serve`` in its own process, stopped after the test."""
    port = portal_env["PORTAL_PORT"]
    command = Path(sys.executable).parent / "selfcare-ops"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(command), "serve", "--port", port],
            cwd=tmp_path,
            env={**os.environ, **portal_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:  # a readiness wait, not an assertion
            if process.poll() is not None:
                pytest.fail(f"serve exited early:\n{log_path.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"serve did not start:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.2)
        yield portal_env["SELFCARE_OPS_PORTAL_URL"]
    finally:
        stop_server(process)
        # the access log never shows a token
        log = log_path.read_text(errors="replace")
        assert "/invitation/[redacted]" in log
        assert not re.search(r"/invitation/[A-Za-z0-9_-]{20,}", log)


def cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _pick_user(env: dict[str, str]) -> str:
    engine = make_engine(env["SELFCARE_OPS_DATABASE_URL"])
    with make_session_factory(engine)() as session:
        login = session.scalar(
            select(User.login)
            .join(Organisation, Organisation.id == User.client_id)
            .where(
                Organisation.ref == DEMO_CLIENT_REF,
                User.status == "not_invited",
                User.email.isnot(None),
                User.draft.is_(False),
            )
            .order_by(User.id)
            .limit(1)
        )
    engine.dispose()
    assert login
    return login


def test_invitee_accepts_in_a_real_browser(
    portal: str, portal_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    env = {k: v for k, v in portal_env.items() if k.startswith("SELFCARE_OPS_")}
    login = _pick_user(env)
    cli(env, "invite", "user", login)
    cli(env, "mail", "deliver")
    (mail,) = [m for m in smtp_server.messages if login.split("@")[0] in m.as_string().lower()]
    text = mail.get_body(("plain",)).get_content()
    link = re.search(re.escape(portal) + r"/invitation/[A-Za-z0-9_-]+", text).group(0)
    html = mail.get_body(("html",)).get_content()
    # The logo travels inside the mail (multipart/related), so it shows with no portal reachable.
    cid = re.search(r'<img[^>]+src="cid:([^"]+)"', html).group(1)
    (logo,) = [part for part in mail.walk() if part.get("Content-ID") == f"<{cid}>"]
    assert logo.get_content_type() in ("image/png", "image/jpeg")
    data = logo.get_payload(decode=True)
    assert data.startswith((b"\x89PNG", b"\xff\xd8\xff"))  # a real PNG or JPEG
    DOCS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(link)
            expect(page.locator("h1")).to_have_text("Activez votre compte")
            expect(page.locator(".sc-login")).to_contain_text(login)
            # the branded logo loads from the portal (CSP allows our own images only)
            assert page.locator("img.sc-logo").evaluate("img => img.naturalWidth") > 0
            page.screenshot(path=str(DOCS / "portal-acceptance.png"))

            # a scanner-like empty submission spends nothing and says why
            page.get_by_role("button", name="Activer mon compte").click()
            expect(page.locator(".sc-error").first).to_be_visible()
            page.get_by_label("Mme").check()
            page.get_by_label("Téléphone").fill("06 12 34 56 78")
            page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
            page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Activer mon compte").click()
            expect(page.locator("h1")).to_have_text("Votre compte est actif")
            page.get_by_role("link", name="Ouvrir mon Selfcare").click()
            expect(page.locator(".sc-menu")).to_contain_text("Tableau de bord")
            expect(page.locator(".sc-account")).to_contain_text("Bonjour")

            page.goto(link)  # the same link now says it was used
            expect(page.locator("h1")).to_have_text("Ce lien a déjà été utilisé")

            # an expired link, with its button for a new one
            other = _pick_user(env)
            cli(env, "invite", "user", other)
            cli(env, "mail", "deliver")
            mail = [m for m in smtp_server.messages if other.split("@")[0] in m.as_string()][-1]
            expired = re.search(
                re.escape(portal) + r"/invitation/[A-Za-z0-9_-]+",
                mail.get_body(("plain",)).get_content(),
            ).group(0)
            engine = make_engine(env["SELFCARE_OPS_DATABASE_URL"])
            with make_session_factory(engine).begin() as session:
                session.execute(
                    update(Invitation)
                    .where(Invitation.email == mail["To"].split("<")[-1].strip(">").lower())
                    .values(expires_at=utcnow())
                )
            engine.dispose()
            page.goto(expired)
            expect(page.locator("h1")).to_have_text("Ce lien a expiré")
            expect(page.get_by_role("button", name="Recevoir un nouveau lien")).to_be_visible()
            page.screenshot(path=str(DOCS / "portal-expired.png"))

            # the analyst supervises the new user's Selfcare
            output = cli(env, "users", "supervise", login, "--reason", "Ticket 4521 : lignes")
            supervision = output.strip().splitlines()[-1]
            page.goto(supervision)
            expect(page.locator(".sc-supervision")).to_contain_text("Session supervisée par")
            page.screenshot(path=str(DOCS / "portal-supervision.png"))
            page.locator(".sc-menu-item", has_text="Mes téléphones").click()
            expect(page.locator(".sc-supervision")).to_contain_text("motif")
        except Exception:
            failure = tmp_path / "failure.png"
            page.screenshot(path=str(failure), full_page=True)
            print(f"screenshot of the failing page: {failure}")
            raise
        finally:
            browser.close()

    listed = json.loads(cli(env, "users", "list", DEMO_CLIENT_REF, "--json", "--search", login))
    assert [u["status"] for u in listed if u["login"] == login] == ["active"]
    engine = make_engine(env["SELFCARE_OPS_DATABASE_URL"])
    with make_session_factory(engine)() as session:
        before_active = session.scalar(
            select(User.id).where(User.login == login, User.status == "active")
        )
        funnel = funnel_by_client(session, system_actor(session))
    engine.dispose()
    assert before_active is not None
    row = funnel[funnel["client_ref"] == DEMO_CLIENT_REF].iloc[0]
    assert row["active"] >= 1
