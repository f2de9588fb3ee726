"""How a queued message leaves: the MIME bytes, and the transports that carry them.

A transport sends one message at a time and says how it went by raising one of three errors:
:class:`TemporaryDeliveryError` (try again later: 4xx, dropped connection),
:class:`PermanentDeliveryError` (the server refused for good: 5xx, with its reason) or
:class:`TransportUnavailableError` (nothing can be sent now: the server cannot be reached, the
login is refused, the Maildir folder cannot be written; the whole run stops and the messages stay
queued). The deliverer (:mod:`selfcare_ops.mail.deliver`) gives each of its workers one
transport and turns these outcomes into outbox states. :class:`MemoryTransport` keeps the
messages in a list, so that tests drive the production loop without a server.

The MIME text is built by hand rather than with :class:`email.message.EmailMessage` because the
standard builder costs about a millisecond per message, more than the SMTP exchange itself; the
output is a plain, standard multipart/alternative with quoted-printable UTF-8 parts (7-bit clean,
no line longer than 76 characters) and RFC 2047 headers, which :mod:`email` parses back in the
tests. The Message-ID is derived from the row's ``message_key``: a resend is recognisable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mailbox
import re
import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from selfcare_ops.config import Settings
from selfcare_ops.errors import MailError
from selfcare_ops.mail.content import message_content
from selfcare_ops.mail.inline import InlinePart, related_part
from selfcare_ops.store.models import utcnow

SMTP_TIMEOUT_SECONDS = 30.0
CRLF = "\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")
#: UTF-8 bytes per encoded word: 45 bytes are 60 base64 characters, 72 with the markers.
_WORD_BYTES = 45


class TemporaryDeliveryError(MailError):
    """This message could not be sent now; trying again later may work (4xx, dropped line)."""


class PermanentDeliveryError(MailError):
    """The server refused this message for good (5xx); ``str()`` carries the server's reason."""


class TransportUnavailableError(MailError):
    """Nothing can be sent through this transport now; the run stops, messages stay queued."""


@dataclass(frozen=True)
class OutgoingMail:
    """What a transport needs from one outbox row (a plain copy: no session is attached)."""

    id: int
    message_key: str
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    language: str
    attempts: int = 0
    #: Images of the HTML part (its ``cid:`` references), sent as multipart/related.
    inline: tuple[InlinePart, ...] = field(default=(), repr=False)

    @classmethod
    def from_row(cls, row: Any, template: Any = None) -> OutgoingMail:
        """From an :class:`~selfcare_ops.store.models.OutboundMessage` or a row with its columns.

        A templated row is filled from ``template`` (its stored template, see
        :func:`~selfcare_ops.mail.content.message_content`).
        """
        values = row._mapping if hasattr(row, "_mapping") else row
        get = values.get if isinstance(values, Mapping) else lambda name: getattr(values, name)
        content = message_content(values, template)
        return cls(
            id=get("id"),
            message_key=get("message_key"),
            recipient=get("recipient"),
            subject=content.subject,
            body_text=content.text,
            body_html=content.html,
            language=content.language,
            attempts=get("attempts") or 0,
            inline=content.inline,
        )


# --- MIME ------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Header values never carry a line break (no header injection through user text)."""
    return " ".join(text.split()) if ("\n" in text or "\r" in text) else text


def _encoded_header(name: str, value: str) -> str:
    """``Name: value``, non-ASCII text as RFC 2047 encoded words folded over several lines.

    Done by hand: :class:`email.header.Header` costs most of a millisecond per subject.
    """
    value = _one_line(value)
    if value.isascii() and len(name) + len(value) < 996:
        return f"{name}: {value}"
    data = value.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never split a character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return f"{name}: " + (CRLF + " ").join(words)


def _qp_body(text: str) -> str:
    # Encoded with bare LF line ends (binascii then also breaks long lines with LF), then every
    # line end made CRLF: a literal CR in the text would be encoded, so none is left over.
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n").decode("ascii")


@lru_cache(maxsize=16)
def sender_address(mail_from: str) -> str:
    """The bare address of ``SELFCARE_OPS_MAIL_FROM`` (the SMTP envelope sender)."""
    return parseaddr(mail_from)[1] or mail_from


@lru_cache(maxsize=16)
def _message_id_domain(mail_from: str) -> str:
    return sender_address(mail_from).rpartition("@")[2] or "selfcare-ops.local"


def message_id(message_key: str, mail_from: str) -> str:
    """The Message-ID of a row: the same for every send of the row, so a resend is recognisable.

    The key itself may hold characters a Message-ID cannot, so it is hashed; the domain is the
    sender's.
    """
    digest = hashlib.sha256(message_key.encode("utf-8")).hexdigest()[:40]
    return f"<selfcare.{digest}@{_message_id_domain(mail_from)}>"


@lru_cache(maxsize=16)
def from_header(mail_from: str) -> str:
    """The From header value, with a non-ASCII display name encoded."""
    name, address = parseaddr(mail_from)
    return formataddr((name, address or mail_from), charset="utf-8")


_last_date: tuple[int, str] = (0, "")


