"""Outbox delivery against a real SMTP server (aiosmtpd on 127.0.0.1) and a Maildir folder.

Every database test runs on SQLite and PostgreSQL. The SMTP server is started and stopped by the
fixtures below; it records what it accepts, and answers chosen recipients with 4xx/5xx replies.
"""

from __future__ import annotations

import dataclasses
import email
import json
import mailbox
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smtp_support import MAIL_FROM, SmtpServer, free_port, smtp_settings
from sqlalchemy import select, update

from selfcare_ops.accounts.users import NewUser
from selfcare_ops.cli import main
from selfcare_ops.config import Settings
from selfcare_ops.invitations import service as invitations
from selfcare_ops.mail.deliver import RetryPolicy, deliver, mail_status
from selfcare_ops.mail.mime import OutgoingMail, build_mime, message_id
from selfcare_ops.mail.outbox import enqueue, enqueue_many
from selfcare_ops.store.db import make_engine, make_session_factory
from selfcare_ops.store.models import Organisation, OutboundMessage, User, utcnow

# --- the SMTP server (tests/smtp_support.py) -------------------------------------------------


def smtp_env(db_url: str, port: int) -> dict[str, str]:
    return {
        "SELFCARE_OPS_DATABASE_URL": db_url,
        "SELFCARE_OPS_MAIL_TRANSPORT": "smtp",
        "SELFCARE_OPS_SMTP_HOST": "127.0.0.1",
        "SELFCARE_OPS_SMTP_PORT": str(port),
        "SELFCARE_OPS_MAIL_FROM": MAIL_FROM,
    }


# --- helpers -----------------------------------------------------------------------------------


def queue(session_factory, count: int, *, prefix: str = "m", recipients=None) -> list[str]:
    """Queue ``count`` messages through the outbox; returns their message keys."""
    keys = []
    with session_factory.begin() as session:
        for number in range(count):
            key = f"test:{prefix}:{number}"
            recipient = recipients[number] if recipients else f"user{number}@client.test"
            enqueue(
                session,
                kind="invitation",
                recipient=recipient,
                subject=f"Invitation n°{number} à votre espace Selfcare",
                body_text=f"Bonjour Élodie,\n\nVotre lien : https://portal.test/i/{number}\n",
                body_html=(
                    f'<p>Bonjour &lt;Élodie&gt;,</p><p><a href="https://portal.test/i/{number}">'
                    "Activer mon compte</a></p>"
                ),
                language="fr",
                message_key=key,
            )
            keys.append(key)
    return keys


def rows(session_factory) -> dict[str, OutboundMessage]:
    with session_factory() as session:
        found = session.scalars(select(OutboundMessage)).all()
        return {row.message_key: row for row in found}


def statuses(session_factory) -> Counter[str]:
    return Counter(row.status for row in rows(session_factory).values())


def normalised(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def plain(message: EmailMessage) -> str:
    """The text part, with the wire's CRLF line ends read back as newlines."""
    return normalised(message.get_body(("plain",)).get_content())


# --- MIME --------------------------------------------------------------------------------------


def sample(**changes) -> OutgoingMail:
    base = OutgoingMail(
        id=1,
        message_key="invitation:42:abc",
        recipient="jp.bubu@virginie.example",
        subject="Votre accès à Selfcare",
        body_text="Bonjour Jean-Pierre,\n.\nÀ bientôt\n",
        body_html="<p>Bonjour Jean-Pierre</p>",
        language="fr",
    )
    return dataclasses.replace(base, **changes)


def test_mime_is_multipart_alternative_with_a_stable_message_id():
    first = email.message_from_bytes(build_mime(sample(), MAIL_FROM), policy=policy.default)
    again = email.message_from_bytes(build_mime(sample(), MAIL_FROM), policy=policy.default)
    other = email.message_from_bytes(
        build_mime(sample(message_key="invitation:43:abc"), MAIL_FROM), policy=policy.default
    )
    assert first.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in first.iter_parts()] == ["text/plain", "text/html"]
    assert plain(first) == "Bonjour Jean-Pierre,\n.\nÀ bientôt\n"
    assert first["Message-ID"] == again["Message-ID"] == message_id("invitation:42:abc", MAIL_FROM)
    assert other["Message-ID"] != first["Message-ID"]
    assert first["Message-ID"].endswith("@selfcare.test>")
    assert first["From"].addresses[0].display_name == "Selfcare Télécom"
    assert first["Subject"] == "Votre accès à Selfcare"


