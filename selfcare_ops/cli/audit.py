"""``audit list`` and ``audit export``: the audit events the actor may see."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from selfcare_ops import audit as audit_service
from selfcare_ops.cli import main
from selfcare_ops.cli.common import (
    CliContext,
    UsageError,
    echo,
    echo_json,
    echo_table,
    pass_cli,
)
from selfcare_ops.i18n import N_, _, ngettext


@main.group(help=N_("Read the audit trail."))
def audit() -> None:
    """Read the audit trail."""


@audit.command("list", help=N_("Who did what to what, newest first."))
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--action", help=N_("Only this action, e.g. user.create."))
@click.option("--target", help=N_("Only events about this target (login, reference or id)."))
@click.option("--by", "actor_label", metavar="EMAIL", help=N_("Only events by this actor."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def audit_list(
    cli: CliContext,
    limit: int,
    action: str | None,
    target: str | None,
    actor_label: str | None,
    as_json: bool,
) -> None:
    with cli.read_sessions()() as session:
        events = audit_service.list_events(
            session,
            cli.actor(session),
            limit=limit,
            action=action,
            target=target,
            actor_label=actor_label,
        )
    if as_json:
        echo_json(events)
        return
    echo_table(events, ["occurred_at", "actor_label", "action", "target_type", "target_label"])


def _moment(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> date | datetime | None:
    """``2026-03-01`` (a whole day) or ``2026-03-01T14:30`` (UTC unless a zone is given)."""
    if value is None:
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            _(
                "Invalid value for {option}: '{value}' is not a date like 2026-03-01 or a time "
                "like 2026-03-01T14:30."
            ).format(option=f"--{param.name}", value=value)
        ) from None


@audit.command(
    "export",
    help=N_(
        "Write the audit trail you may see to a CSV file, oldest first: when, who, "
        "what, on which target and organisation, the values before and after (JSON)."
    ),
)
@click.option(
    "--csv",
    "csv_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help=N_("File to write (';', UTF-8 with BOM, for Excel)."),
)
@click.option("--since", callback=_moment, metavar="DATE", help=N_("From this day or time (UTC)."))
@click.option(
    "--until", callback=_moment, metavar="DATE", help=N_("To this day (included) or time.")
)
@click.option("--org", "org_ref", metavar="REF", help=N_("Only this organisation and those below."))
@click.option("--target", help=N_("Only events about this target (login, reference or id)."))
@pass_cli
def audit_export(
    cli: CliContext,
    csv_path: Path,
    since: date | datetime | None,
    until: date | datetime | None,
    org_ref: str | None,
    target: str | None,
) -> None:
    with cli.read_sessions()() as session:
        count = audit_service.export_csv(
            session,
            cli.actor(session),
            csv_path,
            since=since,
            until=until,
            org_ref=org_ref,
            target=target,
        )
    echo(
        ngettext(
            "{count} event written to {path}.", "{count} events written to {path}.", count
        ).format(count=count, path=csv_path)
    )
