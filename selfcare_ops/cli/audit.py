"""``audit list``: the newest audit events the actor may see."""

from __future__ import annotations

import click

from .. import audit as audit_service
from . import main
from .common import CliContext, echo_json, echo_table, pass_cli


@main.group()
def audit() -> None:
    """Read the audit trail."""


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--action", help="Only this action, e.g. user.create.")
@click.option("--target", help="Only events about this target (login, reference or id).")
@click.option("--by", "actor_label", metavar="EMAIL", help="Only events by this actor.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@pass_cli
def audit_list(
    cli: CliContext,
    limit: int,
    action: str | None,
    target: str | None,
    actor_label: str | None,
    as_json: bool,
) -> None:
    """Who did what to what, newest first."""
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