def test_mime_without_html_is_a_single_text_part():
    message = email.message_from_bytes(
        build_mime(sample(body_html=None), MAIL_FROM), policy=policy.default
    )
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Bonjour Jean-Pierre,\n.\nÀ bientôt\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(min_size=1, max_size=200),
    body=st.text(max_size=3000),
    html=st.text(max_size=500),
)
def test_mime_round_trips_any_text_and_never_breaks_a_header(subject, body, html):
    data = build_mime(sample(subject=subject, body_text=body, body_html=html), MAIL_FROM)
    assert data.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # only CRLF line ends, none bare
    message = email.message_from_bytes(data, policy=policy.default)
    header_names = [name.lower() for name in message]
    assert header_names.count("subject") == 1 and header_names.count("to") == 1
    assert "bcc" not in header_names
    assert message["Subject"].split() == subject.split()

    assert plain(message) == normalised(body)
    assert normalised(message.get_body(("html",)).get_content()) == normalised(html)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", ".", "..", ".x", "a.b", "x", " ."]), max_size=12))
def test_smtp_data_doubles_leading_dots_and_ends_with_a_lone_dot(lines):
    from selfcare_ops.mail.mime import smtp_data

    message = "\r\n".join(lines).encode()
    data = smtp_data(message)
    assert data.endswith(b"\r\n.\r\n")
    body_lines = data[: -len(b".\r\n")].split(b"\r\n")[:-1]
    assert all(line != b"." for line in body_lines)
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in body_lines)
    assert unstuffed == message.removesuffix(b"\r\n") or unstuffed == message


def test_retry_policy_doubles_then_caps():
    retry = RetryPolicy(first_delay=timedelta(minutes=1), max_delay=timedelta(minutes=10))
    assert [retry.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10)
    ]


# --- SMTP delivery -----------------------------------------------------------------------------


def test_messages_arrive_with_text_and_html_parts(session_factory, smtp_server):
    keys = queue(session_factory, 3)
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert (report.sent, report.retried, report.failed, report.error) == (3, 0, 0, None)
    assert sorted(smtp_server.handler.keys()) == sorted(keys)
    for message in smtp_server.messages:
        key = str(message["X-Selfcare-Message-Key"])
        number = key.rsplit(":", 1)[1]
        assert message["Message-ID"] == message_id(key, MAIL_FROM)
        assert message["To"] == f"user{number}@client.test"
        assert message["Subject"] == f"Invitation n°{number} à votre espace Selfcare"
        assert message.get_content_type() == "multipart/alternative"
        text = plain(message)
        html = message.get_body(("html",)).get_content()
        assert f"https://portal.test/i/{number}" in text and "Élodie" in text
        assert "&lt;Élodie&gt;" in html and f'href="https://portal.test/i/{number}"' in html
    stored = rows(session_factory)
    assert {row.status for row in stored.values()} == {"sent"}
    assert all(row.sent_at is not None and row.attempts == 1 for row in stored.values())
    assert all(row.claimed_by for row in stored.values())
    with session_factory() as session:
        assert mail_status(session) == {
            "queued": 0,
            "sending": 0,
            "sent": 3,
            "failed": 0,
            "cancelled": 0,
        }
    # Nothing is due any more: a second run sends nothing again.
    assert deliver(session_factory, smtp_settings(smtp_server.port)).sent == 0
    assert len(smtp_server.messages) == 3


XSS = "<script>alert(1)</script>"


