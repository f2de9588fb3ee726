"""Branded mails carry their logo inside (multipart/related, ``cid:``), or link it on request.

Mails are invited through the services, delivered over a real SMTP conversation (aiosmtpd on
127.0.0.1) or into a Maildir folder, and read back with :mod:`email`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import email
import io
import re
from email import policy
from email.message import EmailMessage

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from smtp_support import MAIL_FROM, smtp_settings
from sqlalchemy import func, select, update

from selfcare_ops.branding import set_branding
from selfcare_ops.cli import main
from selfcare_ops.config import Settings
from selfcare_ops.errors import ConfigurationError
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail.content import load_templates, message_content
from selfcare_ops.mail.deliver import deliver
from selfcare_ops.mail.inline import InlinePart, logo_content_id
from selfcare_ops.mail.mime import OutgoingMail, build_mime
from selfcare_ops.store.models import Asset, MailTemplateRecord, Organisation, OutboundMessage

JP = "jbubu@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
PORTAL = "https://montableaudebord.fr"


def png(width: int = 120, height: int = 40, colour: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def brand(session_factory, tree, ref: str = "CA", logo: bytes | None = None) -> Asset:
    """Give ``ref`` a logo; returns the stored asset (validated, re-encoded by branding)."""
    with session_factory.begin() as session:
        set_branding(session, tree.system, ref, logo=logo or png())
    with session_factory() as session:
        org = session.scalar(select(Organisation).where(Organisation.ref == ref))
        assert org is not None
        from selfcare_ops.store.models import BrandingSetting

        setting = session.get(BrandingSetting, org.id)
        asset = session.get(Asset, setting.logo_asset_id)
        session.expunge(asset)
        return asset


def invite(session_factory, tree, *logins: str) -> list[int]:
    ids = []
    with session_factory.begin() as session:
        for login in logins:
            ids.append(invitations.invite_user(session, tree.system, login).message_id)
    return ids


def related_of(message: EmailMessage) -> EmailMessage:
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "multipart/related"]
    return parts[1]


def check_inline_logo(message: EmailMessage, asset: Asset) -> str:
    """The related part holds the HTML, then the logo under its Content-ID; returns the HTML."""
    related = related_of(message)
    html_part, image = list(related.iter_parts())
    assert html_part.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == f"<logo-{asset.sha256[:24]}@selfcare>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == asset.content
    html = html_part.get_content()
    assert f'src="cid:logo-{asset.sha256[:24]}@selfcare"' in html
    assert "/assets/" not in html
    # The HTML is what the mail client shows: get_body prefers it, and it knows the image.
    assert message.get_body(("html",)).get_content() == html
    return html


def test_delivered_mail_carries_its_logo_inline_over_smtp(session_factory, tree, smtp_server):
    asset = brand(session_factory, tree)
    [message_id] = invite(session_factory, tree, JP)
    with session_factory() as session:
        queued = message_content(session.get(OutboundMessage, message_id))
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert (report.sent, report.failed, report.error) == (1, 0, None)
    [received] = smtp_server.messages
    html = check_inline_logo(received, asset)
    assert "Jean-Pierre Bubu" in html
    text = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == queued.text.replace("\r\n", "\n")  # the text part is unchanged
    assert "cid:" not in text and "/invitation/" in text


def test_the_image_is_stored_once_and_each_message_only_refers_to_it(session_factory, tree):
    asset = brand(session_factory, tree)
    invite(session_factory, tree, JP, VERO)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 1
        [template] = session.scalars(select(MailTemplateRecord)).all()
        assert f"cid:{logo_content_id(asset.sha256)}" in template.body_html
        assert "base64" not in template.body_html  # a reference, not the bytes
        messages = session.scalars(select(OutboundMessage)).all()
        assert {m.template_id for m in messages} == {template.id}
        assert all(m.body_html is None for m in messages)
        loaded = load_templates(session, [template.id])[template.id]
        assert [(p.sha256, p.mime, p.data) for p in loaded.inline] == [
            (asset.sha256, "image/png", asset.content)
        ]


def test_clients_with_the_same_image_share_its_content_id(session_factory, tree, smtp_server):
    logo = png(90, 30, "teal")
    asset = brand(session_factory, tree, "CA", logo)
    brand(session_factory, tree, "CB", logo)
    with session_factory.begin() as session:
        from selfcare_ops.accounts.users import NewUser, create_user

        beta = create_user(session, tree.system, "CB", NewUser("Bea", "Beta", email="b@beta.test"))
        login = beta.login
    invite(session_factory, tree, JP, login)
    deliver(session_factory, smtp_settings(smtp_server.port))
    assert len(smtp_server.messages) == 2
    for received in smtp_server.messages:
        check_inline_logo(received, asset)


def test_maildir_writes_the_same_mime(session_factory, tree, tmp_path):
    asset = brand(session_factory, tree)
    [message_id] = invite(session_factory, tree, JP)
    with session_factory() as session:  # what SMTP would carry: build_mime of the row
        row = session.get(OutboundMessage, message_id)
        template = load_templates(session, [row.template_id])[row.template_id]
        expected = build_mime(OutgoingMail.from_row(row, template), MAIL_FROM)
    folder = tmp_path / "outbox"
    maildir = dataclasses.replace(
        Settings.from_env(), mail_transport="maildir", maildir=folder, mail_from=MAIL_FROM
    )
    assert deliver(session_factory, maildir).sent == 1
    [file] = list((folder / "new").iterdir())
    written = file.read_bytes()
    check_inline_logo(email.message_from_bytes(written, policy=policy.default), asset)

    def without_date(data: bytes) -> list[bytes]:
        return [line for line in data.splitlines() if not line.startswith(b"Date: ")]

    assert without_date(written) == without_date(expected.replace(b"\r\n", b"\n"))


def test_url_mode_links_the_portal_copy(session_factory, tree, smtp_server, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_MAIL_LOGO", "url")
    asset = brand(session_factory, tree)
    invite(session_factory, tree, JP)
    deliver(session_factory, smtp_settings(smtp_server.port))
    [received] = smtp_server.messages
    assert received.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in received.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = received.get_body(("html",)).get_content()
    assert f'src="{PORTAL}/assets/{asset.sha256}.png"' in html and "cid:" not in html


def test_a_mail_without_logo_stays_multipart_alternative(session_factory, tree, smtp_server):
    invite(session_factory, tree, JP)
    deliver(session_factory, smtp_settings(smtp_server.port))
    [received] = smtp_server.messages
    assert [part.get_content_type() for part in received.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert "cid:" not in received.get_body(("html",)).get_content()


def test_text_of_a_client_cannot_attach_an_image(session_factory, tree):
    """A client's name that spells a cid: reference is escaped text: nothing is attached."""
    other = brand(session_factory, tree, "CB", png(30, 30, "green"))
    with session_factory.begin() as session:
        session.execute(
            update(Organisation)
            .where(Organisation.ref == "CA")
            .values(name=f'x" src="cid:logo-{other.sha256[:24]}@selfcare"')
        )
    [message_id] = invite(session_factory, tree, JP)
    with session_factory() as session:
        message = session.get(OutboundMessage, message_id)
        [template] = load_templates(session, [message.template_id]).values()
        assert template.inline == ()
        assert message_content(message).inline == ()


