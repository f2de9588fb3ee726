"""The transports a queued message leaves through: SMTP, a Maildir folder, or memory (tests).

A transport sends one message at a time and says how it went by raising one of three errors:
:class:`TemporaryDeliveryError` (try again later: 4xx, dropped connection),
:class:`PermanentDeliveryError` (refused for good: 5xx, with the server's reason) or
:class:`TransportUnavailableError` (nothing can be sent now: server unreachable, login refused,
Maildir not writable; the run stops and the messages stay queued). The deliverer
(:mod:`selfcare_ops.mail.deliver`) gives each worker one transport. :class:`MemoryTransport`
keeps the messages in a list, so that tests drive the production loop without a server.
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path

from selfcare_ops.config import Settings
from selfcare_ops.errors import MailError
from selfcare_ops.mail.mime import OutgoingMail, build_mime, sender_address, smtp_data

TIMEOUT = 30.0  # seconds


class TemporaryDeliveryError(MailError):
    """This message could not be sent now; trying again later may work (4xx, dropped line)."""


class PermanentDeliveryError(MailError):
    """The server refused this message for good (5xx); ``str()`` carries the server's reason."""


class TransportUnavailableError(MailError):
    """Nothing can be sent through this transport now; the run stops, messages stay queued."""


class Transport:
    """Sends messages one by one; one instance per worker, used by one thread at a time."""

    label = "transport"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, mail: OutgoingMail) -> None:
        """Send ``mail`` or raise one of this module's delivery errors."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection, if any; the transport may be used again afterwards."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _text(reply: bytes | str | BaseException) -> str:
    """A server reply or an error in one line, without its final full stop."""
    if isinstance(reply, BaseException):
        reply = getattr(reply, "strerror", None) or str(reply) or type(reply).__name__
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split()).rstrip(".")


class SmtpTransport(Transport):
    """One SMTP connection, opened on the first message and reused for the next ones.

    Settings: ``SELFCARE_OPS_SMTP_HOST``, ``_PORT``, ``_SSL`` (implicit TLS), ``_STARTTLS``,
    ``_USER`` and ``_PASSWORD`` (login when a user is set), ``SELFCARE_OPS_MAIL_FROM``.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.label = f"SMTP server {settings.smtp_host}:{settings.smtp_port}"
        self.sender = sender_address(settings.mail_from)
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s, smtp = self.settings, None
        try:
            if s.smtp_ssl:
                context = ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=TIMEOUT, context=context)
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT)
            smtp.ehlo()
            if s.smtp_starttls and not s.smtp_ssl:
                if not smtp.has_extn("starttls"):
                    raise TransportUnavailableError(
                        f"The {self.label} does not offer STARTTLS, which SELFCARE_OPS_SMTP_"
                        "STARTTLS requires; turn it off, or use SELFCARE_OPS_SMTP_SSL instead."
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            return smtp
        except smtplib.SMTPAuthenticationError as error:
            problem = (
                f"refused the login of {s.smtp_user!r}: {error.smtp_code} "
                f"{_text(error.smtp_error)}; check SELFCARE_OPS_SMTP_USER and _PASSWORD"
            )
        except smtplib.SMTPNotSupportedError:
            problem = "does not support login (SELFCARE_OPS_SMTP_USER): unset it or enable TLS"
        except ssl.SSLError as error:
            problem = f"failed the TLS handshake: {_text(error)}"
        except smtplib.SMTPConnectError as error:
            problem = f"refused the connection: {error.smtp_code} {_text(error.smtp_error)}"
        except (OSError, smtplib.SMTPException) as error:
            problem = f"cannot be reached: {_text(error)}"
        except BaseException:
            self._quit(smtp)
            raise
        self._quit(smtp)
        raise TransportUnavailableError(f"The {self.label} {problem}.")

    @staticmethod
    def _quit(smtp: smtplib.SMTP | None) -> None:
        try:
            if smtp is not None:
                smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()  # type: ignore[union-attr]

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._quit(smtp)

    def _drop(self, error: BaseException | None = None, to: str = "") -> TemporaryDeliveryError:
        """Close the line at once; the error to raise when it dropped while sending to ``to``."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
        why = _text(error or "")
        return TemporaryDeliveryError(
            f"The connection to the {self.label} dropped while sending to {to}: {why}."
        )

    def send(self, mail: OutgoingMail) -> None:
        to = mail.recipient.strip()
        if not to or "@" not in to or any(c in to for c in "\r\n<> ,;"):
            raise PermanentDeliveryError(f"The recipient {to!r} is not a mail address.")
        payload = smtp_data(build_mime(mail, self.settings.mail_from))
        for attempt in (1, 2):
            self._smtp = self._smtp or self._connect()
            try:
                return self._transaction(self._smtp, to, payload)
            except (OSError, smtplib.SMTPServerDisconnected) as error:
                # Lost before the payload went: nothing was handed over (the server closed an
                # idle connection, say), so one fresh connection is tried at once.
                dropped = self._drop(error, to)
                if attempt == 2:
                    raise dropped from error

    def _transaction(self, smtp: smtplib.SMTP, to: str, payload: bytes) -> None:
        """MAIL, RCPT, DATA, then the payload. The addresses are checked already, so they are
        written as they are (smtplib's parsing of them costs as much as the rest)."""
        utf8 = not to.isascii()
        if utf8 and not smtp.has_extn("smtputf8"):
            raise PermanentDeliveryError(
                f"The address {to!r} has non-ASCII characters and the {self.label} does not "
                "accept them (no SMTPUTF8)."
            )
        smtp.command_encoding = "utf-8" if utf8 else "ascii"
        steps = (
            (
                f"MAIL FROM:<{self.sender}>" + " SMTPUTF8" * utf8,
                (250,),
                f"the sender {self.sender}",
            ),
            (f"RCPT TO:<{to}>", (250, 251), f"the recipient {to}"),
            ("DATA", (354,), f"the message to {to}"),
        )
        for step in steps:
            command, expected, what = step
            smtp.putcmd(command)
            code, reply = smtp.getreply()
            if code not in expected:
                break
        else:  # from here on the message may be in, whatever happens to the line
            try:
                smtp.send(payload)
                code, reply = smtp.getreply()
            except (OSError, smtplib.SMTPServerDisconnected) as error:
                raise self._drop(error, to) from error
            if code == 250:
                return
        if code == 421:  # the server closes the connection
            self._drop()
        else:
            try:
                smtp.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()
        text = f"{code} {_text(reply)}"
        if 500 <= code < 600:
            raise PermanentDeliveryError(f"The {self.label} refused {what}: {text}.")
        raise TemporaryDeliveryError(f"The {self.label} deferred {what}: {text}.")


class MaildirTransport(Transport):
    """Writes each message as one file into a Maildir folder (the embedded default)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = Path(settings.maildir)
        self.label = f"Maildir folder {self.path}"

    def send(self, mail: OutgoingMail) -> None:
        try:
            # Maildir(create=True) makes only the last folder: a fresh data/ needs its parents.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, factory=None, create=True)
            box.add(build_mime(mail, self.settings.mail_from).replace(b"\r\n", b"\n"))
        except OSError as error:
            raise TransportUnavailableError(
                f"The {self.label} cannot be written: {_text(error)}."
            ) from error


class MemoryTransport(Transport):
    """Keeps each message in ``sent`` instead of sending it: the production loop, no server.

    ``answer(mail)``, when given, runs first and may raise what a real transport raises (or
    anything else, to play a crash); the message is kept only when it returns.
    """

    label = "memory transport"

    def __init__(
        self,
        settings: Settings,
        sent: list[OutgoingMail] | None = None,
        answer: Callable[[OutgoingMail], None] | None = None,
    ) -> None:
        super().__init__(settings)
        self.sent = [] if sent is None else sent
        self.answer = answer

    def send(self, mail: OutgoingMail) -> None:
        if self.answer is not None:
            self.answer(mail)
        self.sent.append(mail)


def make_transport(settings: Settings) -> Transport:
    """The transport ``SELFCARE_OPS_MAIL_TRANSPORT`` names (``maildir`` or ``smtp``)."""
    kinds = {"smtp": SmtpTransport, "maildir": MaildirTransport}
    if settings.mail_transport not in kinds:
        raise MailError(
            f"The mail transport {settings.mail_transport!r} is unknown: use 'smtp' or 'maildir'."
        )
    return kinds[settings.mail_transport](settings)
