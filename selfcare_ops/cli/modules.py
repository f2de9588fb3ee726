"""``modules show|set|set-many``: the Selfcare sections users see, per organisation."""

from __future__ import annotations

from pathlib import Path

import click

from selfcare_ops import modules as service
from selfcare_ops.branding.tree import write_safe_csv
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, echo_table, pass_cli


@main.group()
def modules() -> None:
    """Show and toggle the modules (inherited down the tree)."""


@modules.command("show")
@click.argument("org_ref", metavar="ORG")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@pass_cli
def modules_show(cli: CliContext, org_ref: str, as_json: bool) -> None:
    """Every module of ORG: on or off, and which organisation decided."""
    with cli.sessions()() as session:
        states = service.show_modules(session, cli.actor(session), org_ref)
    if as_json:
        echo_json([state.as_dict() for state in states.values()])
        return
    for state in states.values():
        own = {True: "on", False: "off", None: "inherit"}[state.own]
        source = state.source or "(built-in default)"
        line = (
            f"{state.label:<30} {'on' if state.enabled else 'off':<4} from {source:<20} own: {own}"
        )
        if state.impacts:
            line += f"  impacts: {', '.join(state.impacts)}"
        echo(line)


@modules.command("set")
@click.argument("org_ref", metavar="ORG")
@click.argument("module")
@click.argument("state", type=click.Choice(["on", "off", "inherit"]))
@pass_cli
def modules_set(cli: CliContext, org_ref: str, module: str, state: str) -> None:
    """Switch MODULE of ORG on, off, or back to inherit."""
    with cli.sessions().begin() as session:
        change = service.set_module(session, cli.actor(session), org_ref, module, state)
    echo(change.describe() if change.changed else f"Unchanged: {change.describe()}")


@modules.command("set-many")
@click.argument("module")
@click.argument("state", type=click.Choice(["on", "off", "inherit"]))
@click.option("--under", metavar="REF", help="Every client under this partner.")
@click.option("--client", "clients", multiple=True, metavar="REF", help="This client (repeatable).")
@click.option("--apply", "do_apply", is_flag=True, help="Apply the plan (default: show it only).")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan (or the outcome) as CSV.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@pass_cli
def modules_set_many(
    cli: CliContext,
    module: str,
    state: str,
    under: str | None,
    clients: tuple[str, ...],
    do_apply: bool,
    csv_path: Path | None,
    as_json: bool,
) -> None:
    """Plan switching MODULE for many clients (all in scope by default); --apply to do it."""
    with cli.sessions().begin() as session:
        result = service.change_many(
            session,
            cli.actor(session),
            module,
            state,
            refs=list(clients) or None,
            under=under,
            apply=do_apply,
        )
    frame = result.frame
    if csv_path is not None:
        write_safe_csv(frame, csv_path)
    if as_json:
        echo_json(frame)
        return
    columns = ["organisation_ref", "own_before", "enabled_before", "action", "reason"]
    if isinstance(result, service.ModuleOutcome):
        columns.append("outcome")
    echo_table(frame, columns)
    if isinstance(result, service.ModuleOutcome):
        echo(f"{result.applied} clients changed.")
    else:
        echo(f"{result.to_change} clients would change (dry run; --apply).")
    impacts = result.impacts
    if impacts:
        echo(f"Impacted modules: {', '.join(impacts)}.")
