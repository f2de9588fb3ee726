"""Invitation mails: language choice, HTML and text parts, escaping, the link, branding, and
delivery of the rendered mail to a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import email
import socket
import threading
from datetime import date
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from selfcare_ops.accounts.users import NewUser
from selfcare_ops.config import Settings
from selfcare_ops.invitations import acceptance
from selfcare_ops.invitations import admin as admin_invitations
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail.content import message_content
from selfcare_ops.mail.render import MailBranding, MailTemplate, format_date, render
from selfcare_ops.store.models import Organisation, OutboundMessage, User

JP = "jbubu@virginietelecom.sewan.eu"
XSS = "<script>alert(1)</script>"


def _invite(session_factory, actor, login, **kwargs):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, actor, login, **kwargs)
    with session_factory() as session:
        return result, message_content(session.get(OutboundMessage, result.message_id))


def _set_language(session_factory, *, user=None, org=None, language):
    with session_factory.begin() as session:
        if user:
            session.execute(update(User).where(User.login == user).values(language=language))
        if org:
            session.execute(
                update(Organisation).where(Organisation.ref == org).values(language=language)
            )


def test_french_by_default_from_the_operator(session_factory, tree):
    _, message = _invite(session_factory, tree.system, JP)
    assert message.language == "fr"
    assert message.subject == "Votre accès au Selfcare de Virginie Télécom"
    assert "Bonjour Jean-Pierre Bubu," in message.text
    assert 'lang="fr"' in message.html


def test_language_of_the_user_wins(session_factory, tree):
    _set_language(session_factory, org="CA", language="fr")
    _set_language(session_factory, user=JP, language="en")
    _, message = _invite(session_factory, tree.system, JP)
    assert message.language == "en"
    assert message.subject == "Your access to the Virginie Télécom Selfcare"
    assert "Hello Jean-Pierre Bubu," in message.text


def test_language_of_the_client_then_of_the_partner(session_factory, tree):
    _set_language(session_factory, org="PA", language="en")
    _, message = _invite(session_factory, tree.system, JP)
    assert message.language == "en"  # client has none: its partner's
    _set_language(session_factory, org="CA", language="fr")
    with session_factory.begin() as session:
        again = invitations.resend(session, tree.system, JP)
    with session_factory() as session:
        assert session.get(OutboundMessage, again.message_id).language == "fr"


def test_user_text_is_escaped_in_html_and_kept_in_text(session_factory, tree):
    with session_factory.begin() as session:
        created = invitations.add_user(
            session,
            tree.system,
            "CA",
            NewUser(XSS, "O'Brien & <b>Co</b>", email="x@virginie.example"),
        )
        message = message_content(session.get(OutboundMessage, created.invitation.message_id))
        assert "<script>" not in message.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
        assert "O&#x27;Brien &amp; &lt;b&gt;Co&lt;/b&gt;" in message.html
        assert f"Bonjour {XSS} O'Brien & <b>Co</b>," in message.text


def test_organisation_names_are_escaped_too(session_factory, tree):
    with session_factory.begin() as session:
        session.execute(
            update(Organisation).where(Organisation.ref == "CA").values(name="A<i>B</i> & Cie")
        )
    _, message = _invite(session_factory, tree.system, JP)
    assert "A&lt;i&gt;B&lt;/i&gt; &amp; Cie" in message.html
    assert "A<i>B</i> & Cie" in message.subject


def test_the_link_is_the_portal_url_and_the_token(session_factory, tree, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_PORTAL_URL", "https://portail.example.net/")
    result, message = _invite(session_factory, tree.system, JP)
    link = f"https://portail.example.net/invitation/{result.token}"
    assert link in message.text
    assert f'href="{link}"' in message.html


def test_operator_default_colours_without_personalisation(session_factory, tree):
    _, message = _invite(session_factory, tree.system, JP)
    assert "background:#E2001A" in message.html.replace("#e2001a", "#E2001A")


def test_client_branding_colours_are_used(session_factory, tree):
    branding = pytest.importorskip("selfcare_ops.branding")
    with session_factory.begin() as session:
        branding.set_branding(
            session, tree.system, "CA", primary_color="#003366", text_color="#FFFFFF"
        )
    _, message = _invite(session_factory, tree.system, JP)
    html = message.html.lower()
    assert "background:#003366" in html and "color:#ffffff" in html


def test_admin_mails_in_both_cases_and_languages(session_factory, tree):
    _set_language(session_factory, org="PB", language="en")
    with session_factory.begin() as session:
        new = admin_invitations.invite_admin(session, tree.system, "boss@beta.example", "PB")
        existing = admin_invitations.invite_admin(
            session, tree.system, "alice@virginie.example", "CA"
        )
    with session_factory() as session:
        new_mail = message_content(session.get(OutboundMessage, new.invitation.message_id))
        existing_mail = message_content(
            session.get(OutboundMessage, existing.invitation.message_id)
        )
    assert new_mail.language == "en"
    assert "You do not have an account yet" in new_mail.text
    assert new.invitation.token in new_mail.text
    assert existing_mail.language == "fr"
    assert "vos accès ne changent pas" in existing_mail.text
    assert "/invitation/" not in existing_mail.text  # nothing to accept: access is granted


def test_bulk_and_single_render_the_same_mail(session_factory, tree):
    with session_factory.begin() as session:
        single = invitations.invite_user(session, tree.system, JP)
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="CA")
        bulk_invitations.apply_bulk(session, tree.system, plan)
    with session_factory() as session:
        one = message_content(session.get(OutboundMessage, single.message_id))
        other = message_content(
            session.scalar(select(OutboundMessage).where(OutboundMessage.id != single.message_id))
        )
    assert one.subject == other.subject
    tail = one.html.split("Pour activer")[1].split("/invitation/")[0]
    assert tail in other.html


def mail_links(text: str) -> int:
    """How many times a normal mail shows its link (the same template, a plain name)."""
    frame = {"organisation_name": "Org", "expires_on": "demain", "admin_url": "https://a/admin/"}
    plain = MailTemplate("invitation_user", "fr", frame).fill(
        {"first_name": "A", "last_name": "B", "link": "https://portal.example/i/t"}
    )
    return plain.text.count("https://portal.example/i/t")


def test_template_rendering_unit():
    frame = {"organisation_name": "Org", "expires_on": "demain", "admin_url": "https://a/admin/"}
    mail = render(
        "invitation_user", "xx", frame=frame, person={"first_name": "A", "last_name": "B"}
    )
    assert mail.language == "fr"  # unknown language -> the default
    bad = MailTemplate(
        "invitation_user",
        "en",
        {**frame, "branding": MailBranding(primary_color="red;x:y", logo_url="javascript:x")},
    ).fill({"first_name": "A\nBcc: evil@example.com"})
    assert "red;x:y" not in bad.html and "javascript:" not in bad.html
    assert "\n" not in bad.subject
    assert "Hello A Bcc: evil@example.com" in bad.text
    # A slot marker in an organisation's name cannot shift the slots.
    marked = MailTemplate(
        "invitation_user", "fr", {**frame, "organisation_name": "Org\x1elink\x1e"}
    ).fill({"first_name": "A", "last_name": "B", "link": "https://portal.example/i/t"})
    assert marked.text.count("https://portal.example/i/t") == mail_links(marked.text)
    assert "Orglink" in marked.text
    assert format_date(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert format_date(date(2026, 12, 24), "en") == "December 24, 2026"


# --- over real SMTP --------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = _Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, recorder
    controller.stop()


def test_invitation_delivered_over_smtp_carries_link_language_and_escaping(
    session_factory, tree, smtp
):
    deliver = pytest.importorskip("selfcare_ops.mail.deliver")
    port, recorder = smtp
    _set_language(session_factory, org="CA", language="en")
    branding = pytest.importorskip("selfcare_ops.branding")
    with session_factory.begin() as session:
        branding.set_branding(session, tree.system, "CA", primary_color="#0A5C36")
    with session_factory.begin() as session:
        created = invitations.add_user(
            session, tree.system, "CA", NewUser(XSS, "Évian", email="evian@virginie.example")
        )
    settings = dataclasses.replace(
        Settings.from_env(), mail_transport="smtp", smtp_host="127.0.0.1", smtp_port=port
    )
    report = deliver.deliver(session_factory, settings)
    assert report.sent == 1
    ((recipients, message),) = recorder.messages
    assert recipients == ["evian@virginie.example"]
    assert message["Subject"] == "Your access to the Virginie Télécom Selfcare"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"{settings.portal_url}/invitation/{created.invitation.token}"
    assert link in text and f'href="{link}"' in html
    assert f"Hello {XSS} Évian," in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "background:#0a5c36" in html.lower()  # the client's own colour
    with session_factory() as session:
        assert acceptance.inspect_token(session, created.invitation.token).login == created.login
