"""The outbox: a message is written in the same transaction as the change that causes it.

Delivery is a separate step (claim, send through a transport, record the result); nothing is
lost if it fails and nothing is sent twice if two deliverers run.
"""

from __future__ import annotations

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