def test_templated_invitations_arrive_filled_and_escaped(session_factory, tree, smtp_server):
    """Invitations store one template and per-person values; each mail is filled when sent."""
    with session_factory.begin() as session:
        session.execute(update(Organisation).where(Organisation.ref == "CA").values(language="fr"))
        created = invitations.add_user(
            session, tree.system, "CA", NewUser(XSS, "O'Brien & Co", email="xss@virginie.example")
        )
        for number in range(12):
            invitations.add_user(
                session,
                tree.system,
                "CA",
                NewUser("Élodie", f"N{number}", email=f"e{number}@virginie.example"),
            )
        session.execute(
            update(User).where(User.email == "e3@virginie.example").values(language="en")
        )
    queue(session_factory, 2, prefix="plain")
    with session_factory.begin() as session:  # resent in English: a second stored template
        english = invitations.resend(session, tree.system, email="e3@virginie.example")
    with session_factory() as session:
        stored = session.get(OutboundMessage, created.invitation.message_id)
        assert stored.template_id is not None and stored.subject is None
        assert stored.body_text is None and stored.body_html is None
        assert stored.person["full_name"] == f"{XSS} O'Brien & Co"  # raw: escaped when filled
    # Small claims over several connections: templates are read once, then served from the
    # run's cache.
    report = deliver(session_factory, smtp_settings(smtp_server.port), batch_size=3)
    # The first mail to e3 was superseded by the resend before it left: it is cancelled.
    assert (report.sent, report.failed, report.error) == (15, 0, None)
    with session_factory() as session:
        assert mail_status(session)["cancelled"] == 1
    received = {}
    for message in smtp_server.messages:
        received.setdefault(str(message["To"]), []).append(message)
    xss = received["xss@virginie.example"][0]
    text = plain(xss)
    html = xss.get_body(("html",)).get_content()
    assert xss["Subject"] == "Votre accès au Selfcare de Virginie Télécom"
    link = f"/invitation/{created.invitation.token}"
    assert link in text and f'{link}"' in html
    assert f"Bonjour {XSS} O'Brien & Co," in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Brien &amp; Co" in html
    for number in (n for n in range(12) if n != 3):  # e3's French mail was superseded
        french = received[f"e{number}@virginie.example"][0]
        assert f"Bonjour Élodie N{number}," in plain(french)
        assert f"Élodie N{number}" in french.get_body(("html",)).get_content()
    (again,) = received["e3@virginie.example"]
    assert again["Subject"] == "Your access to the Virginie Télécom Selfcare"
    assert "Hello Élodie N3," in plain(again) and english.token in plain(again)
    assert {str(m["Subject"]) for m in received["user0@client.test"]} == {
        "Invitation n°0 à votre espace Selfcare"
    }


def test_limit_sends_only_that_many(session_factory, smtp_server):
    queue(session_factory, 5)
    report = deliver(session_factory, smtp_settings(smtp_server.port), limit=2)
    assert report.sent == 2
    assert statuses(session_factory) == Counter({"queued": 3, "sent": 2})


def test_server_down_mid_batch_then_back_delivers_each_message_once(session_factory, smtp_server):
    keys = queue(session_factory, 12)
    stopped = []

    def stop_after_five(done: int, total: int) -> None:
        if done >= 5 and not stopped:
            stopped.append(done)
            smtp_server.stop()

    settings_ = smtp_settings(smtp_server.port)
    report = deliver(session_factory, settings_, connections=1, progress=stop_after_five)
    assert report.sent == 5
    assert report.error == (
        f"The SMTP server 127.0.0.1:{smtp_server.port} cannot be reached: Connection refused."
    )
    assert statuses(session_factory) == Counter({"sent": 5, "queued": 7})
    queued = [r for r in rows(session_factory).values() if r.status == "queued"]
    assert all(r.claimed_by is None for r in queued)
    # Messages never handed over are untouched (no attempt counted, due at once); the one whose
    # data was about to go when the line dropped, if any, counts an attempt and waits.
    retried = [r for r in queued if r.attempts]
    assert len(retried) <= 1 and len(retried) == report.retried
    assert all("dropped" in r.last_error for r in retried)

    smtp_server.start()
    again = deliver(session_factory, settings_, connections=1, now=utcnow() + timedelta(minutes=5))
    assert (again.sent, again.error) == (7, None)
    assert smtp_server.handler.keys() == Counter(dict.fromkeys(keys, 1))
    assert statuses(session_factory) == Counter({"sent": 12})


