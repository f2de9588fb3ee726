"""One language at a time: the words a person reads come from the gettext catalogs.

Messages are written in English in the code, marked with :func:`_` (or :func:`ngettext` when a
number decides the form), extracted by Babel into ``locale/selfcare_ops.pot`` and translated in
``locale/fr`` and ``locale/en``; the compiled ``.mo`` catalogs ship in the package and are read
by the standard :mod:`gettext` module. The language is, in order: :func:`set_language` (the
CLI's ``--lang``), ``SELFCARE_OPS_LANG``, the POSIX locale (``LC_ALL``, ``LC_MESSAGES``,
``LANG``), else French — the analysts are French. Mails and the invitee's pages follow the
recipient's language chain instead (see :mod:`.mail.render`), never this one.

Programs get stable codes, not these sentences: JSON keys and reason codes stay untranslated.

Developers: ``make catalogs`` extracts, updates and compiles; ``tests/test_i18n.py`` fails
when the catalogs are stale.
"""

from __future__ import annotations

import gettext
import io
import os
from functools import lru_cache

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
DOMAIN = "selfcare_ops"
#: The package holding ``locale/`` (resources.PACKAGE, not imported: see translations).
PACKAGE = __name__.rpartition(".")[0]
LANGUAGE_ENV = "SELFCARE_OPS_LANG"
_chosen: str | None = None


def _posix_language() -> str | None:
    """The language the POSIX locale names (``fr_FR.UTF-8`` -> ``fr``), if we have it."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").strip()
        if value:  # the first one set decides, as POSIX says
            language = value.split(".")[0].split("_")[0].lower()
            return language if language in LANGUAGES else None
    return None


def check_language(language: str, source: str) -> str:
    """``language`` if it is one we speak, else one sentence naming where it came from."""
    wanted = (language or "").strip().lower()
    if wanted not in LANGUAGES:
        from selfcare_ops.errors import ConfigurationError  # errors imports this module

        # Said in the language we fall back on: the one asked for is the one we cannot speak.
        said = translations(fallback_language())
        raise ConfigurationError(
            said.gettext("{source} must be one of {choices}, not {value}.").format(
                source=said.gettext(source), choices=", ".join(LANGUAGES), value=repr(language)
            )
        )
    return wanted


def set_language(language: str | None) -> None:
    """Choose the language for this process (``None``: back to the environment's)."""
    global _chosen
    _chosen = None if language is None else check_language(language, N_("The language"))


def current_language() -> str:
    """The language people read now (see the module docstring for the order)."""
    if _chosen is not None:
        return _chosen
    configured = os.environ.get(LANGUAGE_ENV)
    if configured:
        return check_language(configured, LANGUAGE_ENV)
    return fallback_language()


def fallback_language() -> str:
    """The language spoken when ``SELFCARE_OPS_LANG`` is unset (or names one we lack)."""
    return _posix_language() or DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English text as is when a message is missing).

    Catalogs live in the package, ``locale/<lang>/LC_MESSAGES/selfcare_ops.mo``. The one file
    is read through the package's loader (a zipped install too), on the first translated
    message: no search of locale folders and language variants as ``gettext.translation``
    does, and no :mod:`importlib.resources`, so ``selfcare-ops --help`` stays cheap.
    """
    import pkgutil

    try:
        data = pkgutil.get_data(PACKAGE, f"locale/{language}/LC_MESSAGES/{DOMAIN}.mo")
    except OSError:
        data = None
    if data is None:
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(data))


def _(message: str) -> str:
    """``message`` in the current language."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of ``singular``/``plural`` that ``count`` takes in the current language
    (French puts 0 and 1 in the singular)."""
    return translations(current_language()).ngettext(singular, plural, count)


def translation(language: str | None) -> gettext.NullTranslations:
    """The catalog of ``language`` for one page or mail (its ``gettext`` and ``ngettext``),
    leaving the process-wide language alone; an unknown language gives the default one."""
    wanted = (language or "").strip().lower()
    return translations(wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Marks ``message`` for extraction and returns it untouched: for texts defined when a
    module is imported (the CLI's help), before anyone has chosen a language; they are
    translated where they are shown."""
    return message


def NN_(singular: str, plural: str) -> tuple[str, str]:
    """:func:`N_` for a message whose form a number decides (translated with ngettext)."""
    return singular, plural
