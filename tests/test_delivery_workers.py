"""The production delivery loop driven through the in-memory transport (no server needed).

``deliver()`` runs exactly as in production (worker threads, one recorder, group commits), each
worker owning a :class:`MemoryTransport` whose ``answer`` plays the server: accept, defer (4xx),
refuse (5xx), become unreachable, or crash mid-send. Every test runs on SQLite and PostgreSQL.
The same guarantees are checked against a real SMTP server in ``test_mail_delivery.py``.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from selfcare_ops.config import Settings
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail.deliver import RetryPolicy, deliver
from selfcare_ops.mail.mime import OutgoingMail
from selfcare_ops.mail.outbox import enqueue_many
from selfcare_ops.mail.transports import (
    MemoryTransport,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TransportUnavailableError,
)
from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.store.models import Invitation, OutboundMessage, utcnow

SETTINGS = Settings.from_env()
JP, VERO = "jbubu@virginietelecom.sewan.eu", "vduduche@virginietelecom.sewan.eu"


def queue(session_factory, count: int) -> list[str]:
    keys = [f"test:memory:{n}" for n in range(count)]
    with session_factory.begin() as session:
        enqueue_many(
            session,
            [
                {
                    "kind": "invitation",
                    "recipient": f"user{n}@client.test",
                    "subject": f"Invitation {n}",
                    "body_text": f"Bonjour {n}",
                    "body_html": None,
                    "language": "fr",
                    "message_key": key,
                }
                for n, key in enumerate(keys)
            ],
        )
    return keys


def memory(sent: list[OutgoingMail], answer=None):
    """A transport factory: every worker's transport keeps what it sends in ``sent``."""
    return lambda settings: MemoryTransport(settings, sent, answer)


def stored(session_factory) -> dict[str, OutboundMessage]:
    with session_factory() as session:
        return {row.message_key: row for row in session.scalars(select(OutboundMessage))}


def keys_of(sent: list[OutgoingMail]) -> Counter[str]:
    return Counter(mail.message_key for mail in sent)


def test_every_message_is_sent_once_and_recorded(session_factory):
    keys = queue(session_factory, 40)
    sent: list[OutgoingMail] = []
    report = deliver(
        session_factory, SETTINGS, connections=4, batch_size=7, transport_factory=memory(sent)
    )
    assert (report.sent, report.error, report.transport) == (40, None, "memory transport")
    assert keys_of(sent) == Counter(dict.fromkeys(keys, 1))
    rows = stored(session_factory).values()
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}
    assert all(row.sent_at is not None for row in rows)


def test_two_deliverers_at_once_send_each_message_once(db_url, session_factory):
    keys = queue(session_factory, 150)
    sent: list[OutgoingMail] = []
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def run() -> None:
        engine = make_engine(db_url)
        try:
            barrier.wait()
            factory = make_session_factory(engine)
            reports.append(
                deliver(
                    factory, SETTINGS, connections=3, batch_size=4, transport_factory=memory(sent)
                )
            )
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(report.sent for report in reports) == 150
    assert keys_of(sent) == Counter(dict.fromkeys(keys, 1))


def test_a_worker_dying_mid_send_leaves_at_most_its_one_message_to_send_again(session_factory):
    keys = queue(session_factory, 30)
    sent: list[OutgoingMail] = []

    def dies_after_sending_the_tenth(mail: OutgoingMail) -> None:
        if mail.message_key == keys[9]:
            sent.append(mail)  # the message left, then the worker died before saying so
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        deliver(
            session_factory,
            SETTINGS,
            connections=3,
            batch_size=5,
            transport_factory=memory(sent, dies_after_sending_the_tenth),
        )
    rows = stored(session_factory)
    # Only the message in flight stays claimed; what was claimed but not handed out went back.
    assert [key for key, row in rows.items() if row.status == "sending"] == [keys[9]]
    assert {row.status for key, row in rows.items() if key != keys[9]} <= {"sent", "queued"}
    assert all(row.claimed_by is None for row in rows.values() if row.status == "queued")

    # Within the lease nobody touches it; after it, the next run takes it over.
    assert deliver(session_factory, SETTINGS, transport_factory=memory(sent)).reclaimed == 0
    later = utcnow() + timedelta(minutes=6)
    report = deliver(session_factory, SETTINGS, now=later, transport_factory=memory(sent))
    assert report.reclaimed == 1
    assert "Taken over from the deliverer" in stored(session_factory)[keys[9]].last_error
    assert {row.status for row in stored(session_factory).values()} == {"sent"}
    assert keys_of(sent) == Counter({**dict.fromkeys(keys, 1), keys[9]: 2})


