"""One language at a time: the catalogs are complete and compiled, the language is chosen as
the README says, and French plurals follow French rules.

The staleness checks read what Babel extracts from the code now: a message marked with _(),
N_(), ngettext() or NN_() and missing from a catalog (or translated but not compiled) fails here, so
`make test` fails until `make catalogs` is run and its result committed.
"""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from click.testing import CliRunner

from selfcare_ops import i18n
from selfcare_ops.cli import main
from selfcare_ops.errors import ConfigurationError

PACKAGE = Path(i18n.__file__).parent
LOCALE = PACKAGE / "locale"


def extracted() -> set[str]:
    """The msgids Babel finds in the package now (plural messages by their singular)."""
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE),
        method_map=[("**.py", "python"), ("web/templates/**.html", "jinja2")],
        keywords={"_": None, "N_": None, "ngettext": (1, 2), "NN_": (1, 2)},
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog(language: str):  # type: ignore[no-untyped-def]
    with open(LOCALE / language / "LC_MESSAGES" / "selfcare_ops.po", encoding="utf-8") as po:
        return read_po(po, locale=language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_marked_message_is_translated_and_compiled(language: str) -> None:
    po = catalog(language)
    ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in po if m.id}
    missing = extracted() - ids
    assert not missing, f"run `make catalogs`: not in the {language} catalog: {sorted(missing)}"
    compiled = gettext.GNUTranslations(
        open(LOCALE / language / "LC_MESSAGES" / "selfcare_ops.mo", "rb")
    )
    for message in po:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert all(message.string), f"untranslated in {language}: {message.id[0]!r}"
            for count, form in ((1, 0), (2, 1)):
                assert compiled.ngettext(*message.id, count) == message.string[form], (
                    f"run `make catalogs`: the {language} .mo is older than its .po"
                )
        else:
            assert message.string, f"untranslated in {language}: {message.id!r}"
            assert compiled.gettext(message.id) == message.string, (
                f"run `make catalogs`: the {language} .mo is older than its .po"
            )


@pytest.fixture
def no_language(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("SELFCARE_OPS_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    i18n.set_language(None)
    yield monkeypatch
    i18n.set_language(None)


def test_the_language_is_chosen_in_the_readme_order(no_language) -> None:
    assert i18n.current_language() == "fr"  # nothing set: French
    no_language.setenv("LANG", "en_GB.UTF-8")
    assert i18n.current_language() == "en"
    no_language.setenv("LC_ALL", "fr_FR.UTF-8")  # LC_ALL comes before LANG
    assert i18n.current_language() == "fr"
    no_language.setenv("LC_ALL", "de_DE.UTF-8")  # a language we do not speak: French
    assert i18n.current_language() == "fr"
    no_language.setenv("SELFCARE_OPS_LANG", "en")  # the setting beats the locale
    assert i18n.current_language() == "en"
    i18n.set_language("fr")  # and --lang beats the setting
    assert i18n.current_language() == "fr"
    no_language.setenv("SELFCARE_OPS_LANG", "de")
    i18n.set_language(None)
    # Said in the fallback language (LC_ALL names one we lack: French), since German is not one.
    with pytest.raises(ConfigurationError, match="SELFCARE_OPS_LANG doit être l'une de ces"):
        i18n.current_language()
    no_language.setenv("LC_ALL", "en_GB.UTF-8")
    with pytest.raises(ConfigurationError, match="SELFCARE_OPS_LANG must be one of fr, en"):
        i18n.current_language()


def test_french_puts_zero_and_one_in_the_singular(no_language) -> None:
    singular = "{count} mail had a live link; none is left in a sent, failed or cancelled mail."
    plural = "{count} mails had a live link; none is left in a sent, failed or cancelled mail."
    i18n.set_language("fr")
    assert i18n.ngettext(singular, plural, 0).startswith("{count} message avait")
    assert i18n.ngettext(singular, plural, 1).startswith("{count} message avait")
    assert i18n.ngettext(singular, plural, 2).startswith("{count} messages avaient")
    i18n.set_language("en")
    assert i18n.ngettext(singular, plural, 0).startswith("{count} mails had")
    assert i18n.ngettext(singular, plural, 1).startswith("{count} mail had")


def test_the_cli_speaks_the_chosen_language(db_url, tree, no_language) -> None:
    env = {"SELFCARE_OPS_DATABASE_URL": db_url}
    french = CliRunner().invoke(main, ["mail", "redact"], env=env)
    assert french.exit_code == 0, french.output
    assert french.output.startswith("0 message avait un lien actif ; plus aucun message")
    english = CliRunner().invoke(main, ["--lang", "en", "mail", "redact"], env=env)
    assert english.output.startswith("0 mails had a live link")
    by_setting = CliRunner().invoke(
        main, ["mail", "redact"], env={**env, "SELFCARE_OPS_LANG": "en"}
    )
    assert by_setting.output.startswith("0 mails had a live link")
