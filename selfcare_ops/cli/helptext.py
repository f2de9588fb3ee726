"""``--help`` and click's own words in the current language.

Help texts are written in English and marked with :func:`~selfcare_ops.i18n.N_` where commands
are declared (at import, before ``--lang`` is read); :class:`HelpCommand` and :class:`HelpGroup`
translate them when the help is printed. click words its usage lines, headings and usage
errors with ``gettext`` imported into each of its modules; :func:`speak_for_click` points those
names at our catalogs, whose msgids include click's (:data:`CLICK_MESSAGES`). Only the standard
``gettext`` module reads the catalogs: the help stays as quick to print as click's own.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
from typing import Any

import click

from selfcare_ops.cli.output import terminal_columns
from selfcare_ops.i18n import DEFAULT_LANGUAGE, N_, NN_, current_language, translations

#: The messages of click a user of ``selfcare-ops`` can meet, so that the catalogs carry them
#: (click's own strings, marked here for extraction; see :func:`speak_for_click`).
CLICK_MESSAGES = [
    N_("Usage:"),
    N_("{heading}:"),
    N_("Options"),
    N_("Commands"),
    N_("Positional arguments"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"),
    N_("Aborted!"),
    N_("Missing command."),
    N_("env var: {var}"),
    N_("default: {default}"),
    N_("required"),
    N_("(dynamic)"),
    N_("deprecated"),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing parameter: {param_name}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Could not open file {filename!r}: {message}"),
    N_("Option {name!r} does not take a value."),
    N_("Argument {name!r} takes {nargs} values."),
    N_("Repeat for confirmation"),
    N_("Error: The two entered values do not match."),
    N_("Error: invalid input"),
    N_("Choose from:\n\t{choices}"),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is not readable."),
    N_("{name} {filename!r} is not writable."),
    N_("{name} {filename!r} does not exist."),
]

#: click's messages whose form depends on a number: (singular, plural), for the catalogs.
CLICK_PLURALS = [
    NN_("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    NN_("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    NN_("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    NN_("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
    NN_(
        "{value!r} does not match the format {format}.",
        "{value!r} does not match the formats {formats}.",
    ),
]

#: Every word of a metavar people read in ``--help`` (arguments' names, ``metavar=`` and
#: click's type names), by its English spelling.
METAVAR_WORDS = [
    N_("OPTIONS"),
    N_("COMMAND"),
    N_("ARGS"),
    N_("CLIENT_REF"),
    N_("DATE"),
    N_("DOMAIN"),
    N_("EMAIL"),
    N_("FILE"),
    N_("INTEGER"),
    N_("INTEGER RANGE"),
    N_("FLOAT"),
    N_("FLOAT RANGE"),
    N_("FILENAME"),
    N_("KEY"),
    N_("VALUE"),
    N_("KIND"),
    N_("LANGUAGE"),
    N_("LOGIN"),
    N_("MODULE"),
    N_("NAME"),
    N_("NEW_NAME"),
    N_("NOTICE"),
    N_("CHANNELS"),
    N_("OLD_NAME"),
    N_("ORG"),
    N_("PATH"),
    N_("REF"),
    N_("ROLE"),
    N_("STATE"),
    N_("SUB_ACCOUNT"),
    N_("TEXT"),
    N_("TOKEN"),
    N_("URL"),
]

#: A metavar's words: "INTEGER RANGE" first (one word for people), then the upper-case names.
METAVAR_WORD = re.compile(r"(?:INTEGER|FLOAT) RANGE|[A-Z][A-Z_]*[A-Z]")


def _catalog() -> Any:
    """The catalog of the current language; a bad ``SELFCARE_OPS_LANG`` must not stop the help
    (nor the usage error naming it) from printing: the default language speaks then."""
    try:
        language = current_language()
    except Exception as error:
        from selfcare_ops.errors import ConfigurationError  # loaded by then: i18n raised it

        if not isinstance(error, ConfigurationError):
            raise
        language = DEFAULT_LANGUAGE
    return translations(language)


def gettext(message: str) -> str:
    return _catalog().gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _catalog().ngettext(singular, plural, count)


def metavar_words(text: str) -> str:
    """``text`` with each metavar word in the current language (``[CLIENT_REF]`` stays
    bracketed, ``--limit INTEGER RANGE`` keeps its option name)."""
    return METAVAR_WORD.sub(lambda word: gettext(word.group()), text)


#: click names its path types once, when a command is declared: kept in English, their
#: metavars (``FILE``) are translated as words when printed, in the language of the moment.
TYPE_NAMES = frozenset({"file", "directory", "path"})


def _types_gettext(message: str) -> str:
    return message if message in TYPE_NAMES else gettext(message)


def speak_for_click() -> None:
    """Make click's own words (usage, headings, usage errors) come from our catalogs.

    click imports ``gettext`` and ``ngettext`` into each of its modules; the ones loaded now
    get ours (modules click loads later, shell completion, only talk to shells).
    """
    import gettext as stdlib

    for name, module in list(sys.modules.items()):
        if name != "click" and not name.startswith("click."):
            continue
        if getattr(module, "_", None) is stdlib.gettext:
            module._ = _types_gettext if name == "click.types" else gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is stdlib.ngettext:
            module.ngettext = ngettext  # type: ignore[attr-defined]


class HelpFormatter(click.HelpFormatter):
    """Headings as the language writes them ("Options :" in French, with its space)."""

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{gettext('{heading}:').format(heading=heading)}\n")


class HelpContext(click.Context):
    """Help in :class:`HelpFormatter`, as wide as click makes it but measured without
    :mod:`shutil` (:func:`.output.terminal_columns`): ``--help`` imports nothing more."""

    formatter_class = HelpFormatter

    def make_formatter(self) -> click.HelpFormatter:
        width = self.terminal_width
        if width is None and click.formatting.FORCED_WIDTH is None:  # click's own rule
            width = max(min(terminal_columns(), self.max_content_width or 80) - 2, 50)
        return self.formatter_class(width=width, max_width=self.max_content_width)


def _translated(param: click.Parameter) -> click.Parameter:
    """A copy of ``param`` whose help reads in the current language (for printing only: the
    parser keeps the original)."""
    if not getattr(param, "help", None):
        return param
    shown = copy.copy(param)
    shown.help = gettext(param.help)  # type: ignore[attr-defined]
    return shown


class HelpCommand(click.Command):
    """A command whose help, short help and options' help print in the current language."""

    context_class = HelpContext

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:  # click words it once, maybe before --lang: keep the msgid
            option.help = "Show this message and exit."
        return option

    def get_short_help_str(self, limit: int = 45) -> str:
        shown = copy.copy(self)  # click shortens the help its own way: give it ours
        shown.help = gettext(self.help) if self.help else self.help
        shown.short_help = gettext(self.short_help) if self.short_help else self.short_help
        return click.Command.get_short_help_str(shown, limit)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        text = inspect.cleandoc(gettext(self.help)).partition("\f")[0] if self.help else ""
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.BadParameter as error:  # name the argument as the usage line does
            if error.param_hint is None and isinstance(error.param, click.Argument):
                error.param_hint = metavar_words(error.param.get_error_hint(ctx))
            raise

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [metavar_words(piece) for piece in super().collect_usage_pieces(ctx)]

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        arguments = [p for p in self.get_params(ctx) if isinstance(p, click.Argument)]
        if any(argument.help is not None for argument in arguments):
            rows = []
            for argument in arguments:
                spec, text = _translated(argument).get_help_record(ctx)
                rows.append((metavar_words(spec), text))
            with formatter.section(gettext("Positional arguments")):
                formatter.write_dl(rows)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                continue
            record = _translated(param).get_help_record(ctx)
            if record is not None:
                rows.append((metavar_words(record[0]), record[1]))
        if rows:
            with formatter.section(gettext("Options")):
                formatter.write_dl(rows)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)


class HelpGroup(HelpCommand, click.Group):
    """A group that prints its help as :class:`HelpCommand` does, and whose commands and
    subgroups are declared as help-translating ones."""

    command_class = HelpCommand
    group_class: type[click.Group] | None = None  # set below: the class itself


HelpGroup.group_class = HelpGroup
