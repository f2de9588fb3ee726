"""How a queued message leaves: the MIME bytes, and the transports that carry them.

A transport sends one message at a time and says how it went by raising one of three errors:
:class:`TemporaryDeliveryError` (try again later: 4xx, dropped connection),
:class:`PermanentDeliveryError` (the server refused for good: 5xx, with its reason) or
:class:`TransportUnavailableError` (nothing can be sent now: the server cannot be reached, the
login is refused, the Maildir folder cannot be written; the whole run stops and the messages stay
queued). :class:`SmtpPool` drives several SMTP connections from one thread and reports the same
outcomes as :class:`Finished` values. The deliverer (:mod:`selfcare_ops.mail.deliver`) turns
them into outbox states.

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
import selectors
import smtplib
import socket
import ssl
import time
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
#: How often the pool looks for connections whose reply is overdue.
DEADLINE_CHECK_SECONDS = 0.5
#: Called by a transport right before it hands a message over for good.
Hook = Callable[[], None] | None
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
    """Sends messages one by one; one instance per connection, used by one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def label(self) -> str:
        """Where the messages go, for messages and reports."""

    @abstractmethod
    def send(self, mail: OutgoingMail, *, before_handover: Hook = None) -> None:
        """Send ``mail`` or raise one of this module's delivery errors.

        ``before_handover`` is called right before the message is handed over for good (the SMTP
        DATA, the Maildir write): the deliverer waits there until the previous message's outcome
        is committed, while the connection work before it overlaps that commit.
        """

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
    """One SMTP connection, opened on the first message and reused for the batch.

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

    def _unreachable(self, error: BaseException) -> TransportUnavailableError:
        return TransportUnavailableError(f"The {self.label} cannot be reached: {_reason(error)}.")

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
        except smtplib.SMTPAuthenticationError as error:
            self._quit(smtp)
            raise TransportUnavailableError(
                f"The {self.label} refused the login of {settings.smtp_user!r}: "
                f"{error.smtp_code} {_reply_text(error.smtp_error)}; check "
                "SELFCARE_OPS_SMTP_USER and SELFCARE_OPS_SMTP_PASSWORD."
            ) from error
        except smtplib.SMTPNotSupportedError as error:
            self._quit(smtp)
            raise TransportUnavailableError(
                f"The {self.label} does not support login, which SELFCARE_OPS_SMTP_USER asks "
                "for; unset SELFCARE_OPS_SMTP_USER or enable TLS."
            ) from error
        except ssl.SSLError as error:
            self._quit(smtp)
            raise TransportUnavailableError(
                f"The TLS handshake with the {self.label} failed: {_reason(error)}."
            ) from error
        except smtplib.SMTPConnectError as error:
            self._quit(smtp)
            raise TransportUnavailableError(
                f"The {self.label} refused the connection: "
                f"{error.smtp_code} {_reply_text(error.smtp_error)}."
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            self._quit(smtp)
            raise self._unreachable(error) from error
        return smtp

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
        text = f"{code} {_reply_text(reply)}".strip()
        if code == 421:  # the server is closing this connection
            self._drop()
        if 500 <= code < 600:
            return PermanentDeliveryError(f"The {self.label} refused {what}: {text}.")
        return TemporaryDeliveryError(f"The {self.label} deferred {what}: {text}.")

    def _rset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def send(self, mail: OutgoingMail, *, before_handover: Hook = None) -> None:
        recipient = mail.recipient.strip()
        if not recipient or any(c in recipient for c in "\r\n<> ,;") or "@" not in recipient:
            raise PermanentDeliveryError(f"The recipient {recipient!r} is not a mail address.")
        payload = smtp_data(build_mime(mail, self.settings.mail_from))
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._transaction(self._smtp, recipient, payload, before_handover)
                return
            except _NotStarted as error:
                # The server closed an idle connection, say: nothing was handed over, so one
                # fresh connection is tried at once; if that fails too, the server is down.
                self._drop()
                if attempt == 2:
                    raise TemporaryDeliveryError(
                        f"The connection to the {self.label} dropped before the message "
                        f"could be sent: {error}."
                    ) from error

    def _transaction(
        self,
        smtp: smtplib.SMTP,
        recipient: str,
        payload: bytes,
        before_handover: Hook,
    ) -> None:
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
            if code != 250:
                self._rset(smtp)
                raise self._refused(code, reply, f"the sender {self.sender}")
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._rset(smtp)
                raise self._refused(code, reply, f"the recipient {recipient}")
            # smtplib's data() is split in two so that a connection lost before the payload is
            # on its way (nothing handed over) can be told from one lost after it (ambiguous).
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                self._rset(smtp)
                raise self._refused(code, reply, f"the message to {recipient}")
            if before_handover is not None:
                before_handover()
            handed_over = True
            smtp.send(payload)
            code, reply = smtp.getreply()
            if code != 250:
                raise self._refused(code, reply, f"the message to {recipient}")
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

    def send(self, mail: OutgoingMail, *, before_handover: Hook = None) -> None:
        data = build_mime(mail, self.settings.mail_from).replace(b"\r\n", b"\n")
        if before_handover is not None:
            before_handover()
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


def make_transport(settings: Settings) -> Transport:
    """The transport ``SELFCARE_OPS_MAIL_TRANSPORT`` names (``maildir`` or ``smtp``)."""
    if settings.mail_transport == "smtp":
        return SmtpTransport(settings)
    if settings.mail_transport == "maildir":
        return MaildirTransport(settings)
    raise MailError(
        f"The mail transport {settings.mail_transport!r} is unknown: use 'smtp' or 'maildir'."
    )


# --- several SMTP connections driven by one thread ----------------------------------------------


@dataclass
class Finished:
    """A message's outcome in :class:`SmtpPool`: ``sent``, ``failed``, ``retry`` or ``release``."""

    mail: OutgoingMail
    kind: str
    reason: str | None = None
    #: Order of the outcome in its pool; the owner reports the last one committed.
    ticket: int = 0