def test_server_down_with_several_connections_loses_nothing(session_factory, smtp_server):
    keys = queue(session_factory, 30)
    stopped = []

    def stop_after_ten(done: int, total: int) -> None:
        if done >= 10 and not stopped:
            stopped.append(done)
            smtp_server.stop()

    settings_ = smtp_settings(smtp_server.port)
    report = deliver(session_factory, settings_, connections=3, progress=stop_after_ten)
    assert report.error is not None and "cannot be reached" in report.error
    assert statuses(session_factory)["sending"] == 0
    smtp_server.start()
    # Messages whose connection dropped after the data went out wait for their backoff.
    deliver(session_factory, settings_, connections=3, now=utcnow() + timedelta(minutes=5))
    assert statuses(session_factory) == Counter({"sent": 30})
    received = smtp_server.handler.keys()
    assert set(received) == set(keys)
    stored = rows(session_factory)
    # A message can arrive twice only if its connection dropped while it was in flight.
    assert all(stored[key].attempts >= 2 for key, count in received.items() if count > 1)


def test_rejections_are_failed_with_the_reason_and_deferrals_retried(session_factory, smtp_server):
    recipients = ["ok@client.test", "unknown@client.test", "busy@client.test"]
    queue(session_factory, 3, recipients=recipients)
    smtp_server.handler.rcpt_replies = {
        "unknown@client.test": "550 5.1.1 <unknown@client.test>: Recipient address rejected",
        "busy@client.test": "451 4.3.0 Mailbox temporarily unavailable",
    }
    settings_ = smtp_settings(smtp_server.port)
    started = utcnow()
    report = deliver(session_factory, settings_)
    assert (report.sent, report.failed, report.retried) == (1, 1, 1)
    by_recipient = {row.recipient: row for row in rows(session_factory).values()}
    failed = by_recipient["unknown@client.test"]
    assert failed.status == "failed" and failed.attempts == 1
    assert "550 5.1.1 <unknown@client.test>: Recipient address rejected" in failed.last_error
    busy = by_recipient["busy@client.test"]
    assert busy.status == "queued" and busy.attempts == 1
    assert "451 4.3.0 Mailbox temporarily unavailable" in busy.last_error
    assert busy.next_attempt_at >= started + timedelta(minutes=1)
    assert {p["recipient"]: p["outcome"] for p in report.problems} == {
        "unknown@client.test": "failed",
        "busy@client.test": "retry",
    }

    # Not due yet: nothing happens. Later, still busy: the wait doubles.
    assert deliver(session_factory, settings_).attempted == 0
    later = utcnow() + timedelta(minutes=2)
    assert deliver(session_factory, settings_, now=later).retried == 1
    busy = {row.recipient: row for row in rows(session_factory).values()}["busy@client.test"]
    assert busy.attempts == 2
    assert busy.next_attempt_at >= later + timedelta(minutes=2)

    # Then the mailbox is back: sent once; the refused one is never tried again.
    smtp_server.handler.rcpt_replies.pop("busy@client.test")
    report = deliver(session_factory, settings_, now=utcnow() + timedelta(hours=1))
    assert (report.sent, report.attempted) == (1, 1)
    assert statuses(session_factory) == Counter({"sent": 2, "failed": 1})
    assert [str(m["To"]) for m in smtp_server.messages] == ["ok@client.test", "busy@client.test"]


def test_an_impossible_address_fails_and_an_international_one_is_sent(session_factory, smtp_server):
    queue(session_factory, 3, recipients=["not an address", "élodie@client.test", "ok@client.test"])
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert (report.sent, report.failed) == (2, 1)
    by_recipient = {row.recipient: row for row in rows(session_factory).values()}
    assert by_recipient["not an address"].status == "failed"
    assert "'not an address' is not a mail address" in by_recipient["not an address"].last_error
    assert by_recipient["élodie@client.test"].status == "sent"  # the server offers SMTPUTF8
    assert sorted(str(m["To"]) for m in smtp_server.messages) == [
        "ok@client.test",
        "élodie@client.test",
    ]


