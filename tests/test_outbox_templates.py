"""Templated outbox messages: one stored template per (kind, language, organisation), per-person
slot values per message, read back through one function, redacted once sent. (Delivery of
templated messages over SMTP is tested with the SMTP server in test_mail_delivery.py.)"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import event, exc, func, insert, select, text, update

from selfcare_ops.config import get_settings
from selfcare_ops.errors import MailError
from selfcare_ops.invitations import admin as admin_invitations
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations import service as invitations
from selfcare_ops.invitations.issuing import MailFrames, Target, issue
from selfcare_ops.mail.content import load_templates, message_content, store_template
from selfcare_ops.mail.outbox import enqueue
from selfcare_ops.mail.render import PERSON_FIELDS, MailTemplate
from selfcare_ops.store.models import Invitation, MailTemplateRecord, OutboundMessage, User, utcnow

JP = "jbubu@virginietelecom.sewan.eu"
XSS = "<script>alert(1)</script>"
FRAME = {"organisation_name": "Org & <Co>", "expires_on": "demain", "admin_url": "https://a/admin/"}


# --- the template itself -----------------------------------------------------------------------


def test_a_stored_template_fills_like_the_rendered_one():
    template = MailTemplate("invitation_user", "en", FRAME)
    person = {"first_name": XSS, "last_name": "O'Brien", "login": "x@y", "link": "https://l/1"}
    stored = MailTemplate.stored(
        template.kind, template.language, template.subject, template.text, template.html
    )
    assert stored.fill(person) == template.fill(person)
    assert stored.sha256 == template.sha256 == MailTemplate("invitation_user", "en", FRAME).sha256
    assert MailTemplate("invitation_user", "fr", FRAME).sha256 != template.sha256
    assert template.slots == ("full_name", "login", "link")
    assert set(template.slots) <= set(PERSON_FIELDS)
    assert "&lt;Co&gt;" in template.html and "\x1elink\x1e" in template.html


def test_store_template_is_get_or_create(session_factory):
    template = MailTemplate("invitation_user", "fr", FRAME)
    with session_factory.begin() as session:
        first = store_template(session, template)
    with session_factory.begin() as session:
        again = store_template(session, MailTemplate("invitation_user", "fr", FRAME))
        other = store_template(session, MailTemplate("invitation_user", "en", FRAME))
    assert first == again != other
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MailTemplateRecord)) == 2
        assert load_templates(session, [first, None])[first].html == template.html


# --- writing -----------------------------------------------------------------------------------


def test_a_thousand_invitations_store_one_template_per_kind_language_and_client(
    session_factory, engine, tree, add_client
):
    add_client("BIG", 1000, english_every=10)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "mail_templates" in statement:
            statements.append(statement)

    with session_factory.begin() as session:
        invitations.invite_user(session, tree.system, JP)
        plan = bulk_invitations.plan_bulk(session, tree.system, client_ref="BIG")
        event.listen(engine, "before_cursor_execute", seen)
        try:
            outcome = bulk_invitations.apply_bulk(session, tree.system, plan)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert outcome.invited == 1000
    # Two templates (fr, en) over two chunks of 500: a lookup, an insert and a read back each.
    assert len(statements) <= 6
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MailTemplateRecord)) == 3
        messages = session.scalars(select(OutboundMessage)).all()
        assert len(messages) == 1001
        assert all(m.template_id is not None for m in messages)
        assert all(m.subject is None and m.body_text is None for m in messages)
        per_template = Counter(
            (m.template.kind, m.template.language, m.recipient.split("@")[1]) for m in messages
        )
        assert per_template == {
            ("invitation_user", "fr", "big.example"): 900,
            ("invitation_user", "en", "big.example"): 100,
            ("invitation_user", "fr", "virginie.example"): 1,
        }
        languages = {m.language for m in messages if m.recipient == "u10@big.example"}
        assert languages == {"en"}
        # Only the slots the mail shows, cleaned as the renderer cleans them.
        person = next(m.person for m in messages if m.recipient == "u7@big.example")
        assert set(person) == {"full_name", "login", "link"}
        assert person["full_name"] == "User 7" and person["login"] == "u7@big.fr"
        mail = message_content(next(m for m in messages if m.recipient == "u7@big.example"))
        assert "Bonjour User 7," in mail.text and person["link"] in mail.text


def test_a_rolled_back_batch_does_not_leave_a_stale_template_id(session_factory, tree):
    settings = get_settings()
    now = utcnow()
    with session_factory() as session:
        target = Target.for_user(session.scalar(select(User).where(User.login == JP)))
        frames = MailFrames(session, settings, now + timedelta(days=settings.invitation_ttl_days))
        issue(session, tree.system, [target], now=now, frames=frames)
        session.rollback()  # the template row goes with it; the frames must not reuse its id
        (issued,) = issue(session, tree.system, [target], now=now, frames=frames)
        session.commit()
    with session_factory() as session:
        message = session.get(OutboundMessage, issued.message_id)
        assert message.template is not None
        assert issued.link in message_content(message).text
        assert session.scalar(select(func.count()).select_from(MailTemplateRecord)) == 1


def test_single_enqueue_of_a_plain_message_still_works_and_content_is_required(session_factory):
    with session_factory.begin() as session:
        message = enqueue(
            session,
            kind="notice",
            recipient="a@b.example",
            subject="Bonjour",
            body_text="Texte",
            body_html=None,
            language="fr",
            message_key="plain-1",
        )
        assert message.template_id is None and message.person is None
        mail = message_content(message)
        assert (mail.subject, mail.text, mail.html) == ("Bonjour", "Texte", None)
        with pytest.raises(MailError, match="neither a subject"):
            enqueue(
                session,
                kind="notice",
                recipient="a@b.example",
                subject="Bonjour",
                language="fr",
                message_key="plain-2",
            )
    with session_factory() as session:
        # SQL NULL, not JSON 'null': a plain message has no slot values at all.
        assert (
            session.execute(
                text("SELECT count(*) FROM outbound_messages WHERE person IS NULL")
            ).scalar()
            == 1
        )
    with pytest.raises(exc.IntegrityError), session_factory.begin() as session:
        session.execute(
            insert(OutboundMessage).values(
                message_key="empty",
                kind="notice",
                recipient="a@b.example",
                language="fr",
                status="queued",
                attempts=0,
                next_attempt_at=utcnow(),
                created_at=utcnow(),
            )
        )


# --- redaction ---------------------------------------------------------------------------------


def test_templated_and_plain_sent_links_are_redacted(session_factory, tree, engine):
    with session_factory.begin() as session:
        result = invitations.invite_user(session, tree.system, JP)
        old_link = f"https://portal.example/invitation/{'x' * 43}"
        enqueue(  # an invitation queued before templates existed: the link is in its bodies
            session,
            kind="invitation",
            recipient="old@virginie.example",
            subject="Ancienne invitation",
            body_text=f"Lien : {old_link}",
            body_html=f'<a href="{old_link}">Activer</a>',
            language="fr",
            message_key="invitation-old",
        )
        admin = admin_invitations.invite_admin(session, tree.system, "alice@virginie.example", "CA")
    with session_factory.begin() as session:
        assert invitations.redact_sent_links(session) == 0  # still queued: kept
        session.execute(update(OutboundMessage).values(status="sent", sent_at=utcnow()))
    with session_factory.begin() as session:
        assert invitations.redact_sent_links(session) == 2
    with session_factory.begin() as session:
        assert invitations.redact_sent_links(session) == 0  # nothing left to blank
    with session_factory() as session:
        message = session.get(OutboundMessage, result.message_id)
        assert message.person["link"].endswith("/invitation/[redacted]")
        mail = message_content(message)
        assert result.token not in mail.text and result.token not in mail.html
        assert "/invitation/[redacted]" in mail.text
        old = session.scalar(
            select(OutboundMessage).where(OutboundMessage.message_key == "invitation-old")
        )
        assert "x" * 43 not in old.body_text + old.body_html
        # A notice without a link never kept one: nothing to redact there.
        notice = session.get(OutboundMessage, admin.invitation.message_id)
        assert "link" not in notice.person
        assert session.get(Invitation, result.invitation_id).status == "pending"
    with engine.connect() as connection:
        dump = " ".join(
            str(value)
            for table in (OutboundMessage.__table__, MailTemplateRecord.__table__)
            for row in connection.execute(select(table))
            for value in row
        )
    assert result.token not in dump