def test_mail_logo_setting(monkeypatch):
    assert Settings.from_env({}).mail_logo == "inline"
    assert Settings.from_env({"SELFCARE_OPS_MAIL_LOGO": " URL "}).mail_logo == "url"
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"SELFCARE_OPS_MAIL_LOGO": "attached"})
    assert str(info.value) == "SELFCARE_OPS_MAIL_LOGO must be 'inline' or 'url', not 'attached'."
    monkeypatch.setenv("SELFCARE_OPS_LANG", "fr")
    with pytest.raises(ConfigurationError, match="SELFCARE_OPS_MAIL_LOGO doit"):
        Settings.from_env({"SELFCARE_OPS_MAIL_LOGO": "attached"})


def test_unknown_mail_logo_mode_is_one_sentence_in_the_cli(db_url):
    env = {"SELFCARE_OPS_DATABASE_URL": db_url, "SELFCARE_OPS_MAIL_LOGO": "both"}
    result = CliRunner().invoke(main, ["mail", "status"], env={**env, "SELFCARE_OPS_LANG": "en"})
    assert result.exit_code != 0
    assert "SELFCARE_OPS_MAIL_LOGO must be 'inline' or 'url', not 'both'." in result.output
    assert "Traceback" not in result.output


# --- the MIME itself ---------------------------------------------------------------------------

LOGO = InlinePart("ab" * 32, "image/png", png(64, 20))


def sample(**changes) -> OutgoingMail:
    base = OutgoingMail(
        id=1,
        message_key="invitation:42:abc",
        recipient="jp.bubu@virginie.example",
        subject="Votre accès à Selfcare",
        body_text="Bonjour Jean-Pierre,\n",
        body_html=f'<img src="cid:{LOGO.content_id}" alt="Selfcare"><p>Bonjour</p>',
        language="fr",
        inline=(LOGO,),
    )
    return dataclasses.replace(base, **changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=st.text(max_size=400), data=st.binary(min_size=1, max_size=3000))
def test_related_mime_round_trips_and_stays_7bit(html, data):
    image = InlinePart("cd" * 32, "image/jpeg", data)
    raw = build_mime(sample(body_html=html, inline=(image,)), MAIL_FROM)
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=policy.default)
    related = related_of(message)
    html_part, part = list(related.iter_parts())
    assert html_part.get_content().replace("\r\n", "\n") == html.replace("\r\n", "\n").replace(
        "\r", "\n"
    )
    assert part["Content-ID"] == f"<{image.content_id}>" and part.get_content() == data


def test_related_part_boundary_differs_from_the_outer_one():
    raw = build_mime(sample(), MAIL_FROM).decode()
    boundaries = re.findall(r'boundary="([^"]+)"', raw)
    assert len(boundaries) == 2 and boundaries[0] != boundaries[1]
    assert not boundaries[1].startswith(boundaries[0])
