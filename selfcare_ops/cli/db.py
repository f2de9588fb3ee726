"""``db upgrade``, ``db recount`` and ``demo``: operator-wide work.

Without ``--as`` (nor ``SELFCARE_OPS_ACTOR``) they run as the installer, the system actor,
which is what creates a database in the first place. A named actor must be an operator
administrator: the schema, the counters and the demo data are the whole tree's.
"""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from selfcare_ops.access import require_operator
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, pass_cli
from selfcare_ops.demo import load_demo
from selfcare_ops.errors import DatabaseNotInitialisedError
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.store.db import describe, upgrade
from selfcare_ops.store.models import recount_users


def _require_named_operator(cli: CliContext, action: str) -> None:
    """A named actor must be an operator administrator; nobody named is the installer."""
    if cli.actor_name is None:
        return
    try:
        with cli.sessions(check=False)() as session:
            actor = cli.actor(session)
    except SQLAlchemyError as exc:  # no schema yet: nobody can be looked up
        raise DatabaseNotInitialisedError(
            _(
                "The actor {actor} cannot be checked on a database without its schema: run "
                "`selfcare-ops db upgrade` without --as (as the installer) first."
            ).format(actor=cli.actor_name)
        ) from exc
    require_operator(actor, action)


@main.group(help=N_("Create or migrate the database schema."))
def db() -> None:
    """Create or migrate the database schema."""


@db.command(
    "upgrade", help=N_("Migrate the database to this version's schema (safe to run again).")
)
@pass_cli
def db_upgrade(cli: CliContext) -> None:
    _require_named_operator(cli, "migrate the database")
    before, after = upgrade(cli.engine)
    where = describe(cli.engine)
    if before == after:
        echo(
            _("The database {where} is already at revision {after}.").format(
                where=where, after=after
            )
        )
    elif before:
        echo(
            _("Migrated {where} from {before} to revision {after}.").format(
                where=where, before=before, after=after
            )
        )
    else:
        echo(_("Migrated {where} from empty to revision {after}.").format(where=where, after=after))


@db.command(
    "recount",
    help=N_(
        "Rebuild the per-client user counts from the users table.\n\n"
        "The toolkit keeps them right itself; run this after inserting users with "
        "hand-written SQL."
    ),
)
@pass_cli
def db_recount(cli: CliContext) -> None:
    _require_named_operator(cli, "recount the users of every client")
    with cli.engine.begin() as connection:
        wrong = recount_users(connection)
    if not wrong:
        echo(_("The per-client user counts were right: nothing changed."))
    else:
        echo(
            ngettext(
                "Corrected {count} per-client user count.",
                "Corrected {count} per-client user counts.",
                len(wrong),
            ).format(count=len(wrong))
        )


@main.command(
    help=N_(
        "The main job: migrate, load the demo data, then onboard, invite, deliver and "
        "report.\n\n"
        "Onboards the packaged sample (demo/data/onboarding_sample.csv) into the demo "
        "client, invites the demo client's users, delivers into the Maildir (embedded "
        "default) and writes the adoption report, each through papermill like a "
        "scheduled run; then prints where everything is. Idempotent; works from an "
        "installed wheel (no checkout needed)."
    )
)
@click.option("--quiet", is_flag=True, help=N_("Print nothing but errors."))
@click.option(
    "--no-jobs",
    is_flag=True,
    help=N_("Only migrate and load the demo data; skip the notebook jobs."),
)
@pass_cli
def demo(cli: CliContext, quiet: bool, no_jobs: bool) -> None:
    _require_named_operator(cli, "load the demo data")
    if not no_jobs:
        from selfcare_ops.jobs import run_main_job

        result = run_main_job(cli.settings, actor=cli.actor_name)
        if not quiet:
            for line in result.lines():
                echo(line)
            _echo_demo_link(cli)
        return
    upgrade(cli.engine)
    with cli.sessions().begin() as session:
        summary = load_demo(session)
    if not quiet:
        echo(
            _(
                "Demo data in {where}: {organisations} organisations, {users} users (added now: "
                "{organisations_added} organisations, {sub_accounts_added} sub-accounts, "
                "{users_added} users, {administrators_added} administrators)."
            ).format(
                where=describe(cli.engine),
                organisations=summary.organisations,
                users=summary.users,
                organisations_added=summary.organisations_added,
                sub_accounts_added=summary.sub_accounts_added,
                users_added=summary.users_added,
                administrators_added=summary.administrators_added,
            )
        )


def _echo_demo_link(cli: CliContext) -> None:
    """One demo user's acceptance link and the command that serves it."""
    from selfcare_ops.access_words import contracted
    from selfcare_ops.demo.portal import SERVE_COMMAND, demo_acceptance_link

    with cli.sessions().begin() as session:
        found = demo_acceptance_link(session)
    if found is not None:
        login, link = found
        echo(contracted(_("Acceptance link of {login}: {link}").format(login=login, link=link)))
        echo(_("Serve it with: {command}").format(command=SERVE_COMMAND))
