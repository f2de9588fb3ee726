"""Every error the toolkit raises on purpose.

One base class, :class:`SelfcareError`, so that the CLI, the dashboards and the notebooks can show
``str(error)`` — a full sentence an analyst can act on — and never a traceback. Subclasses carry
their context as attributes (row, column, field, limit, actual value) for programs that need it.
Library errors are translated at the edge with ``raise ... from exc``.

The sentences are built in the current language (see :mod:`.i18n`) when the error is raised;
``kind``, ``reason`` and the other attributes stay stable codes for programs.
"""

from __future__ import annotations

from typing import Any


def _(message: str) -> str:
    """:func:`.i18n._`, imported late: :mod:`.i18n` itself raises these errors."""
    from selfcare_ops.i18n import _ as translate

    return translate(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """:func:`.i18n.ngettext`, imported late (see :func:`_`)."""
    from selfcare_ops.i18n import ngettext as translate

    return translate(singular, plural, count)


def not_found_sentence(kind: str, key: str) -> str:
    """'No client is known as ...' in the current language, worded for each kind of thing
    (French nouns have genders); an unexpected kind still reads as a sentence."""
    sentences = {
        "client": _("No client is known as '{key}'."),
        "user": _("No user is known as '{key}'."),
        "organisation": _("No organisation is known as '{key}'."),
        "partner": _("No partner is known as '{key}'."),
        "operator": _("The tree has no operator at its root."),
        "image": _("No image is known as '{key}'."),
        "system actor": _("No system actor is known as '{key}'."),
        "administrator or manager": _("No administrator or manager is known as '{key}'."),
        "sub-account": _("No sub-account is known as '{key}'."),
    }
    sentence = sentences.get(kind)
    if sentence is None:
        return _("Nothing is known as '{key}' ({kind}).").format(key=key, kind=kind)
    return sentence.format(key=key)


def sub_account_unknown(client_ref: str, name: str, known: list[str] | None = None) -> str:
    """'Client C0001 has no sub-account named ...', naming the ones it has when given."""
    sentence = _("Client {ref} has no sub-account named '{name}'.").format(
        ref=client_ref, name=name
    )
    if known is None:
        return sentence
    if not known:
        return sentence + " " + _("It has none yet.")
    names = ", ".join(f"'{n}'" for n in known)
    return sentence + " " + _("Its sub-accounts: {names}.").format(names=names)


class SelfcareError(Exception):
    """Base of every error the toolkit raises on purpose; ``str()`` is the user-facing sentence."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class ConfigurationError(SelfcareError):
    """A setting is missing or malformed."""


class DatabaseError(SelfcareError):
    """The database cannot be reached or used."""


class DatabaseNotInitialisedError(DatabaseError):
    """The schema is missing or behind the code's migrations."""


class NotFoundError(SelfcareError):
    """A client, user, organisation or other named thing does not exist."""

    def __init__(self, kind: str, key: str, *, message: str | None = None) -> None:
        """``kind`` is a stable code ("client", "user", ...); ``message``, already translated,
        replaces the usual sentence where the place matters ("in client C0001")."""
        super().__init__(message or not_found_sentence(kind, key), kind=kind, key=key)
        self.kind = kind
        self.key = key


class AccessDeniedError(SelfcareError):
    """The actor may not see or change the target."""


class ValidationError(SelfcareError):
    """A value given by a person or a file is not acceptable.

    ``field`` names what was wrong, ``limit`` and ``actual`` say by how much where it applies,
    ``row`` and ``column`` place it in an input file.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        limit: Any = None,
        actual: Any = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message, field=field, limit=limit, actual=actual, row=row, column=column)
        self.field = field
        self.limit = limit
        self.actual = actual
        self.row = row
        self.column = column


class PhoneNumberError(ValidationError):
    """A phone number that cannot be read at all (``readable`` false) or is not a valid number;
    callers that word their own refusal (a CSV cell) tell the two apart."""

    def __init__(self, message: str, *, field: str, actual: str, readable: bool) -> None:
        super().__init__(message, field=field, actual=actual)
        self.readable = readable


class PageOutOfRangeError(ValidationError):
    """A page asked for by number lies past the last one; ``pages`` says how many there are."""

    def __init__(self, page: int, pages: int) -> None:
        sentence = ngettext(
            "Page {page} does not exist: there is {pages} page.",
            "Page {page} does not exist: there are {pages} pages.",
            pages,
        ).format(page=page, pages=pages)
        super().__init__(sentence, field="page", limit=pages, actual=page)
        self.page = page
        self.pages = pages


class ConflictError(SelfcareError):
    """The change contradicts the current state (duplicate login, wrong account state, ...)."""


class LastAdministratorError(ConflictError):
    """The change would leave a client without an (active) administrator; ``login`` and
    ``client`` name who and where."""


class InvitationError(SelfcareError):
    """An invitation cannot be sent, accepted, resent or revoked."""


class TokenError(InvitationError):
    """A token is invalid, expired, revoked or already used (``reason`` says which)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class MailError(SelfcareError):
    """A message could not be rendered or delivered."""


class ImportFileError(SelfcareError):
    """An input file cannot be read at all (empty, binary, no header)."""


class ExportError(SelfcareError):
    """An export file cannot be written (folder missing and not creatable, no permission)."""


class ImageError(ValidationError):
    """An uploaded image breaks a rule (format, size, weight, damaged file)."""


class JobError(SelfcareError):
    """A scheduled job cannot start, or failed."""


class ConcurrentRunError(JobError):
    """Another run of the same job holds its lock."""
