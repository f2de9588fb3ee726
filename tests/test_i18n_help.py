"""``--help`` speaks one language at a time (issue 14): the top level and every group and
command, with click's own words (usage line, headings, the help option) and the usage errors,
read wholly in French with ``fr`` and wholly in English with ``en``.

The tree is walked as click sees it, so a command added without ``help=N_(...)`` (or with a
help text missing from a catalog) fails here, as does any marker word of the other language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner

from selfcare_ops import i18n
from selfcare_ops.cli import COMMANDS, main
from selfcare_ops.cli.helptext import METAVAR_WORD

LOCALE = Path(i18n.__file__).parent / "locale"
NBSP = "\u00a0"

#: Words an English help would betray in a French one, and the reverse (whole words).
ENGLISH_WORDS = [
    "Usage",
    "Options:",
    "Commands",
    "Show",
    "Print",
    "Only",
    "the",
    "and",
    "of",
    "with",
    "to",
    "default",
    "required",
    "LOGIN",
    "CLIENT_REF",
    "EMAIL",
    "NAME",
    "FILE",
    "TEXT",
    "INTEGER",
    "COMMAND",
]
FRENCH_WORDS = [
    "Utilisation",
    "Commandes",
    "Afficher",
    "le",
    "la",
    "les",
    "des",
    "du",
    "et",
    "ou",
    "défaut",
    "obligatoire",
    "IDENTIFIANT",
    "REF_CLIENT",
    "ADRESSE",
    "NOM",
    "FICHIER",
    "TEXTE",
    "ENTIER",
    "COMMANDE",
]


def betrayed(text: str, language: str) -> list[str]:
    others = ENGLISH_WORDS if language == "fr" else FRENCH_WORDS
    return [w for w in others if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of ``command`` and of every command below it, as click resolves them."""
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, (path, name)
            yield from walk(sub, (*path, name))


def resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


PATHS = list(walk(main))


def translated_ids(language: str) -> set[str]:
    with open(LOCALE / language / "LC_MESSAGES" / "selfcare_ops.po", encoding="utf-8") as po:
        catalog = read_po(po, locale=language)
    return {m.id for m in catalog if m.id and isinstance(m.id, str) and m.string}


def test_the_walk_reaches_every_command() -> None:
    assert len(PATHS) > 60
    assert {path[0] for path in PATHS if path} == set(COMMANDS)
    assert ("users", "list") in PATHS and ("invite", "client") in PATHS


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_help_text_and_metavar_word_is_in_the_catalog(language: str) -> None:
    known = translated_ids(language)
    missing = [text for text, _ in COMMANDS.values() if text not in known]
    for path in PATHS:
        command = resolve(path)
        ctx = click.Context(command, info_name=path[-1] if path else "selfcare-ops")
        texts = [command.help, command.short_help]
        for param in command.get_params(ctx):
            texts.append(getattr(param, "help", None))
            record = param.get_help_record(ctx)  # what --help shows: name and metavar
            shown = " ".join([record[0] if record else "", *param.get_usage_pieces(ctx)])
            texts.extend(METAVAR_WORD.findall(shown))
        assert command.help, f"{' '.join(path)}: no help"
        missing += [f"{' '.join(path)}: {text!r}" for text in texts if text and text not in known]
    assert not missing, missing


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_help_reads_in_one_language(language: str) -> None:
    runner = CliRunner()
    for path in PATHS:
        result = runner.invoke(main, ["--lang", language, *path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        heading = {"fr": f"Options{NBSP}:", "en": "Options:"}[language]
        assert heading in result.output, path
        assert not betrayed(result.output, language), (path, betrayed(result.output, language))


def test_the_notifications_help_names_every_notice() -> None:
    from selfcare_ops.accounts.profile import NOTICES

    option = next(p for p in resolve(("users", "notifications")).params if p.name == "assignments")
    assert all(notice in option.help for notice in NOTICES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_the_setting_alone_chooses_the_language_of_the_help(language: str) -> None:
    env = {"SELFCARE_OPS_LANG": language}
    result = CliRunner().invoke(
        main, ["invite", "client", "--help"], env=env, prog_name="selfcare-ops"
    )
    usage = {
        "fr": f"Utilisation{NBSP}: selfcare-ops invite client [OPTIONS] REF_CLIENT",
        "en": "Usage: selfcare-ops invite client [OPTIONS] CLIENT_REF",
    }
    assert result.output.startswith(usage[language])
    assert not betrayed(result.output, language)
    # --lang beats the setting, even when the other language is set.
    other = "en" if language == "fr" else "fr"
    flipped = CliRunner().invoke(main, ["--lang", other, "--help"], env=env)
    assert not betrayed(flipped.output, other)


@pytest.mark.parametrize(
    ("args", "fr", "en"),
    [
        (
            ["users", "list"],
            f"Erreur{NBSP}: Argument manquant 'REF_CLIENT'.",
            "Error: Missing argument 'CLIENT_REF'.",
        ),
        (
            ["users", "list", "CA", "--bogus"],
            f"Erreur{NBSP}: L'option '--bogus' n'existe pas.",
            "Error: No such option '--bogus'.",
        ),
        (
            ["users", "list", "CA", "--limit", "many"],
            f"Erreur{NBSP}: Valeur non valide pour '--limit'{NBSP}: 'many' n'est pas un nombre "
            "valide.",
            "Error: Invalid value for '--limit': 'many' is not a valid integer range.",
        ),
        (
            ["userz"],
            f"Erreur{NBSP}: La commande 'userz' n'existe pas.",
            "Error: No such command 'userz'.",
        ),
    ],
)
@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_usage_errors_read_in_one_language(args, fr, en, language) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        main, args, env={"SELFCARE_OPS_LANG": language}, prog_name="selfcare-ops"
    )
    assert result.exit_code == 2
    assert {"fr": fr, "en": en}[language] in result.stderr
    hint = {"fr": f"Essayez «{NBSP}selfcare-ops", "en": "Try 'selfcare-ops"}[language]
    assert hint in result.stderr
    assert not betrayed(result.stderr, language)


def test_a_bad_language_setting_does_not_stop_the_help() -> None:
    """The help prints (in French, the default) so that the user can read about --lang."""
    result = CliRunner().invoke(main, ["--help"], env={"SELFCARE_OPS_LANG": "de"})
    assert result.exit_code == 0
    assert result.output.startswith(f"Utilisation{NBSP}:")
