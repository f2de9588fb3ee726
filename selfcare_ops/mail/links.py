"""Invitation links inside stored mails, and their blanking once a mail is final.

A queued mail must hold its raw link until it leaves; once it reaches a final state (sent,
failed, cancelled) nobody needs the link any more, and a copy of the database must open no
account. Whoever finalises a message (the deliverer, a revocation, a superseding invitation)
blanks it with these helpers in the same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from selfcare_ops.store.models import OutboundMessage
from selfcare_ops.support.batching import chunks

INVITATION_PATH = "/invitation/"
REDACTED = INVITATION_PATH + "[redacted]"
_LINK = re.compile(re.escape(INVITATION_PATH) + r"[A-Za-z0-9_-]{20,}")

_TABLE = OutboundMessage.__table__


def redact_text(text: str | None) -> str | None:
    """``text`` with every invitation token replaced by ``[redacted]``."""
    if not text or INVITATION_PATH not in text:
        return text
    return _LINK.sub(REDACTED, text)


def redact_person(person: Any) -> dict[str, Any] | None:
    """A templated message's slot values without a live link (``None`` if nothing changes)."""
    if isinstance(person, str):
        person = json.loads(person)
    if not isinstance(person, dict):
        return None
    link = person.get("link")
    if not link or not _LINK.search(str(link)):
        return None
    return {**person, "link": _LINK.sub(REDACTED, str(link))}


def redacted_changes(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The column updates that blank the links of ``rows`` (id, person, body_text, body_html)."""
    changes: list[dict[str, Any]] = []
    for row in rows:
        person = redact_person(row.person) if row.person is not None else None
        if person is not None:
            changes.append({"mid": row.id, "person": person})
            continue
        text, html = redact_text(row.body_text), redact_text(row.body_html)
        if text != row.body_text or html != row.body_html:
            changes.append({"mid": row.id, "body_text": text, "body_html": html})
    return changes


def blank_links(connection: Connection, message_ids: Iterable[int]) -> int:
    """Blank the links of these messages, whatever their state; returns how many changed."""
    ids = sorted(set(message_ids))
    changed = 0
    for chunk in chunks(ids, 1000):
        rows = connection.execute(
            select(_TABLE.c.id, _TABLE.c.person, _TABLE.c.body_text, _TABLE.c.body_html).where(
                _TABLE.c.id.in_(chunk)
            )
        ).all()
        changes = redacted_changes(rows)
        apply_changes(connection, changes)
        changed += len(changes)
    return changed


def apply_changes(connection: Connection, changes: list[dict[str, Any]]) -> None:
    """Write what :func:`redacted_changes` computed (two executemany at most)."""
    templated = [c for c in changes if "person" in c]
    plain = [c for c in changes if "person" not in c]
    where = _TABLE.c.id == bindparam("mid")
    if templated:
        connection.execute(
            update(_TABLE).where(where).values(person=bindparam("person")), templated
        )
    if plain:
        connection.execute(
            update(_TABLE)
            .where(where)
            .values(body_text=bindparam("body_text"), body_html=bindparam("body_html")),
            plain,
        )