def _date_header(date: datetime | None) -> str:
    """RFC 5322 date; the current one is formatted once per second (thousands a second)."""
    global _last_date
    if date is not None:
        return format_datetime(date)
    now = utcnow()
    second = int(now.timestamp())
    if _last_date[0] != second:
        _last_date = (second, format_datetime(now.replace(microsecond=0)))
    return _last_date[1]


def build_mime(mail: OutgoingMail, mail_from: str, *, date: datetime | None = None) -> bytes:
    """The RFC 5322 bytes (CRLF line ends) of ``mail``: text, plus HTML as an alternative.

    The HTML comes with its inline images in a multipart/related part when it has any.
    """
    digest = hashlib.sha256(mail.message_key.encode("utf-8")).hexdigest()
    headers = [
        f"From: {from_header(mail_from)}",
        f"To: {_one_line(mail.recipient)}",
        _encoded_header("Subject", mail.subject),
        f"Date: {_date_header(date)}",
        f"Message-ID: <selfcare.{digest[:40]}@{_message_id_domain(mail_from)}>",
        _encoded_header("X-Selfcare-Message-Key", mail.message_key),
        f"Content-Language: {_one_line(mail.language)}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-generated",
    ]
    text_part = (
        'Content-Type: text/plain; charset="utf-8"'
        + CRLF
        + "Content-Transfer-Encoding: quoted-printable"
        + CRLF
        + CRLF
        + _qp_body(mail.body_text)
    )
    if mail.body_html is None:
        return (CRLF.join(headers) + CRLF + text_part).encode("utf-8")
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    boundary = f"=_selfcare_{digest[:24]}"
    html_part = (
        'Content-Type: text/html; charset="utf-8"'
        + CRLF
        + "Content-Transfer-Encoding: quoted-printable"
        + CRLF
        + CRLF
        + _qp_body(mail.body_html)
    )
    if mail.inline:
        html_part = related_part(html_part, mail.inline, f"=_selfcare_related_{digest[:24]}")
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    body = (
        f"--{boundary}{CRLF}{text_part}{CRLF}"
        f"--{boundary}{CRLF}{html_part}{CRLF}"
        f"--{boundary}--{CRLF}"
    )
    return (CRLF.join(headers) + CRLF + CRLF + body).encode("utf-8")


def smtp_data(message: bytes) -> bytes:
    """``message`` as the SMTP DATA payload: leading dots doubled, ended by a lone dot."""
    stuffed = message
    if stuffed.startswith(b".") or b"\n." in stuffed:
        stuffed = _LEADING_DOT.sub(b"..", stuffed)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


# --- transports ------------------------------------------------------------------------------


class Transport(ABC):
    """Sends messages one by one; one instance per worker, used by one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def label(self) -> str:
        """Where the messages go, for messages and reports."""

    @abstractmethod
    def send(self, mail: OutgoingMail) -> None:
        """Send ``mail`` or raise one of this module's delivery errors."""

    def close(self) -> None:
        """Release the connection, if any; the transport may be used again afterwards."""
        return None

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.rstrip(".")


class _NotStarted(Exception):
    """The connection failed before the message's data was handed over: resending is safe."""


