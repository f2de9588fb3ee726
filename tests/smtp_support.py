"""A real SMTP server on loopback (aiosmtpd) for the tests that send mail.

It records what it accepts and answers chosen recipients with fixed replies (4xx, 5xx); a test
can stop and start it again on the same port. The ``smtp_server`` fixture lives in conftest.
"""

from __future__ import annotations

import dataclasses
import email
import socket
import threading
from collections import Counter
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from selfcare_ops.config import Settings

MAIL_FROM = "Selfcare Télécom <no-reply@selfcare.test>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    """aiosmtpd handler: keeps every accepted message; chosen recipients get a fixed reply."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpt_replies: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 2.0.0 Message accepted"

    def keys(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["X-Selfcare-Message-Key"]) for m in self.messages)


class SmtpServer:
    """A real SMTP server on loopback that a test can stop and start again on the same port."""

    def __init__(self, **options) -> None:
        self.port = free_port()
        self.handler = Recorder()
        self.options = options  # passed to aiosmtpd's SMTP: TLS, authentication
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self.options
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


def smtp_settings(port: int) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        mail_transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from=MAIL_FROM,
    )