def test_deferrals_back_off_then_give_up_and_refusals_fail_with_the_reason(session_factory):
    keys = queue(session_factory, 3)
    sent: list[OutgoingMail] = []

    def server(mail: OutgoingMail) -> None:
        if mail.message_key == keys[1]:
            raise TemporaryDeliveryError("451 4.3.0 Mailbox temporarily unavailable")
        if mail.message_key == keys[2]:
            raise PermanentDeliveryError("550 5.1.1 No such user")

    retry = RetryPolicy(first_delay=timedelta(minutes=1), max_attempts=3)
    factory = memory(sent, server)
    started = utcnow()
    report = deliver(session_factory, SETTINGS, retry=retry, transport_factory=factory)
    assert (report.sent, report.retried, report.failed) == (1, 1, 1)
    assert {p["reason"]: p["outcome"] for p in report.problems} == {
        "451 4.3.0 Mailbox temporarily unavailable": "retry",
        "550 5.1.1 No such user": "failed",
    }
    rows = stored(session_factory)
    assert (rows[keys[2]].status, rows[keys[2]].last_error) == ("failed", "550 5.1.1 No such user")
    deferred = rows[keys[1]]
    assert (deferred.status, deferred.attempts, deferred.claimed_by) == ("queued", 1, None)
    assert deferred.next_attempt_at >= started + timedelta(minutes=1)

    # Not due yet: nothing happens. Later: the wait doubles. Then the last attempt gives up.
    assert deliver(session_factory, SETTINGS, retry=retry, transport_factory=factory).attempted == 0
    later = utcnow() + timedelta(minutes=2)
    assert (
        deliver(
            session_factory, SETTINGS, retry=retry, now=later, transport_factory=factory
        ).retried
        == 1
    )
    deferred = stored(session_factory)[keys[1]]
    assert deferred.attempts == 2 and deferred.next_attempt_at >= later + timedelta(minutes=2)
    report = deliver(
        session_factory,
        SETTINGS,
        retry=retry,
        now=later + timedelta(hours=1),
        transport_factory=factory,
    )
    assert report.failed == 1
    deferred = stored(session_factory)[keys[1]]
    assert (deferred.status, deferred.attempts) == ("failed", 3)
    assert (
        deferred.last_error
        == "Given up after 3 attempts: 451 4.3.0 Mailbox temporarily unavailable"
    )
    assert keys_of(sent) == Counter({keys[0]: 1})


def test_an_unavailable_transport_stops_the_run_and_keeps_the_rest_queued(session_factory):
    keys = queue(session_factory, 20)
    sent: list[OutgoingMail] = []

    def down_after_five(mail: OutgoingMail) -> None:
        if len(sent) >= 5:
            raise TransportUnavailableError("The relay cannot be reached: Connection refused.")

    report = deliver(
        session_factory, SETTINGS, connections=1, transport_factory=memory(sent, down_after_five)
    )
    assert (report.sent, report.error) == (5, "The relay cannot be reached: Connection refused.")
    rows = stored(session_factory)
    assert Counter(row.status for row in rows.values()) == Counter({"sent": 5, "queued": 15})
    # The unsent messages are untouched: no attempt counted, due at once, claimed by nobody.
    unsent = [row for row in rows.values() if row.status == "queued"]
    assert all(row.attempts == 0 and row.claimed_by is None for row in unsent)
    report = deliver(session_factory, SETTINGS, transport_factory=memory(sent))
    assert report.sent == 15
    assert keys_of(sent) == Counter(dict.fromkeys(keys, 1))


def test_limit_counts_messages_not_workers(session_factory):
    queue(session_factory, 10)
    sent: list[OutgoingMail] = []
    report = deliver(
        session_factory, SETTINGS, connections=4, limit=3, transport_factory=memory(sent)
    )
    assert (report.sent, len(sent)) == (3, 3)
    assert Counter(row.status for row in stored(session_factory).values()) == Counter(
        {"sent": 3, "queued": 7}
    )


def invite(session_factory, tree, login: str) -> Invitation:
    with session_factory.begin() as session:
        issued = invitations.invite_user(session, tree.system, login)
    with session_factory() as session:
        return session.get(Invitation, issued.invitation_id)


def test_a_revoked_invitation_is_never_mailed_and_a_bounce_blanks_the_link(session_factory, tree):
    revoked = invite(session_factory, tree, JP)
    with session_factory.begin() as session:
        invitations.revoke(session, tree.system, JP)
    refused = invite(session_factory, tree, VERO)
    sent: list[OutgoingMail] = []

    def server(mail: OutgoingMail) -> None:
        raise PermanentDeliveryError("550 5.1.1 No such user")

    report = deliver(session_factory, SETTINGS, transport_factory=memory(sent, server))
    assert (report.sent, report.failed) == (0, 1)
    with session_factory() as session:
        cancelled = session.get(OutboundMessage, revoked.message_id)
        bounced = session.get(Invitation, refused.id)
        message = session.get(OutboundMessage, refused.message_id)
    assert cancelled.status == "cancelled"
    assert (bounced.status, bounced.status_reason) == ("bounced", "550 5.1.1 No such user")
    assert message.status == "failed"
    assert "/invitation/[redacted]" in str(message.person or message.body_text)


def test_a_link_revoked_after_its_mail_was_claimed_is_never_handed_out(session_factory, tree):
    first = invite(session_factory, tree, VERO)
    second = invite(session_factory, tree, JP)
    sent: list[OutgoingMail] = []

    def revoke_the_next_one(mail: OutgoingMail) -> None:
        if mail.id == first.message_id:  # both mails are claimed by now; the second waits
            with session_factory.begin() as session:
                invitations.revoke(session, tree.system, JP)

    report = deliver(
        session_factory,
        SETTINGS,
        connections=1,
        transport_factory=memory(sent, revoke_the_next_one),
    )
    assert (report.sent, report.cancelled) == (1, 1)
    assert [mail.id for mail in sent] == [first.message_id]
    with session_factory() as session:
        message = session.get(OutboundMessage, second.message_id)
        assert (message.status, message.claimed_by) == ("cancelled", None)
        assert session.get(Invitation, second.id).status == "revoked"
