"""Templated outbox messages: a rendered template stored once, per-person slot values per
message, read back through one function."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, func, insert, select, text

from selfcare_ops.errors import MailError
from selfcare_ops.mail.content import load_templates, message_content, store_template
from selfcare_ops.mail.outbox import enqueue
from selfcare_ops.mail.render import PERSON_FIELDS, MailTemplate
from selfcare_ops.models import MailTemplateRecord, OutboundMessage, utcnow

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
    assert MailTemplate.fill_stored(
        template.subject, template.text, template.html, template.language, person
    ) == template.fill(person)
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
