"""``modules show|set|set-many``: the Selfcare sections users see, per organisation."""

from __future__ import annotations

from pathlib import Path

import click

from selfcare_ops import modules as service
from selfcare_ops.branding.tree import write_safe_csv
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, echo_table, pass_cli
from selfcare_ops.i18n import N_, _, ngettext


@main.group(help=N_("Show and toggle the modules (inherited down the tree)."))
def modules() -> None:
    """Show and toggle the modules (inherited down the tree)."""


@modules.command("show", help=N_("Every module of ORG: on or off, and which organisation decided."))
@click.argument("org_ref", metavar="ORG")
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def modules_show(cli: CliContext, org_ref: str, as_json: bool) -> None:
    with cli.sessions()() as session:
        states = service.show_modules(session, cli.actor(session), org_ref)
    if as_json:
        echo_json([state.as_dict() for state in states.values()])
        return
    for state in states.values():
        words = {True: _("on"), False: _("off"), None: _("inherit")}
        source = state.source or _("(built-in default)")
        line = _("{module} {enabled} from {source} own: {own}").format(
            module=f"{state.label:<30}",
            enabled=f"{words[state.enabled]:<4}",
            source=f"{source:<20}",
            own=words[state.own],
        )
        if state.impacts:
            line += "  " + _("impacts: {modules}").format(modules=", ".join(state.impacts))
        echo(line)


@modules.command("set", help=N_("Switch MODULE of ORG on, off, or back to inherit."))
@click.argument("org_ref", metavar="ORG")
@click.argument("module")
@click.argument("state", type=click.Choice(["on", "off", "inherit"]))
@pass_cli
def modules_set(cli: CliContext, org_ref: str, module: str, state: str) -> None:
    with cli.sessions().begin() as session:
        change = service.set_module(session, cli.actor(session), org_ref, module, state)
    echo(
        change.describe()
        if change.changed
        else _("Unchanged: {change}").format(change=change.describe())
    )


@modules.command(
    "set-many",
    help=N_("Plan switching MODULE for many clients (all in scope by default); --apply to do it."),
)
@click.argument("module")
@click.argument("state", type=click.Choice(["on", "off", "inherit"]))
@click.option("--under", metavar="REF", help=N_("Every client under this partner."))
@click.option(
    "--client", "clients", multiple=True, metavar="REF", help=N_("This client (repeatable).")
)
@click.option(
    "--apply", "do_apply", is_flag=True, help=N_("Apply the plan (default: show it only).")
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Write the plan (or the outcome) as CSV."),
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
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
        echo(
            ngettext("{count} client changed.", "{count} clients changed.", result.applied).format(
                count=result.applied
            )
        )
    else:
        echo(
            ngettext(
                "{count} client would change (dry run; --apply).",
                "{count} clients would change (dry run; --apply).",
                result.to_change,
            ).format(count=result.to_change)
        )
    impacts = result.impacts
    if impacts:
        echo(_("Impacted modules: {modules}.").format(modules=", ".join(impacts)))
