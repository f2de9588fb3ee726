"""The mail an outbox row becomes, and its MIME bytes, built by hand.

:class:`email.message.EmailMessage` costs about a millisecond per message, more than the SMTP
exchange itself. The output is a standard multipart/alternative (the HTML with its inline images
as multipart/related) of quoted-printable UTF-8 parts (7-bit clean, no line over 76 characters)
with RFC 2047 headers, which :mod:`email` parses back in the tests. The Message-ID is derived
from the row's ``message_key``: a resend is recognisable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import Any

from selfcare_ops.mail.content import message_content
from selfcare_ops.mail.inline import InlinePart, related_part
from selfcare_ops.store.models import utcnow

CRLF = "\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")
_PART = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
_PART += CRLF + CRLF


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
        """From an outbox row (ORM object or result row), filled from its stored ``template``."""
        content = message_content(row._mapping if hasattr(row, "_mapping") else row, template)
        return cls(
            row.id, row.message_key, row.recipient, content.subject, content.text, content.html,
            content.language, row.attempts or 0, content.inline,
        )  # fmt: skip


def _one_line(text: str) -> str:
    """Header values never carry a line break (no header injection through user text)."""
    return " ".join(text.split()) if ("\n" in text or "\r" in text) else text


def _encoded_header(name: str, value: str) -> str:
    """``Name: value``, non-ASCII as RFC 2047 words of at most 45 UTF-8 bytes, one per line."""
    value = _one_line(value)
    if value.isascii() and len(name) + len(value) < 996:
        return f"{name}: {value}"
    data, words, start = value.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + 45, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never split a character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return f"{name}: " + (CRLF + " ").join(words)


def _qp(text: str) -> str:
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
def _from_headers(mail_from: str) -> tuple[str, str]:
    """The From header (display name encoded) and the Message-ID domain (the sender's)."""
    name, address = parseaddr(mail_from)
    domain = sender_address(mail_from).rpartition("@")[2] or "selfcare-ops.local"
    return f"From: {formataddr((name, address or mail_from), charset='utf-8')}", domain


def message_id(message_key: str, mail_from: str) -> str:
    """The Message-ID of a row: the same for every send, the key hashed (it may hold anything)."""
    digest = hashlib.sha256(message_key.encode("utf-8")).hexdigest()[:40]
    return f"<selfcare.{digest}@{_from_headers(mail_from)[1]}>"


@lru_cache(maxsize=1)
def _date(second: int) -> str:
    """The Date header of this second: formatted once, not thousands of times."""
    return format_datetime(utcnow().replace(microsecond=0))


def build_mime(mail: OutgoingMail, mail_from: str) -> bytes:
    """The RFC 5322 bytes (CRLF line ends) of ``mail``: text, plus HTML as an alternative."""
    key = hashlib.sha256(mail.message_key.encode("utf-8")).hexdigest()[:24]
    head = CRLF.join(
        [
            _from_headers(mail_from)[0],
            f"To: {_one_line(mail.recipient)}",
            _encoded_header("Subject", mail.subject),
            f"Date: {_date(int(utcnow().timestamp()))}",
            f"Message-ID: {message_id(mail.message_key, mail_from)}",
            _encoded_header("X-Selfcare-Message-Key", mail.message_key),
            f"Content-Language: {_one_line(mail.language)}",
            "MIME-Version: 1.0",
            "Auto-Submitted: auto-generated",
        ]
    )
    text = _PART.format("plain") + _qp(mail.body_text)
    if mail.body_html is None:
        return f"{head}{CRLF}{text}".encode()
    html = _PART.format("html") + _qp(mail.body_html)
    if mail.inline:  # "=_" never occurs in base64 or quoted-printable: no boundary collides
        html = related_part(html, mail.inline, f"=_selfcare_related_{key}")
    return (
        f'{head}{CRLF}Content-Type: multipart/alternative; boundary="=_selfcare_{key}"{CRLF}{CRLF}'
        f"--=_selfcare_{key}{CRLF}{text}{CRLF}--=_selfcare_{key}{CRLF}{html}{CRLF}"
        f"--=_selfcare_{key}--{CRLF}"
    ).encode()


def smtp_data(message: bytes) -> bytes:
    """``message`` as the SMTP DATA payload: leading dots doubled, ended by a lone dot."""
    if message.startswith(b".") or b"\n." in message:
        message = _LEADING_DOT.sub(b"..", message)
    return message + (b".\r\n" if message.endswith(b"\r\n") else b"\r\n.\r\n")
