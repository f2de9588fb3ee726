"""The outbox: a message is written in the same transaction as the change that causes it.

Delivery is a separate step (claim, send through a transport, record the result); nothing is
lost if it fails and nothing is sent twice if two deliverers run.

A message is plain (its own subject and bodies) or templated (``template_id`` names a stored
template, ``person`` holds the recipient's slot values, filled when it is delivered): see
:mod:`selfcare_ops.mail.content`.
"""

from __future__ import annotations

import json
from datetime import datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from sqlalchemy.orm import Session

from selfcare_ops.errors import MailError
from selfcare_ops.store.bulk_sql import insert_columns, insert_rows
from selfcare_ops.store.models import OutboundMessage, utcnow


def _check_content(message_key: str, message: dict[str, Any]) -> None:
    if message.get("template_id") is None and (
        message.get("subject") is None or message.get("body_text") is None
    ):
        raise MailError(
            f"The message {message_key} has neither a subject and a text body nor a stored "
            "template: nothing could be sent."
        )


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    subject: str | None = None,
    body_text: str | None = None,
    body_html: str | None = None,
    language: str,
    message_key: str,
    template_id: int | None = None,
    person: dict[str, Any] | None = None,
) -> OutboundMessage:
    """Queue one message in the caller's transaction; ``message_key`` is unique per message.

    Plain: ``subject`` and ``body_text`` (``body_html`` optional). Templated: ``template_id``
    (see :func:`~selfcare_ops.mail.content.store_template`) and the ``person`` slot values.
    """
    _check_content(
        message_key, {"template_id": template_id, "subject": subject, "body_text": body_text}
    )
    message = OutboundMessage(
        message_key=message_key,
        kind=kind,
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        template_id=template_id,
        person=person,
        language=language,
        status="queued",
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def json_strings(values: dict[str, str]) -> str:
    """``json.dumps(values)`` for a dictionary of strings, a few times faster (tested equal)."""
    return (
        "{"
        + ", ".join(f"{_json_string(key)}: {_json_string(value)}" for key, value in values.items())
        + "}"
    )


def _person_json(person: dict[str, Any] | None) -> str | None:
    """A message's slot values as the JSON text the column stores (once per row, here)."""
    if person is None:
        return None
    if all(type(value) is str for value in person.values()):
        return json_strings(person)
    return json.dumps(person)


def enqueue_many(
    session: Session, messages: list[dict[str, Any]], *, now: datetime | None = None
) -> list[int]:
    """Queue many messages at once; returns their ids in the order given.

    Each dictionary has the keyword arguments of :func:`enqueue`. For bulk senders (thousands of
    invitations, :mod:`selfcare_ops.invitations.issuing`): one bulk insert
    (:func:`~selfcare_ops.store.bulk_sql.insert_rows`) instead of one flush per message, with each
    ``person`` serialised to JSON here (the JSON type's own processing costs more per row).
    """
    if not messages:
        return []
    for m in messages:
        _check_content(m["message_key"], m)
    now = now or utcnow()
    rows = [
        {
            "message_key": m["message_key"],
            "kind": m["kind"],
            "recipient": m["recipient"],
            "subject": m.get("subject"),
            "body_text": m.get("body_text"),
            "body_html": m.get("body_html"),
            "template_id": m.get("template_id"),
            "person": _person_json(m.get("person")),
            "language": m.get("language") or "fr",
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    return insert_rows(
        session, OutboundMessage.__table__, rows, return_ids=True, driver_ready=("person",)
    )


#: The columns :func:`enqueue_templated` takes, one value per message each.
TEMPLATED_COLUMNS = ("message_key", "kind", "recipient", "template_id", "person", "language")


def enqueue_templated(
    session: Session, columns: dict[str, list[Any]], *, now: datetime | None = None
) -> list[int]:
    """Queue many templated messages given column by column; returns their ids in order.

    ``columns`` holds :data:`TEMPLATED_COLUMNS` (``person``: the slot values of each
    recipient). What :func:`enqueue_many` does for templated mails, without a dictionary per
    message: bulk invitations (:mod:`selfcare_ops.invitations.issuing`) queue 100,000 at once.
    """
    keys = columns["message_key"]
    for key, template_id in zip(keys, columns["template_id"], strict=True):
        if template_id is None:
            _check_content(key, {"template_id": None})
    now = now or utcnow()
    given = {name: columns[name] for name in TEMPLATED_COLUMNS}
    given["person"] = [_person_json(person) for person in columns["person"]]
    given["language"] = [language or "fr" for language in columns["language"]]
    return insert_columns(
        session,
        OutboundMessage.__table__,
        given,
        same={
            "subject": None,
            "body_text": None,
            "body_html": None,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
        count=len(keys),
        return_ids=True,
        driver_ready=("person",),
    )
