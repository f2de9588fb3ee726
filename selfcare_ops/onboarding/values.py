"""Cell normalisers: one raw string in, one clean value out, or a :class:`CellError`.

Pure functions with caches, no database: customer files repeat the same few civilities, roles,
booleans and mail domains thousands of times, so each distinct raw value is checked once. Emails
take a cheap exact fast path for the common shapes and fall back to email-validator for
everything else (a property test checks both agree); phone numbers go through the one
normaliser of :mod:`selfcare_ops.support.phones`, which does the same.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from selfcare_ops.errors import PhoneNumberError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.support.phones import normalise_phone
from selfcare_ops.support.textnorm import fold
from selfcare_ops.support.yesno import yes_no


class CellError(ValueError):
    """One cell is not acceptable; the message is completed with the line and the column.

    ``code`` is the stable reason code programs read (see :mod:`.reasons`)."""

    def __init__(self, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.code = code


#: Longest value stored per field (the database column sizes).
MAX_LENGTHS = {
    "last_name": 100,
    "first_name": 100,
    "function": 150,
    "services": 500,
    "sub_account": 120,
    "login": 254,
    "client": 64,
}

_COMPACT = re.compile(r"[^a-z0-9]")


def compact(text: str) -> str:
    """Folded with everything but letters and digits removed: 'Adresse e-mail' -> 'adresseemail'."""
    return _COMPACT.sub("", fold(text))


def _vocabulary(spec: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {compact(alias): value for value, aliases in spec.items() for alias in aliases}


CIVILITY_WORDS = _vocabulary(
    {
        "M.": ("M", "M.", "Mr", "Mr.", "Monsieur", "Mister", "Sir"),
        "Mme": (
            "Mme",
            "Mme.",
            "Madame",
            "Mrs",
            "Mrs.",
            "Ms",
            "Ms.",
            "Miss",
            "Mlle",
            "Mademoiselle",
        ),
    }
)
#: Role cells of an import -> role (the table is in :func:`role`).
ROLE_WORDS = _vocabulary(
    {
        "administrator": (
            "administrateur",
            "administratrice",
            "admin",
            "administrator",
            "administrateur client",
            "client administrator",
            "gestionnaire",
            "gestionnaire client",
        ),
        "manager": (
            "responsable de sous-compte",
            "responsable",
            "manager",
            "gestionnaire de sous-compte",
            "sub-account manager",
        ),
        "user": ("utilisateur", "utilisatrice", "user", "collaborateur", "collaboratrice"),
    }
)
#: Role cells meaning administrator that a file may also use for a sub-account's manager.
AMBIGUOUS_ADMIN_WORDS = frozenset({compact("gestionnaire")})
#: A cell holding exactly this clears an optional field on update (a right: turns it off).
CLEAR_MARKER = "-"
LANGUAGE_WORDS = _vocabulary(
    {
        "fr": ("fr", "fra", "fr-FR", "fr_FR", "français", "francais", "french"),
        "en": ("en", "eng", "en-GB", "en-US", "en_GB", "en_US", "anglais", "english"),
    }
)


def _refuse(raw: str, refusal: str) -> CellError:
    """The refusal of an unknown word, its ``{value}`` filled with the cell as written."""
    return CellError(refusal.format(value=repr(raw)))


@lru_cache(maxsize=4096)
def civility(raw: str) -> str:
    value = CIVILITY_WORDS.get(compact(raw))
    if value is None:
        raise _refuse(
            raw, _("{value} is not a known civility (use M., Mme, Monsieur, Madame, Mr, Mrs, Ms)")
        )
    return value


@lru_cache(maxsize=4096)
def role(raw: str) -> str:
    """The role a ``Rôle`` cell names: one vocabulary with ``users role`` and the docs.

    Cells are compared folded (any case, accents, spaces, dashes or dots):

    =============  =====================================================================
    role           accepted cells
    =============  =====================================================================
    administrator  Administrateur, Administratrice, Admin, Administrator,
                   Administrateur client, Client administrator, Gestionnaire,
                   Gestionnaire client — every sub-account of the client (the seed's
                   "gestionnaire" of a company is its client administrator); a
                   sub-account on the line is ignored, with a note
    manager        Responsable de sous-compte, Responsable, Manager,
                   Gestionnaire de sous-compte, Sub-account manager — exactly one
                   sub-account: a manager line without one (and no stored one) is
                   rejected, naming the line and the ``Sous-compte`` column
    user           Utilisateur, Utilisatrice, User, Collaborateur, Collaboratrice
    (empty)        a new user: administrator if they are the client's first user, else
                   user; an existing user keeps their role
    =============  =====================================================================

    A bare "Gestionnaire" on a line that names a sub-account is rejected as ambiguous
    (:data:`AMBIGUOUS_ADMIN_WORDS`, naming the ``Rôle`` column): the file may mean that
    sub-account's manager, and making the person administrator of every sub-account instead
    would silently widen their access.
    """
    value = ROLE_WORDS.get(compact(raw))
    if value is None:
        raise _refuse(
            raw,
            _(
                "{value} is not a known role (use administrateur/administrator, responsable de "
                "sous-compte/manager, utilisateur/user)"
            ),
        )
    return value


@lru_cache(maxsize=4096)
def language(raw: str) -> str:
    value = LANGUAGE_WORDS.get(compact(raw))
    if value is None:
        raise _refuse(
            raw, _("{value} is not a known language (use fr/français/french or en/anglais/english)")
        )
    return value


@lru_cache(maxsize=4096)
def boolean(raw: str) -> bool:
    """A rights cell in the one yes/no vocabulary (:mod:`~selfcare_ops.support.yesno`);
    empty is no."""
    if not raw.strip():
        return False
    value = yes_no(raw)
    if value is None:
        raise CellError(
            _(
                "{value} is not a yes/no value (use oui/non, yes/no, vrai/faux, true/false, "
                "on/off, 1/0, x or an empty cell)"
            ).format(value=repr(raw))
        )
    return value


def text(raw: str, field: str) -> str:
    """Trimmed free text within the column's size."""
    value = " ".join(raw.split())
    limit = MAX_LENGTHS.get(field)
    if limit is not None and len(value) > limit:
        raise CellError(
            ngettext(
                "the value is {length} characters long, at most {limit} is allowed",
                "the value is {length} characters long, at most {limit} are allowed",
                limit,
            ).format(length=len(value), limit=limit)
        )
    return value


