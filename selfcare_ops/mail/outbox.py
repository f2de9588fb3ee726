"""The outbox: a message is written in the same transaction as the change that causes it.

Delivery is a separate step (claim, send through a transport, record the result); nothing is
lost if it fails and nothing is sent twice if two deliverers run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..models import OutboundMessage, utcnow


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    subject: str,
    body_text: str,
    body_html: str | None,
    language: str,
    message_key: str,
) -> OutboundMessage:
    """Queue one message in the caller's transaction; ``message_key`` is unique per message."""
    message = OutboundMessage(
        message_key=message_key,
        kind=kind,
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        language=language,
        status="queued",
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def enqueue_many(session: Session, messages: list[dict[str, Any]]) -> list[int]:
    """Queue many messages in one round trip; returns their ids in the order given.

    Each dictionary has the keyword arguments of :func:`enqueue`. For bulk senders (thousands of
    invitations): one multi-row INSERT instead of one flush per message.
    """
    if not messages:
        return []
    now = utcnow()
    rows = [
        {
            "message_key": m["message_key"],
            "kind": m["kind"],
            "recipient": m["recipient"],
            "subject": m["subject"],
            "body_text": m["body_text"],
            "body_html": m.get("body_html"),
            "language": m.get("language") or "fr",
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    table = OutboundMessage.__table__
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())
