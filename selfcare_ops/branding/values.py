"""The dashboard message's text and link: rules shared by the services and the UI counter."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _, ngettext

MESSAGE_MAX_CHARS = 150
LINK_MAX_CHARS = 2000


def _normalise(text: str) -> str:
    # NFC so that an accent typed as two code points counts as the one character people see.
    return unicodedata.normalize("NFC", text).strip()


def remaining_characters(text: str | None) -> int:
    """How many characters are left for the message ("N caractères restants"); < 0 when over."""
    return MESSAGE_MAX_CHARS - len(_normalise(text or ""))


def remaining_label(text: str | None) -> str:
    """The counter as the Selfcare shows it, e.g. "110 caractères restants"."""
    left = remaining_characters(text)
    if left < 0:
        return ngettext("{count} character too many", "{count} characters too many", -left).format(
            count=-left
        )
    return ngettext("{count} character left", "{count} characters left", left).format(count=left)


def clean_message(text: str) -> str:
    """The message trimmed, at most 150 characters, kept as plain text (HTML is not markup).

    Angle brackets and ampersands are stored as typed and escaped wherever the message is
    rendered; control characters (other than line breaks) are refused.
    """
    message = _normalise(text)
    if not message:
        raise ValidationError(
            _(
                "The dashboard message is empty after trimming; reset it to use the default "
                "message."
            ),
            field="banner_message",
            actual=text,
        )
    if len(message) > MESSAGE_MAX_CHARS:
        raise ValidationError(
            _(
                "The dashboard message has {length} characters after trimming; at most {limit} "
                "are accepted ({over} too many)."
            ).format(
                length=len(message), limit=MESSAGE_MAX_CHARS, over=len(message) - MESSAGE_MAX_CHARS
            ),
            field="banner_message",
            limit=MESSAGE_MAX_CHARS,
            actual=len(message),
        )
    bad = sorted(
        {f"U+{ord(c):04X}" for c in message if unicodedata.category(c) == "Cc"} - {"U+000A"}
    )
    if bad:
        raise ValidationError(
            _(
                "The dashboard message contains control characters ({characters}); remove them."
            ).format(characters=", ".join(bad)),
            field="banner_message",
            actual=message,
        )
    return message


def clean_link(url: str) -> str:
    """An ``https://`` link with a host name, as typed (trimmed)."""
    link = url.strip()
    if len(link) > LINK_MAX_CHARS:
        raise ValidationError(
            _("The banner link has {length} characters; at most {limit} are accepted.").format(
                length=len(link), limit=LINK_MAX_CHARS
            ),
            field="banner_link",
            limit=LINK_MAX_CHARS,
            actual=len(link),
        )
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in link):
        raise ValidationError(
            _(
                "The banner link {link} contains spaces or control characters; paste the address "
                "alone."
            ).format(link=repr(link)),
            field="banner_link",
            actual=link,
        )
    try:
        parts = urlsplit(link)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValidationError(
            _("The banner link {link} is not a valid address ({problem}).").format(
                link=repr(link), problem=exc
            ),
            field="banner_link",
            actual=link,
        ) from exc
    if parts.scheme.lower() != "https":
        raise ValidationError(
            _("The banner link must start with https://, not {scheme} (got {link}).").format(
                scheme=repr(parts.scheme or _("nothing")), link=repr(link)
            ),
            field="banner_link",
            limit="https",
            actual=parts.scheme,
        )
    if not host or "." not in host.strip(".") and host != "localhost":
        raise ValidationError(
            _("The banner link {link} has no host name after https://.").format(link=repr(link)),
            field="banner_link",
            actual=link,
        )
    if parts.username or parts.password:
        raise ValidationError(
            _("The banner link {link} carries a user name or password; remove them.").format(
                link=repr(link)
            ),
            field="banner_link",
            actual=link,
        )
    return link