class SmtpTransport(Transport):
    """One SMTP connection, opened on the first message and reused for the next ones.

    Settings: ``SELFCARE_OPS_SMTP_HOST``, ``_PORT``, ``_SSL`` (implicit TLS), ``_STARTTLS``,
    ``_USER`` and ``_PASSWORD`` (login when a user is set), ``SELFCARE_OPS_MAIL_FROM``.
    """

    def __init__(self, settings: Settings, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        super().__init__(settings)
        self.timeout = timeout
        self.sender = sender_address(settings.mail_from)
        self._smtp: smtplib.SMTP | None = None

    @property
    def label(self) -> str:
        return f"SMTP server {self.settings.smtp_host}:{self.settings.smtp_port}"

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        host, port = settings.smtp_host, settings.smtp_port
        smtp: smtplib.SMTP | None = None
        try:
            if settings.smtp_ssl:
                context = ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=self.timeout)
            smtp.ehlo()
            if settings.smtp_starttls and not settings.smtp_ssl:
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailableError(
                        f"The {self.label} does not offer STARTTLS, which "
                        "SELFCARE_OPS_SMTP_STARTTLS requires; turn the setting off or use "
                        "SELFCARE_OPS_SMTP_SSL if the server speaks TLS from the start."
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            return smtp
        except smtplib.SMTPAuthenticationError as error:
            problem = (
                f"refused the login of {settings.smtp_user!r}: {error.smtp_code} "
                f"{_reply_text(error.smtp_error)}; check SELFCARE_OPS_SMTP_USER and "
                "SELFCARE_OPS_SMTP_PASSWORD"
            )
        except smtplib.SMTPNotSupportedError:
            problem = (
                "does not support login, which SELFCARE_OPS_SMTP_USER asks for; unset "
                "SELFCARE_OPS_SMTP_USER or enable TLS"
            )
        except ssl.SSLError as error:
            self._quit(smtp)
            raise TransportUnavailableError(
                f"The TLS handshake with the {self.label} failed: {_reason(error)}."
            ) from error
        except smtplib.SMTPConnectError as error:
            problem = f"refused the connection: {error.smtp_code} {_reply_text(error.smtp_error)}"
        except (OSError, smtplib.SMTPException) as error:
            problem = f"cannot be reached: {_reason(error)}"
        except BaseException:
            self._quit(smtp)
            raise
        self._quit(smtp)
        raise TransportUnavailableError(f"The {self.label} {problem}.")

    @staticmethod
    def _quit(smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._quit(smtp)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _refused(self, code: int, reply: bytes | str, what: str) -> MailError:
        """5xx: refused for good; anything else deferred (421 also closes the connection)."""
        text = f"{code} {_reply_text(reply)}".strip()
        if code == 421:
            self._drop()
        if 500 <= code < 600:
            return PermanentDeliveryError(f"The {self.label} refused {what}: {text}.")
        return TemporaryDeliveryError(f"The {self.label} deferred {what}: {text}.")

    def send(self, mail: OutgoingMail) -> None:
        recipient = mail.recipient.strip()
        if not recipient or any(c in recipient for c in "\r\n<> ,;") or "@" not in recipient:
            raise PermanentDeliveryError(f"The recipient {recipient!r} is not a mail address.")
        payload = smtp_data(build_mime(mail, self.settings.mail_from))
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._transaction(self._smtp, recipient, payload)
                return
            except _NotStarted as error:
                # The server closed an idle connection, say: nothing was handed over, so one
                # fresh connection is tried at once; if none can be opened, the server is down.
                self._drop()
                if attempt == 2:
                    raise TemporaryDeliveryError(
                        f"The connection to the {self.label} dropped before the message "
                        f"could be sent: {error}."
                    ) from error

    def _transaction(self, smtp: smtplib.SMTP, recipient: str, payload: bytes) -> None:
        options: list[str] = []
        if not recipient.isascii():
            if not smtp.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    f"The address {recipient!r} has non-ASCII characters and the "
                    f"{self.label} does not accept them (no SMTPUTF8)."
                )
            options.append("SMTPUTF8")
        handed_over = False
        try:
            code, reply = smtp.mail(self.sender, options)
            what = f"the sender {self.sender}"
            if code == 250:
                code, reply = smtp.rcpt(recipient)
                what = f"the recipient {recipient}"
            if code in (250, 251):
                # smtplib's data() is split in two so that a connection lost before the payload
                # is on its way (nothing handed over) can be told from one lost after it.
                smtp.putcmd("data")
                code, reply = smtp.getreply()
                what = f"the message to {recipient}"
            if code == 354:
                handed_over = True
                smtp.send(payload)
                code, reply = smtp.getreply()
                if code != 250:
                    raise self._refused(code, reply, what)
                return
            if code != 421:
                try:
                    smtp.rset()
                except (OSError, smtplib.SMTPException):
                    self._drop()
            raise self._refused(code, reply, what)
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            self._drop()
            if not handed_over:
                raise _NotStarted(_reason(error)) from error
            raise TemporaryDeliveryError(
                f"The connection to the {self.label} dropped while sending to {recipient}: "
                f"{_reason(error)}."
            ) from error


class MaildirTransport(Transport):
    """Writes each message as one file into a Maildir folder (the embedded default)."""

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        super().__init__(settings)
        self.path = Path(path or settings.maildir)
        self._box: mailbox.Maildir | None = None

    @property
    def label(self) -> str:
        return f"Maildir folder {self.path}"

    def send(self, mail: OutgoingMail) -> None:
        data = build_mime(mail, self.settings.mail_from).replace(b"\r\n", b"\n")
        try:
            if self._box is None:
                # Maildir(create=True) makes only the last folder: a fresh data/ needs its parents.
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, factory=None, create=True)
            self._box.add(data)
        except OSError as error:
            raise TransportUnavailableError(
                f"The {self.label} cannot be written: {_reason(error)}."
            ) from error

    def close(self) -> None:
        self._box = None


class MemoryTransport(Transport):
    """Keeps each message in ``sent`` instead of sending it: the production loop, no server.

    ``answer(mail)``, when given, runs first and may raise what a real transport raises (or
    anything else, to play a crash); the message is kept only when it returns.
    """

    def __init__(
        self,
        settings: Settings,
        sent: list[OutgoingMail] | None = None,
        answer: Callable[[OutgoingMail], None] | None = None,
    ) -> None:
        super().__init__(settings)
        self.sent = [] if sent is None else sent
        self.answer = answer

    @property
    def label(self) -> str:
        return "memory transport"

    def send(self, mail: OutgoingMail) -> None:
        if self.answer is not None:
            self.answer(mail)
        self.sent.append(mail)


def make_transport(settings: Settings) -> Transport:
    """The transport ``SELFCARE_OPS_MAIL_TRANSPORT`` names (``maildir`` or ``smtp``)."""
    if settings.mail_transport == "smtp":
        return SmtpTransport(settings)
    if settings.mail_transport == "maildir":
        return MaildirTransport(settings)
    raise MailError(
        f"The mail transport {settings.mail_transport!r} is unknown: use 'smtp' or 'maildir'."
    )
