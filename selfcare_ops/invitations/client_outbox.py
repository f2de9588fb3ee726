"""One client's share of the outbox: how many of its invitation mails wait, and delivering
only those.

The outbox is one queue for the whole tree; a dashboard open on a client must not send the
mail other clients queued (issue 16). The messages of a client are those of its invitations
(``invitations.organisation_id``, the client of the invited user).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, require_mail_delivery, require_organisation
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import Invitation, OutboundMessage, utcnow

if TYPE_CHECKING:
    from selfcare_ops.config import Settings
    from selfcare_ops.mail.deliver import DeliveryReport


def _client(session: Session, actor: Actor, client_ref: str, action: str) -> int:
    client = get_client(session, client_ref)
    require_organisation(actor, client, action)
    require_mail_delivery(actor)
    return client.id


def queued_for_client(session: Session, actor: Actor, client_ref: str) -> int:
    """How many of ``client_ref``'s invitation mails are due in the outbox now."""
    client_id = _client(session, actor, client_ref, "read the queued mail of")
    mine = select(Invitation.message_id).where(Invitation.organisation_id == client_id)
    query = (
        select(func.count())
        .select_from(OutboundMessage)
        .where(
            OutboundMessage.status == "queued",
            OutboundMessage.next_attempt_at <= utcnow(),
            OutboundMessage.id.in_(mine),
        )
    )
    return int(session.scalar(query) or 0)


def deliver_client(
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    *,
    actor: Actor,
    client_ref: str,
    **options: Any,
) -> DeliveryReport:
    """Deliver the due invitation mails of ``client_ref`` only, as ``actor`` (who must see the
    client and may deliver mail); audited like every delivery."""
    from selfcare_ops.invitations.service import deliver_and_redact

    with session_factory() as session:
        client_id = _client(session, actor, client_ref, "deliver the mail of")
    return deliver_and_redact(
        session_factory, settings, actor=actor, organisation_ids=[client_id], **options
    )