def test_a_server_closing_with_421_defers_that_message_and_the_rest_go_on(
    session_factory, smtp_server
):
    recipients = [f"user{n}@client.test" for n in range(6)]
    recipients[2] = "busy@client.test"
    queue(session_factory, 6, recipients=recipients)
    smtp_server.handler.rcpt_replies = {"busy@client.test": "421 4.7.0 Too busy, closing"}
    report = deliver(session_factory, smtp_settings(smtp_server.port), connections=1)
    assert (report.sent, report.retried, report.error) == (5, 1, None)
    busy = {r.recipient: r for r in rows(session_factory).values()}["busy@client.test"]
    assert busy.status == "queued" and "421 4.7.0 Too busy, closing" in busy.last_error
    assert len(smtp_server.messages) == 5


def test_temporary_failures_give_up_after_the_last_attempt(session_factory, smtp_server):
    queue(session_factory, 1, recipients=["busy@client.test"])
    smtp_server.handler.rcpt_replies = {"busy@client.test": "452 4.2.2 Mailbox full"}
    retry = RetryPolicy(max_attempts=2)
    settings_ = smtp_settings(smtp_server.port)
    assert deliver(session_factory, settings_, retry=retry).retried == 1
    report = deliver(session_factory, settings_, retry=retry, now=utcnow() + timedelta(hours=2))
    assert report.failed == 1
    (row,) = rows(session_factory).values()
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error.startswith("Given up after 2 attempts:")
    assert "452 4.2.2 Mailbox full" in row.last_error


def test_a_message_stuck_in_sending_is_taken_over_after_the_lease(session_factory, smtp_server):
    keys = queue(session_factory, 4)
    now = utcnow()
    with session_factory.begin() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.message_key.in_(keys[:2]))
            .values(
                status="sending", claimed_by="dead-host:1:x", claimed_at=now - timedelta(hours=1)
            )
        )
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.message_key == keys[2])
            .values(status="sending", claimed_by="live-host:2:y", claimed_at=now)
        )
    report = deliver(session_factory, smtp_settings(smtp_server.port))
    assert (report.sent, report.reclaimed) == (3, 2)
    stored = rows(session_factory)
    assert "Taken over from the deliverer dead-host:1:x" in stored[keys[0]].last_error
    # The live deliverer's message is left to it.
    assert stored[keys[2]].status == "sending" and stored[keys[2]].claimed_by == "live-host:2:y"
    assert smtp_server.handler.keys() == Counter({keys[0]: 1, keys[1]: 1, keys[3]: 1})


