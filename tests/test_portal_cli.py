"""The portal from the terminal: `serve` refuses an unusable database in one sentence,
`branding preview --link` prints a signed link that opens the client's home, `invite list
--requested` shows the invitees' requests, and the demo prints a working acceptance link."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import update
from starlette.testclient import TestClient

from selfcare_ops.cli import main
from selfcare_ops.config import Settings
from selfcare_ops.demo.portal import demo_acceptance_link
from selfcare_ops.invitations.service import invite_user
from selfcare_ops.store.models import Invitation, utcnow
from selfcare_ops.web.app import create_app
from selfcare_ops.web.links import csrf_value

SECRET = "k" * 48


def run(db_url, *args, actor=None):
    env = {
        "SELFCARE_OPS_DATABASE_URL": db_url,
        "SELFCARE_OPS_SECRET_KEY": SECRET,
        "SELFCARE_OPS_PORTAL_URL": "https://portal.example",
    }
    if actor:
        env["SELFCARE_OPS_ACTOR"] = actor
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _client(engine) -> TestClient:
    settings = Settings(portal_url="https://portal.example", secret_key=SECRET)
    return TestClient(create_app(settings, engine=engine))


def test_serve_refuses_a_database_that_is_not_ready(tmp_path):
    result = run(f"sqlite:///{tmp_path / 'empty.db'}", "serve", "--port", "1")
    assert result.exit_code == 1
    assert "selfcare-ops db upgrade" in result.output and "Traceback" not in result.output


def test_preview_link_opens_the_home_and_follows_the_scope(db_url, engine, tree):
    result = run(db_url, "branding", "preview", "CA", "--link")
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("https://portal.example/preview/")
    with _client(engine) as client:
        page = client.get(link.removeprefix("https://portal.example"))
    assert page.status_code == 200 and "Virginie Télécom" in page.text
    refused = run(db_url, "branding", "preview", "CA", "--link", actor="admin@pb.example")
    assert refused.exit_code == 1 and "/preview/" not in refused.output
    assert run(db_url, "branding", "preview", "CA").exit_code == 2


def test_invite_list_requested_shows_the_requests(db_url, engine, tree, session_factory):
    login = tree.client_a_users[2]
    with session_factory.begin() as session:
        token = invite_user(session, tree.system, login).token
        session.execute(update(Invitation).values(expires_at=utcnow()))
    with _client(engine) as client:
        settings = client.app.state.settings
        sent = client.post(
            f"/invitation/{token}/new-link", data={"csrf": csrf_value(token, settings)}
        )
    assert sent.status_code == 200
    result = run(db_url, "invite", "list", "--requested")
    assert result.exit_code == 0, result.output
    assert login in result.output and "queued" in result.output
    assert "1 requests for a new link" in result.output
    other = run(db_url, "invite", "list", "--requested", actor="admin@pb.example")
    assert login not in other.output


def test_the_demo_link_opens_the_form(engine, tree, session_factory):
    login = tree.client_a_users[2]
    with session_factory.begin() as session:
        invite_user(session, tree.system, login)
        found = demo_acceptance_link(session, "http://127.0.0.1:8000", client_ref="CA")
    assert found is not None and found[0] == login
    path = found[1].removeprefix("http://127.0.0.1:8000")
    with _client(engine) as client:
        page = client.get(path)
    assert page.status_code == 200 and login in page.text
