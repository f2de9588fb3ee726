"""The ``selfcare-ops`` command: a thin shell over the services.

Each command reads its input, calls one service, and prints the result or the error. Errors
the toolkit raises on purpose print as one sentence on stderr with exit status 1 (usage errors:
2); nothing prints a traceback unless ``SELFCARE_OPS_DEBUG=1``. Output goes through
:func:`.common.echo`, for which a reader that went away (``| head -1``) ends the output quietly
without interrupting the command's work.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click
from sqlalchemy.exc import DBAPIError

from selfcare_ops.access import check_actor_name
from selfcare_ops.cli.common import CliContext, discard_output, echo, reset_output
from selfcare_ops.errors import SelfcareError
from selfcare_ops.i18n import LANGUAGES, _, set_language
from selfcare_ops.store.db import database_error

#: Command modules, each adding its groups and commands to :data:`main`.
COMMAND_MODULES = ["db", "directory", "audit"]
COMMAND_MODULES.append("jobs")
COMMAND_MODULES.append("invitations")
COMMAND_MODULES.append("rights")
COMMAND_MODULES.append("mail")
COMMAND_MODULES.append("branding")
COMMAND_MODULES.append("onboarding")
COMMAND_MODULES.append("organisations")
COMMAND_MODULES.append("users")
COMMAND_MODULES.append("serve")


#: Libraries whose log records would reach stderr through logging's last-resort handler (a
#: pool resetting a dead connection logs three chained tracebacks): the command prints one
#: sentence instead. Configured handlers (root, or these loggers) still receive the records.
QUIET_LIBRARY_LOGGERS = ("sqlalchemy", "psycopg")
if not os.environ.get("SELFCARE_OPS_DEBUG"):
    for _logger in QUIET_LIBRARY_LOGGERS:
        logging.getLogger(_logger).addHandler(logging.NullHandler())


class SelfcareGroup(click.Group):
    """Turns every toolkit error into one sentence on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except SelfcareError as error:
            echo(_("Error: {error}").format(error=error), err=True)
            sys.exit(1)
        except DBAPIError as error:  # a damaged schema, a database lost mid-command
            if os.environ.get("SELFCARE_OPS_DEBUG"):
                raise
            settings = getattr(ctx.obj, "settings", None)
            translated = database_error(error, settings.database_url if settings else None)
            click.echo(_("Error: {error}").format(error=translated), err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # Only output written around :func:`.common.echo` gets here: stop quietly, with
            # the status a shell gives a command whose pipe reader went away (128 + SIGPIPE).
            discard_output()
            sys.exit(141)
        except KeyboardInterrupt:
            echo(_("Interrupted."), err=True)
            sys.exit(130)
        except Exception as error:
            if os.environ.get("SELFCARE_OPS_DEBUG"):
                raise
            echo(
                _(
                    "Error: unexpected {name}: {error} (set SELFCARE_OPS_DEBUG=1 to see where)."
                ).format(name=type(error).__name__, error=error),
                err=True,
            )
            sys.exit(1)


@click.group(cls=SelfcareGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--as",
    "actor_email",
    metavar="EMAIL",
    envvar="SELFCARE_OPS_ACTOR",
    help="Act as this administrator or manager (default, when neither this nor "
    "SELFCARE_OPS_ACTOR is set: the system actor; an empty value is an error).",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    help="The language of what this command prints (default: SELFCARE_OPS_LANG, else the "
    "POSIX locale, else French).",
)
@click.version_option(package_name="selfcare-ops")
@click.pass_context
def main(ctx: click.Context, actor_email: str | None, lang: str | None) -> None:
    """Run the Selfcare portal: directory, invitations, onboarding, branding, jobs."""
    reset_output()
    set_language(lang)
    ctx.obj = CliContext(actor_email=actor_email)
    ctx.call_on_close(ctx.obj.close)
    # Before any command, even those that never open the database: one sentence, exit 1.
    check_actor_name(ctx.obj.actor_name)


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