@pytest.mark.parametrize("connections", [1, 3])
def test_a_killed_deliverer_is_completed_by_the_next_run(
    db_url, session_factory, smtp_server, tree, connections
):
    keys = queue(session_factory, 20)
    env = {**os.environ, **smtp_env(db_url, smtp_server.port)}
    command = [
        sys.executable,
        "-c",
        "from selfcare_ops.cli import main; main()",
        "mail",
        "deliver",
        "--rate",
        "5",
        "--connections",
        str(connections),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(smtp_server.messages) < 3 and process.poll() is None:
            assert time.monotonic() < deadline, "the deliverer sent nothing within a minute"
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    left = statuses(session_factory)
    assert left["sending"] > 0 and left["sent"] < 20

    # Within the lease, nobody else touches the dead deliverer's claims ...
    settings_ = smtp_settings(smtp_server.port)
    report = deliver(session_factory, settings_)
    assert report.reclaimed == 0 and statuses(session_factory)["sending"] == left["sending"]
    # ... after it, the next run takes them over and completes the batch.
    later = utcnow() + timedelta(minutes=6)
    report = deliver(session_factory, settings_, now=later)
    assert report.reclaimed == left["sending"]
    assert statuses(session_factory) == Counter({"sent": 20})
    received = smtp_server.handler.keys()
    assert set(received) == set(keys)
    # At most the one message in flight per connection when the deliverer was killed arrives
    # twice (a connection gets its next message only once its previous outcome is committed).
    assert sum(count - 1 for count in received.values()) <= connections


def test_two_deliverers_at_once_send_each_message_once(db_url, session_factory, smtp_server):
    with session_factory.begin() as session:
        enqueue_many(
            session,
            [
                {
                    "kind": "invitation",
                    "recipient": f"user{n}@client.test",
                    "subject": f"Invitation {n}",
                    "body_text": f"Bonjour {n}",
                    "body_html": f"<p>Bonjour {n}</p>",
                    "language": "fr",
                    "message_key": f"test:concurrent:{n}",
                }
                for n in range(120)
            ],
        )
    settings_ = smtp_settings(smtp_server.port)
    barrier = threading.Barrier(2)
    reports = []
    errors = []

    def run() -> None:
        engine = make_engine(db_url)
        try:
            factory = make_session_factory(engine)
            barrier.wait()
            reports.append(deliver(factory, settings_, connections=2, batch_size=5))
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
    assert sum(report.sent for report in reports) == 120
    assert smtp_server.handler.keys() == Counter({f"test:concurrent:{n}": 1 for n in range(120)})
    assert statuses(session_factory) == Counter({"sent": 120})


def test_rate_and_arguments_are_checked(session_factory, smtp_server):
    from selfcare_ops.errors import MailError

    with pytest.raises(MailError, match="rate must be more than 0"):
        deliver(session_factory, smtp_settings(smtp_server.port), rate=0)
    with pytest.raises(MailError, match="limit must be at least 1"):
        deliver(session_factory, smtp_settings(smtp_server.port), limit=0)
    queue(session_factory, 3)
    report = deliver(session_factory, smtp_settings(smtp_server.port), rate=50)
    assert report.sent == 3


def test_the_one_connection_transport_classifies_every_answer(smtp_server):
    from selfcare_ops.mail.transports import (
        PermanentDeliveryError,
        SmtpTransport,
        TemporaryDeliveryError,
        TransportUnavailableError,
    )

    smtp_server.handler.rcpt_replies = {
        "gone@client.test": "550 5.1.1 No such user",
        "full@client.test": "452 4.2.2 Mailbox full",
    }
    transport = SmtpTransport(smtp_settings(smtp_server.port))
    with transport:
        transport.send(sample(recipient="ok@client.test"))
        with pytest.raises(PermanentDeliveryError, match="550 5.1.1 No such user"):
            transport.send(sample(recipient="gone@client.test"))
        with pytest.raises(TemporaryDeliveryError, match="452 4.2.2 Mailbox full"):
            transport.send(sample(recipient="full@client.test"))
        transport.send(sample(recipient="again@client.test"))  # the connection is still good
        smtp_server.stop()
        with pytest.raises(TransportUnavailableError, match="cannot be reached"):
            transport.send(sample(recipient="late@client.test"))
    assert [str(m["To"]) for m in smtp_server.messages] == ["ok@client.test", "again@client.test"]


@pytest.fixture
def tls_smtp_server(tmp_path, monkeypatch):
    """A server that requires STARTTLS and a login, with a certificate this run trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"relay", b"s3cret")
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    server = SmtpServer(tls_context=context, require_starttls=True, authenticator=authenticator)
    server.start()
    yield server
    server.stop()


def test_starttls_and_login_over_several_connections(session_factory, tls_smtp_server):
    keys = queue(session_factory, 6)
    settings_ = dataclasses.replace(
        smtp_settings(tls_smtp_server.port),
        smtp_starttls=True,
        smtp_user="relay",
        smtp_password="s3cret",
    )
    report = deliver(session_factory, settings_, connections=3)
    assert (report.sent, report.error) == (6, None)
    assert tls_smtp_server.handler.keys() == Counter(dict.fromkeys(keys, 1))

    queue(session_factory, 1, prefix="late")
    wrong = dataclasses.replace(settings_, smtp_password="wrong")
    report = deliver(session_factory, wrong)
    assert report.sent == 0
    assert report.error.startswith(
        f"The SMTP server 127.0.0.1:{tls_smtp_server.port} refused the login of 'relay': 535"
    )
    assert statuses(session_factory) == Counter({"sent": 6, "queued": 1})


# --- Maildir -----------------------------------------------------------------------------------


def test_maildir_transport_writes_one_file_per_message(session_factory, tmp_path):
    keys = queue(session_factory, 4)
    folder = tmp_path / "fresh-data" / "outbox"  # neither folder exists yet
    settings_ = dataclasses.replace(
        Settings.from_env(), mail_transport="maildir", maildir=folder, mail_from=MAIL_FROM
    )
    report = deliver(session_factory, settings_)
    assert report.sent == 4 and report.transport == f"Maildir folder {folder}"
    files = sorted((folder / "new").iterdir())
    assert len(files) == 4
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(str(m["X-Selfcare-Message-Key"]) for m in parsed) == sorted(keys)
    for message in parsed:
        assert message["Message-ID"] == message_id(
            str(message["X-Selfcare-Message-Key"]), MAIL_FROM
        )
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert len(mailbox.Maildir(folder)) == 4
    assert statuses(session_factory) == Counter({"sent": 4})


def test_an_unwritable_maildir_stops_and_keeps_the_messages(session_factory, tmp_path):
    queue(session_factory, 2)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the Maildir should be")
    settings_ = dataclasses.replace(
        Settings.from_env(), mail_transport="maildir", maildir=blocker / "outbox"
    )
    report = deliver(session_factory, settings_)
    assert report.sent == 0
    assert report.error.startswith(f"The Maildir folder {blocker / 'outbox'} cannot be written:")
    assert statuses(session_factory) == Counter({"queued": 2})


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_status_and_deliver_in_json(db_url, session_factory, smtp_server, tree):
    runner = CliRunner()
    env = smtp_env(db_url, smtp_server.port)
    empty = runner.invoke(main, ["mail", "status", "--json"], env=env)
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == {
        "queued": 0,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "cancelled": 0,
    }

    queue(session_factory, 3)
    smtp_server.handler.rcpt_replies = {"user2@client.test": "550 5.7.1 Relaying denied"}
    result = runner.invoke(main, ["mail", "deliver", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"], report["retried"], report["error"]) == (2, 1, 0, None)
    assert "550 5.7.1 Relaying denied" in report["problems"][0]["reason"]

    status = runner.invoke(main, ["mail", "status", "--json"], env=env)
    assert json.loads(status.stdout) == {
        "queued": 0,
        "sending": 0,
        "sent": 2,
        "failed": 1,
        "cancelled": 0,
    }
    text = runner.invoke(main, ["mail", "status"], env=env)
    assert text.exit_code == 0
    assert text.stdout.splitlines() == [
        "queued    0",
        "sending   0",
        "sent      2",
        "failed    1",
        "cancelled 0",
    ]


def test_cli_deliver_prints_a_summary_and_honours_limit(db_url, session_factory, smtp_server, tree):
    queue(session_factory, 3)
    result = CliRunner().invoke(
        main,
        ["mail", "deliver", "--limit", "2", "--rate", "100"],
        env=smtp_env(db_url, smtp_server.port),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"2 sent, 0 to retry, 0 failed through the SMTP server 127.0.0.1:{smtp_server.port}"
    )
    assert statuses(session_factory) == Counter({"sent": 2, "queued": 1})


def test_cli_deliver_with_the_server_down_says_so_in_one_sentence(db_url, session_factory, tree):
    queue(session_factory, 2)
    port = free_port()  # nothing listens there
    result = CliRunner().invoke(main, ["mail", "deliver"], env=smtp_env(db_url, port))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: The SMTP server 127.0.0.1:{port} cannot be reached: Connection refused. "
        "The unsent messages stay queued.\n"
    )
    assert "Traceback" not in result.output
    assert all(r.status == "queued" and r.attempts == 0 for r in rows(session_factory).values())


def test_cli_rejects_a_zero_rate(db_url):
    result = CliRunner().invoke(
        main, ["mail", "deliver", "--rate", "0"], env={"SELFCARE_OPS_DATABASE_URL": db_url}
    )
    assert result.exit_code == 2
    assert "--rate" in result.stderr


def test_cli_module_is_registered():
    from selfcare_ops.cli import COMMAND_MODULES

    assert "mail" in COMMAND_MODULES
    assert Path(__file__).name == "test_mail_delivery.py"
