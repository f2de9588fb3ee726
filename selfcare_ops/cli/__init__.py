"""The ``selfcare-ops`` command: a thin shell over the services.

Each command reads its input, calls one service, and prints the result or the error. Errors
the toolkit raises on purpose print as one sentence on stderr with exit status 1 (usage errors:
2); nothing prints a traceback unless ``SELFCARE_OPS_DEBUG=1``. Output goes through
:func:`.output.echo`, for which a reader that went away (``| head -1``) ends the output quietly
without interrupting the command's work.

Commands load lazily (:class:`SelfcareGroup`, :data:`COMMANDS`): starting the program imports
click and nothing else of weight, so ``selfcare-ops --help`` answers at once and each command
pays only for the modules it uses (pandas, SQLAlchemy, the services) when it runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from selfcare_ops.cli.helptext import HelpGroup, gettext, speak_for_click
from selfcare_ops.cli.output import discard_output, echo, reset_output
from selfcare_ops.i18n import (
    LANGUAGES,
    N_,
    _,
    current_language,
    fallback_language,
    set_language,
)

#: Command modules, each adding its groups and commands to :data:`main` when imported.
COMMAND_MODULES = [
    "db",
    "directory",
    "audit",
    "jobs",
    "invitations",
    "rights",
    "mail",
    "branding",
    "modules",
    "onboarding",
    "organisations",
    "users",
    "serve",
]

#: Top-level command -> (its one-line help, the command modules that define it).
#: ``--help`` reads the help here, without importing anything; running a command imports its
#: modules (subcommands defined elsewhere: :class:`SpreadGroup`). ``tests/test_cli_startup.py``
#: checks that the registry and the modules stay in step.
#: The helps are msgids (``N_``), translated when printed.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "apikeys": (
        N_("A client's API key: create, regenerate, revoke, list (administrators only)."),
        ("rights",),
    ),
    "audit": (N_("Read the audit trail."), ("audit",)),
    "branding": (
        N_("Show, set, reset, preview and audit the branding (inherited down the tree)."),
        ("branding",),
    ),
    "clients": (N_("Search and list clients."), ("directory",)),
    "db": (N_("Create or migrate the database schema."), ("db",)),
    "demo": (
        N_("The main job: migrate, load the demo data, then onboard, invite, deliver and report."),
        ("db",),
    ),
    "import": (N_("Onboard users from the CSV files customers send."), ("onboarding",)),
    "invite": (
        N_("Send, resend, revoke, expire and accept Selfcare invitations."),
        ("invitations",),
    ),
    "jobs": (N_("Run the scheduled notebooks and read their history."), ("jobs",)),
    "mail": (N_("Deliver the queued mail and see the outbox."), ("mail",)),
    "modules": (N_("Show and toggle the modules (inherited down the tree)."), ("modules",)),
    "orgs": (
        N_("Create partners and clients, rename them, set their mail language."),
        ("organisations",),
    ),
    "rights": (
        N_("Per-user rights (manage rights, place orders, view invoices) and restrictions."),
        ("rights",),
    ),
    "subaccounts": (
        N_("Sub-accounts of a client: list, create, rename (administrators only)."),
        ("rights",),
    ),
    "serve": (
        N_("Serve the links the mails carry: invitations, the Selfcare home, supervision, images."),
        ("serve",),
    ),
    "users": (N_("List and manage users."), ("directory",)),
}


#: Libraries whose log records would reach stderr through logging's last-resort handler (a
#: pool resetting a dead connection logs three chained tracebacks): the command prints one
#: sentence instead. Configured handlers (root, or these loggers) still receive the records.
QUIET_LIBRARY_LOGGERS = ("sqlalchemy", "psycopg")


def quiet_library_loggers() -> None:
    """Give each of :data:`QUIET_LIBRARY_LOGGERS` a null handler (once), unless
    ``SELFCARE_OPS_DEBUG`` is set. Done when a command runs, not at import: ``--help`` does
    not import :mod:`logging`."""
    if os.environ.get("SELFCARE_OPS_DEBUG"):
        return
    import logging

    for name in QUIET_LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


class SpreadGroup(HelpGroup):
    """A group whose subcommands other modules define (``users``): running one imports the
    module that defines it only, so ``users list`` does not load the invitation services.

    ``spread`` maps each such subcommand to its module; ``--help`` of the group loads them all.
    """

    def __init__(self, *args: Any, spread: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spread = dict(spread or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.spread:
            importlib.import_module(f"{__name__}.{self.spread[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(self.spread.values())):
            importlib.import_module(f"{__name__}.{module}")
        return super().list_commands(ctx)


def _shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word, as click shortens a command's help."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)].rsplit(" ", 1)[0] + "..."


class SelfcareGroup(HelpGroup):
    """Loads each command on first use, and turns every toolkit error into one sentence on
    stderr and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Imported every time (a no-op once loaded): another command's module may have defined
        # the group already without the registry's modules having run.
        for module in COMMANDS.get(cmd_name, ("", ()))[1]:
            importlib.import_module(f"{__name__}.{module}")
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS`, so that ``--help`` imports no command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if name in COMMANDS:
                rows.append((name, _shortened(gettext(COMMANDS[name][0]), limit)))
            elif command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section(gettext("Commands")):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from selfcare_ops.errors import SelfcareError  # not imported by --help

        try:
            return super().invoke(ctx)
        except SelfcareError as error:
            echo(_("Error: {error}").format(error=error), err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # Only output written around :func:`.output.echo` gets here: stop quietly, with
            # the status a shell gives a command whose pipe reader went away (128 + SIGPIPE).
            discard_output()
            sys.exit(141)
        except KeyboardInterrupt:
            echo(_("Interrupted."), err=True)
            sys.exit(130)
        except Exception as error:
            if os.environ.get("SELFCARE_OPS_DEBUG"):
                raise
            from sqlalchemy.exc import DBAPIError  # loaded by then if the database was used

            if isinstance(error, DBAPIError):  # a damaged schema, a database lost mid-command
                from selfcare_ops.store.db import database_error

                settings = getattr(ctx.obj, "settings", None)
                translated = database_error(error, settings.database_url if settings else None)
                click.echo(_("Error: {error}").format(error=translated), err=True)
                sys.exit(1)
            echo(
                _(
                    "Error: unexpected {name}: {error} (set SELFCARE_OPS_DEBUG=1 to see where)."
                ).format(name=type(error).__name__, error=error),
                err=True,
            )
            sys.exit(1)


# Before the declarations: click words some of them (``--version``) through gettext, which
# would otherwise search the system's locale folders for a catalog of its own.
speak_for_click()


@click.group(
    cls=SelfcareGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=N_("Run the Selfcare portal: directory, invitations, onboarding, branding, jobs."),
)
@click.option(
    "--as",
    "actor_email",
    metavar="EMAIL",
    envvar="SELFCARE_OPS_ACTOR",
    help=N_(
        "Act as this administrator or manager (default, when neither this nor "
        "SELFCARE_OPS_ACTOR is set: the system actor; an empty value is an error)."
    ),
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    is_eager=True,  # read before --help and before the usage errors click words
    expose_value=True,
    callback=lambda _ctx, _param, value: set_language(value) or value,
    help=N_(
        "The language of what this command prints (default: SELFCARE_OPS_LANG, else the "
        "POSIX locale, else French)."
    ),
)
@click.version_option(package_name="selfcare-ops", help=N_("Show the version and exit."))
@click.pass_context
def main(ctx: click.Context, actor_email: str | None, lang: str | None) -> None:
    """The program's options, read before any command (``--lang`` even before ``--help``)."""
    from selfcare_ops.access import check_actor_name
    from selfcare_ops.cli.common import CliContext
    from selfcare_ops.errors import ConfigurationError

    reset_output()
    quiet_library_loggers()
    set_language(lang)
    try:
        current_language()
    except ConfigurationError:  # a bad SELFCARE_OPS_LANG: one sentence, in the fallback language
        set_language(fallback_language())
        raise
    ctx.obj = CliContext(actor_email=actor_email)
    ctx.call_on_close(ctx.obj.close)
    # Before any command, even those that never open the database: one sentence, exit 1.
    check_actor_name(ctx.obj.actor_name)
