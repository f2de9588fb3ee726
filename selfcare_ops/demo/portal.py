"""For ``make demo``: one demo user's working acceptance link, to open after ``make serve``.

The demo's mails were delivered and their links blanked (a delivered link is never kept), so
the demo sends one user of the demo client a fresh link (the previous one is superseded, like
any resend) and prints it on the local server's address.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.access import system_actor
from selfcare_ops.demo import DEMO_CLIENT_REF
from selfcare_ops.mail.links import INVITATION_PATH
from selfcare_ops.store.models import Organisation, User

LOCAL_PORTAL = "http://127.0.0.1:8000"
SERVE_COMMAND = "make serve"


def demo_acceptance_link(
    session: Session, base: str = LOCAL_PORTAL, *, client_ref: str = DEMO_CLIENT_REF
) -> tuple[str, str] | None:
    """(login, link) of a new invitation for one invited demo user; None when none is left."""
    from selfcare_ops.invitations.service import resend

    login = session.scalar(
        select(User.login)
        .join(Organisation, Organisation.id == User.client_id)
        .where(
            Organisation.ref == client_ref,
            User.status == "invited",
            User.email.isnot(None),
        )
        .order_by(User.sort_name, User.id)
        .limit(1)
    )
    if login is None:
        return None
    result = resend(session, system_actor(session), login)
    return login, f"{base.rstrip('/')}{INVITATION_PATH}{result.token}"