# --- email -------------------------------------------------------------------------------------

_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*\Z")


@lru_cache(maxsize=8192)
def _domain(domain: str) -> str:
    """The normalised domain, or CellError; validated once per distinct domain."""
    return _full_email(f"a@{domain}").split("@", 1)[1]


def _full_email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise CellError(
            _("{value} is not a valid email address: {problem}").format(
                value=repr(raw), problem=_email_problem(raw)
            ),
            "invalid_email",
        ) from None


def _email_problem(raw: str) -> str:
    """What is wrong with the address, in the current language: email-validator speaks
    English only, so its common refusals are named here and the rest summed up."""
    local, at, domain = raw.rpartition("@")
    if not at:
        return _("it has no @-sign")
    if "@" in local:
        return _("it has more than one @-sign")
    if not local:
        return _("there is nothing before the @-sign")
    if not domain:
        return _("there is nothing after the @-sign")
    if " " in raw.strip():
        return _("it contains a space")
    if "." not in domain:
        return _("the part after the @-sign has no dot")
    if ".." in raw:
        return _("it contains two dots in a row")
    return _("a character or the shape of the address is not allowed")


def email(raw: str) -> str:
    """The address as email-validator normalises it (domain in lower case), no DNS lookup."""
    value = raw.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:].strip()
    local, at, domain = value.rpartition("@")
    if at and len(value) <= 200 and len(local) <= 64 and _SIMPLE_LOCAL.match(local):
        try:
            return f"{local}@{_domain(domain)}"
        except CellError:
            pass  # the full check below gives the exact message for the whole address
    return _full_email(value)


# --- phone -------------------------------------------------------------------------------------


def phone(raw: str) -> str:
    """E.164 (+33...) through the one normaliser (:mod:`~selfcare_ops.support.phones`),
    French numbers by default (other countries need their + prefix); its refusal worded for a
    CSV cell."""
    try:
        return normalise_phone(raw)
    except PhoneNumberError as exc:
        refusal = (
            _("{value} is not a valid phone number")
            if exc.readable
            else _("{value} is not a phone number")
        )
        raise CellError(refusal.format(value=repr(raw.strip())), "invalid_phone") from None
