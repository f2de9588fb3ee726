"""What an outbox message says, whether it was queued plain or from a stored template.

A bulk invitation stores its rendered template once (``mail_templates``) and, per message, only
the recipient's slot values (``outbound_messages.person``): 100,000 invitations then write
100,000 small rows instead of 100,000 copies of the same HTML. Everything that reads a
message's subject or bodies (delivery, previews, benchmarks, tests) goes through
:func:`message_content`, so a templated message reads exactly like a plain one.

A template's inline images (its logo, :mod:`selfcare_ops.mail.inline`) are not stored with it
either: its HTML names them by content hash and they are read from ``assets`` with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, object_session

from selfcare_ops.errors import MailError
from selfcare_ops.mail.inline import InlinePart, load_inline_parts, parts_for, referenced
from selfcare_ops.mail.render import DEFAULT_LANGUAGE, MailTemplate, RenderedMail
from selfcare_ops.store.bulk_sql import upsert_insert
from selfcare_ops.store.models import MailTemplateRecord, utcnow

TEMPLATES = MailTemplateRecord.__table__


def _value(row: Any, name: str) -> Any:
    """A column of an ORM object, a result row or a mapping (``None`` when absent)."""
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def stored_template(record: Any, images: Mapping[str, InlinePart] | None = None) -> MailTemplate:
    """A :class:`MailTemplate` from a ``mail_templates`` row (ORM object or result row).

    ``images`` holds the inline images its HTML refers to (see :func:`load_templates`); an ORM
    object reads them through its own session when they are not given.
    """
    if isinstance(record, MailTemplate):
        return record
    html = _value(record, "body_html")
    if images is None:
        images = {}
        session = object_session(record) if isinstance(record, MailTemplateRecord) else None
        if session is not None and referenced(html):
            images = load_inline_parts(session, referenced(html))
    return MailTemplate.stored(
        _value(record, "kind") or "",
        _value(record, "language") or DEFAULT_LANGUAGE,
        _value(record, "subject"),
        _value(record, "body_text"),
        html,
        parts_for(html, images),
    )


def message_content(message: Any, template: Any = None) -> RenderedMail:
    """Subject, text and HTML of one outbox message, plain or templated.

    ``message`` is an :class:`~selfcare_ops.store.models.OutboundMessage`, a result row or a mapping
    with its columns. A templated message needs its template: ``template`` (a ``mail_templates``
    row or a :class:`MailTemplate`, which a caller reading many messages caches by id), else
    the ORM object's ``template`` relationship.
    """
    language = _value(message, "language") or DEFAULT_LANGUAGE
    if _value(message, "template_id") is None:
        return RenderedMail(
            subject=_value(message, "subject") or "",
            text=_value(message, "body_text") or "",
            html=_value(message, "body_html"),
            language=language,
        )
    if template is None:
        template = _value(message, "template")
    if template is None:
        raise MailError(
            f"The outbox message {_value(message, 'id')} uses the mail template "
            f"{_value(message, 'template_id')}, which was not loaded with it."
        )
    mail = stored_template(template).fill(_value(message, "person") or {})
    return RenderedMail(
        subject=mail.subject, text=mail.text, html=mail.html, language=language, inline=mail.inline
    )


def load_templates(session: Session | Connection, ids: Any) -> dict[int, MailTemplate]:
    """The stored templates of these ids with their inline images, ready to fill.

    One query for the templates, one more for their images when they show any.
    """
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(TEMPLATES).where(TEMPLATES.c.id.in_(wanted))).all()
    images = load_inline_parts(session, (sha for row in rows for sha in referenced(row.body_html)))
    return {row.id: stored_template(row, images) for row in rows}


def store_template(session: Session, template: MailTemplate) -> int:
    """The id of ``template`` in ``mail_templates``, inserted unless its content is there.

    Safe when two transactions store the same template at once: the second insert does
    nothing (on PostgreSQL it waits for the first to finish) and the row is read back.
    """
    digest = template.sha256
    query = select(TEMPLATES.c.id).where(TEMPLATES.c.sha256 == digest)
    found = session.scalar(query)
    if found is not None:
        return int(found)
    values = {
        "sha256": digest,
        "kind": template.kind,
        "language": template.language,
        "subject": template.subject,
        "body_text": template.text,
        "body_html": template.html,
        "created_at": utcnow(),
    }
    statement = upsert_insert(session.connection(), TEMPLATES)
    session.execute(statement.values(values).on_conflict_do_nothing())
    stored = session.scalar(query)
    assert stored is not None
    return int(stored)