def classify_refusal(label: str, code: int, reply: bytes | str, what: str) -> tuple[str, str]:
    """(``failed``, reason) for a 5xx reply, (``retry``, reason) for anything else."""
    text = f"{code} {_reply_text(reply)}".strip()
    if 500 <= code < 600:
        return "failed", f"The {label} refused {what}: {text}."
    return "retry", f"The {label} deferred {what}: {text}."


class _Slot:
    """One connection of the pool and the transaction it is in."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.lines: list[bytes] = []
        self.stage = "idle"  # idle | mail | rcpt | data | ready | payload | rset
        self.mail: OutgoingMail | None = None
        self.payload = b""
        self.recipient = ""
        self.fresh_retry = False
        self.waiting = 0  # ticket of this connection's last outcome not yet committed
        self.deadline = 0.0


class SmtpPool:
    """Several SMTP connections driven by one thread with :mod:`selectors`.

    Threads would each pay for the interpreter lock and a hand-off per reply; one loop over
    non-overlapping transactions costs the client little more than one connection does, while
    the server works on several messages at once. Connections are opened (and TLS and login
    done) with :mod:`smtplib`, then driven directly: ``MAIL``, ``RCPT``, ``DATA``, payload.

    The owner calls :meth:`start` for idle connections, :meth:`poll` for finished messages, and
    :meth:`recorded` as their outcomes are committed: a connection whose previous outcome is not
    committed yet waits after ``354`` and hands its payload over only then, so at most one
    message per connection is ever sent but not recorded.
    """

    def __init__(
        self, settings: Settings, size: int, *, timeout: float = SMTP_TIMEOUT_SECONDS
    ) -> None:
        self.slots = [_Slot(SmtpTransport(settings, timeout=timeout)) for _ in range(size)]
        self.timeout = timeout
        self.sender = sender_address(settings.mail_from)
        self.label = self.slots[0].transport.label
        self.selector = selectors.DefaultSelector()
        self.error: str | None = None
        self._finished: list[Finished] = []
        self._tickets = 0
        self._registered = 0
        self._tls = settings.smtp_ssl or settings.smtp_starttls
        self._next_check = time.monotonic() + DEADLINE_CHECK_SECONDS
        self.recorded_upto = 0
        self.woken = False

    # --- owner API -------------------------------------------------------------------------

    def idle(self) -> int:
        return sum(1 for slot in self.slots if slot.stage == "idle")

    def busy(self) -> int:
        return len(self.slots) - self.idle()

    def waiting_for_record(self) -> bool:
        """A connection holds a message back until its previous outcome is committed."""
        return any(slot.stage == "ready" for slot in self.slots)

    def has_results(self) -> bool:
        """Outcomes are ready for :meth:`poll` to return (it will not wait)."""
        return bool(self._finished)

    def start(self, mail: OutgoingMail) -> None:
        """Begin sending ``mail`` on an idle connection (opened now if needed).

        Raises :class:`TransportUnavailableError` when no connection can be opened; the message
        was then not started. A recipient that cannot be an address finishes at once as failed.
        """
        slot = next(slot for slot in self.slots if slot.stage == "idle")
        self._begin(slot, mail, fresh_retry=False)

    def _begin(self, slot: _Slot, mail: OutgoingMail, *, fresh_retry: bool) -> None:
        recipient = mail.recipient.strip()
        if not recipient or any(c in recipient for c in "\r\n<> ,;") or "@" not in recipient:
            self._finished.append(
                Finished(mail, "failed", f"The recipient {recipient!r} is not a mail address.")
            )
            return
        if slot.sock is None:
            self._open(slot)
        options = ""
        if not recipient.isascii():
            smtp = slot.transport._smtp
            if smtp is None or not smtp.has_extn("smtputf8"):
                self._finished.append(
                    Finished(
                        mail,
                        "failed",
                        f"The address {recipient!r} has non-ASCII characters and the "
                        f"{self.label} does not accept them (no SMTPUTF8).",
                    )
                )
                return
            options = " SMTPUTF8"
        slot.mail, slot.recipient, slot.fresh_retry = mail, recipient, fresh_retry
        slot.payload = smtp_data(build_mime(mail, slot.transport.settings.mail_from))
        self._send(slot, f"MAIL FROM:<{self.sender}>{options}\r\n".encode(), "mail")

    def poll(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` seconds for replies; returns the messages that finished.

        :attr:`woken` tells whether the waker (see :meth:`add_waker`) fired meanwhile.
        """
        if not self._finished:
            timeout = max(0.0, min(timeout, self._next_check - time.monotonic()))
            ready: list[Any] = []
            if self._tls:  # TLS may hold decrypted bytes that the selector cannot see
                ready = [
                    slot
                    for slot in self.slots
                    if isinstance(slot.sock, ssl.SSLSocket) and slot.sock.pending()
                ]
            if not ready and self._registered:
                ready = [key.data for key, _ in self.selector.select(timeout)]
            elif not ready and timeout:
                time.sleep(timeout)
            for slot in ready:
                if slot is None:  # the waker: its owner drains it
                    self.woken = True
                else:
                    self._read(slot)
            now = time.monotonic()
            if now >= self._next_check:  # timeouts are seconds long: a look now and then
                self._next_check = now + DEADLINE_CHECK_SECONDS
                for slot in self.slots:
                    if slot.stage not in ("idle", "ready") and now > slot.deadline:
                        self._broken(slot, TimeoutError("no reply within the timeout"))
        finished, self._finished = self._finished, []
        return finished

    def recorded(self, upto: int) -> None:
        """Outcomes up to ticket ``upto`` are committed: connections waiting on them go on."""
        if upto <= self.recorded_upto:
            return
        self.recorded_upto = upto
        for slot in self.slots:
            if slot.waiting and slot.waiting <= self.recorded_upto:
                slot.waiting = 0
                if slot.stage == "ready":
                    self._hand_over(slot)

    def add_waker(self, sock: socket.socket) -> None:
        """A socket whose readability ends :meth:`poll` early (news from another thread)."""
        self.selector.register(sock, selectors.EVENT_READ, None)
        self._registered += 1

    def abort_unsent(self) -> list[OutgoingMail]:
        """Stop the transactions that have not handed their message over; returns those."""
        aborted = []
        for slot in self.slots:
            if slot.stage in ("mail", "rcpt", "data", "ready"):
                assert slot.mail is not None
                aborted.append(slot.mail)
                self._drop(slot)
        return aborted

    def close(self) -> None:
        for slot in self.slots:
            if slot.sock is not None and slot.stage == "idle":
                try:
                    slot.sock.sendall(b"QUIT\r\n")
                except OSError:
                    pass
            self._drop(slot)
        self.selector.close()

    # --- internals -------------------------------------------------------------------------

    def _open(self, slot: _Slot) -> None:
        smtp = slot.transport._connect()  # raises TransportUnavailableError
        slot.transport._smtp = smtp
        assert smtp.sock is not None
        slot.sock = smtp.sock
        slot.buffer, slot.lines = b"", []
        self.selector.register(slot.sock, selectors.EVENT_READ, slot)
        self._registered += 1

    def _drop(self, slot: _Slot) -> None:
        if slot.sock is not None:
            try:
                self.selector.unregister(slot.sock)
                self._registered -= 1
            except (KeyError, ValueError):
                pass
            slot.transport._drop()
            slot.sock = None
        slot.stage, slot.mail, slot.buffer, slot.lines = "idle", None, b"", []

    def _send(self, slot: _Slot, data: bytes, stage: str) -> None:
        slot.stage = stage
        slot.deadline = time.monotonic() + self.timeout
        try:
            assert slot.sock is not None
            slot.sock.sendall(data)
        except OSError as error:
            self._broken(slot, error)

    def _finish(self, slot: _Slot, kind: str, reason: str | None = None) -> None:
        assert slot.mail is not None
        self._finished.append(self._ticketed(slot, Finished(slot.mail, kind, reason)))
        slot.mail = None

    def _ticketed(self, slot: _Slot, finished: Finished) -> Finished:
        self._tickets += 1
        finished.ticket = slot.waiting = self._tickets
        return finished

    def _hand_over(self, slot: _Slot) -> None:
        self._send(slot, slot.payload, "payload")

    def _read(self, slot: _Slot) -> None:
        if slot.sock is None:
            return
        try:
            data = slot.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as error:
            self._broken(slot, error)
            return
        if not data:
            self._broken(slot, ConnectionResetError("the server closed the connection"))
            return
        slot.buffer += data
        while slot.sock is not None and b"\n" in slot.buffer:
            line, _, slot.buffer = slot.buffer.partition(b"\n")
            line = line.rstrip(b"\r")
            slot.lines.append(line)
            if line[3:4] == b"-":
                continue
            lines, slot.lines = slot.lines, []
            try:
                code = int(lines[-1][:3])
            except ValueError:
                code = -1
            reply = b" ".join(item[4:] for item in lines)
            self._reply(slot, code, reply)

    def _refused(self, slot: _Slot, code: int, reply: bytes, what: str, *, rset: bool) -> None:
        kind, reason = classify_refusal(self.label, code, reply, what)
        self._finish(slot, kind, reason)
        if code == 421:  # the server closes this connection
            self._drop(slot)
        elif rset:
            self._send(slot, b"RSET\r\n", "rset")
        else:
            slot.stage = "idle"

    def _reply(self, slot: _Slot, code: int, reply: bytes) -> None:
        stage = slot.stage
        if stage == "mail":
            if code == 250:
                rcpt = f"RCPT TO:<{slot.recipient}>\r\n".encode()
                self._send(slot, rcpt, "rcpt")
            else:
                self._refused(slot, code, reply, f"the sender {self.sender}", rset=True)
        elif stage == "rcpt":
            if code in (250, 251):
                self._send(slot, b"DATA\r\n", "data")
            else:
                self._refused(slot, code, reply, f"the recipient {slot.recipient}", rset=True)
        elif stage == "data":
            if code == 354:
                slot.stage = "ready"
                if not slot.waiting:
                    self._hand_over(slot)
            else:
                self._refused(slot, code, reply, f"the message to {slot.recipient}", rset=True)
        elif stage == "payload":
            if code == 250:
                self._finish(slot, "sent")
                slot.stage = "idle"
            else:
                self._refused(slot, code, reply, f"the message to {slot.recipient}", rset=False)
        elif stage == "rset":
            slot.stage = "idle"
        elif stage == "ready":  # nothing is expected while the payload waits: give it up
            self._broken(slot, ConnectionError(f"unexpected reply {code} {_reply_text(reply)}"))
        elif code == 421:  # unsolicited, idle: the server is closing the connection
            self._drop(slot)

    def _broken(self, slot: _Slot, error: BaseException) -> None:
        """The connection failed: what happens to the message depends on how far it got."""
        stage, mail, fresh_retry = slot.stage, slot.mail, slot.fresh_retry
        self._drop(slot)
        if mail is None or stage in ("idle", "rset"):
            return
        if stage == "payload":
            reason = (
                f"The connection to the {self.label} dropped while sending to "
                f"{mail.recipient}: {_reason(error)}."
            )
            self._finished.append(self._ticketed(slot, Finished(mail, "retry", reason)))
            return
        # Nothing was handed over: a fresh connection is tried at once (a server may close an
        # idle connection); if none can be opened, the server is down and the run stops.
        if fresh_retry:
            self._finished.append(
                Finished(
                    mail,
                    "retry",
                    f"The connection to the {self.label} dropped before the message could be "
                    f"sent: {_reason(error)}.",
                )
            )
            return
        try:
            self._begin(slot, mail, fresh_retry=True)
        except TransportUnavailableError as unavailable:
            self.error = self.error or str(unavailable)
            self._finished.append(Finished(mail, "release"))
