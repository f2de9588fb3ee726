"""``branding show|set|reset|preview|check-image|audit``: the personalisation from a terminal."""

from __future__ import annotations

from pathlib import Path

import click

from selfcare_ops import branding as service
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, echo_table, pass_cli
from selfcare_ops.i18n import N_, _, ngettext


@main.group(help=N_("Show, set, reset, preview and audit the branding (inherited down the tree)."))
def branding() -> None:
    """Show, set, reset, preview and audit the branding (inherited down the tree)."""


def _echo_issues(issues: list[dict]) -> None:
    for issue in issues:
        echo(_("Warning: {message}").format(message=issue["message"]))


@branding.command(
    "show",
    help=N_(
        "The effective branding of ORG: each field, its value and the organisation it comes from."
    ),
)
@click.argument("org_ref", metavar="ORG")
@click.option("--json", "as_json", is_flag=True, help=N_("Print one JSON object."))
@pass_cli
def branding_show(cli: CliContext, org_ref: str, as_json: bool) -> None:
    with cli.sessions()() as session:
        report = service.describe_branding(session, cli.actor(session), org_ref)
    if as_json:
        echo_json(report)
        return
    for name in service.FIELDS:
        value, source = report[name]["value"], report[name]["source"]
        if isinstance(value, dict):
            value = (
                f"{value['mime']} {value['width']}x{value['height']} sha256:{value['sha256'][:12]}"
            )
        if name == "gradient_color" and value is None:
            value = _("(no gradient)")
        source = source or _("(built-in default)")
        echo(f"{name:<15} {'' if value is None else value!s:<50} {source}")
    _echo_issues(report["warnings"])


@branding.command(
    "set", help=N_("Set one or several branding fields of ORG (the others keep inheriting).")
)
@click.argument("org_ref", metavar="ORG")
@click.option("--logo", type=click.Path(dir_okay=False, path_type=Path), help=N_("JPEG or PNG."))
@click.option("--fit", is_flag=True, help=N_("Downscale a logo above 600 px, keeping its ratio."))
@click.option("--primary", metavar="C", help=N_("Primary colour: #rgb, #rrggbb or a CSS name."))
@click.option("--gradient", metavar="C", help=N_("Gradient end colour, or 'none' for no gradient."))
@click.option("--text", "text_color", metavar="C", help=N_("Text colour on the primary colour."))
@click.option("--banner", type=click.Path(dir_okay=False, path_type=Path), help=N_("JPEG or PNG."))
@click.option("--link", metavar="URL", help=N_("Banner link (https:// only)."))
@click.option("--message", metavar="TEXT", help=N_("Dashboard message, at most 150 characters."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print the result as JSON."))
@pass_cli
def branding_set(
    cli: CliContext,
    org_ref: str,
    logo: Path | None,
    fit: bool,
    primary: str | None,
    gradient: str | None,
    text_color: str | None,
    banner: Path | None,
    link: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    logo_bytes = service.read_upload(logo, "logo") if logo else None
    banner_bytes = service.read_upload(banner, "banner") if banner else None
    with cli.sessions().begin() as session:
        change = service.set_branding(
            session,
            cli.actor(session),
            org_ref,
            logo=logo_bytes,
            fit=fit,
            primary_color=primary,
            gradient_color=gradient,
            text_color=text_color,
            banner=banner_bytes,
            banner_link=link,
            banner_message=message,
        )
        issues = [i.as_dict() for i in change.issues]
        changed = change.changed
        images = [image.summary() for image in change.images]
    if as_json:
        echo_json(
            {"organisation": org_ref, "changed": changed, "images": images, "warnings": issues}
        )
        return
    what = ", ".join(changed) if changed else _("nothing changed")
    echo(_("Branding of {ref} updated: {what}.").format(ref=org_ref, what=what))
    for summary in images:
        echo(_("Stored {summary}").format(summary=summary))
    _echo_issues(issues)


@branding.command(
    "reset", help=N_("Make fields of ORG inherit again (all of them unless --field is given).")
)
@click.argument("org_ref", metavar="ORG")
@click.option(
    "--field",
    "fields",
    multiple=True,
    type=click.Choice(service.FIELDS),
    help=N_("Reset only this field (repeatable); without it, everything of ORG."),
)
@pass_cli
def branding_reset(cli: CliContext, org_ref: str, fields: tuple[str, ...]) -> None:
    with cli.sessions().begin() as session:
        change = service.reset_branding(session, cli.actor(session), org_ref, list(fields) or None)
        changed = change.changed
        issues = [i.as_dict() for i in change.issues]
    what = ", ".join(changed) if changed else _("nothing was set here")
    echo(_("Branding of {ref} reset to inherit: {what}.").format(ref=org_ref, what=what))
    _echo_issues(issues)


@branding.command(
    "preview",
    help=N_(
        "Draw the Selfcare of ORG with its effective branding and modules (--out), or "
        "print a link to it in the portal (--link, served by `selfcare-ops serve`)."
    ),
)
@click.argument("org_ref", metavar="ORG")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("FILE.png (or FILE.html for the HTML preview)."),
)
@click.option(
    "--link",
    is_flag=True,
    help=N_("Print a signed portal link (valid 1 hour) to ORG's Selfcare as its users see it."),
)
@pass_cli
def branding_preview(cli: CliContext, org_ref: str, out: Path | None, link: bool) -> None:
    if out is None and not link:
        raise click.UsageError("Give --out FILE, --link, or both.")
    with cli.sessions()() as session:
        actor = cli.actor(session)
        if out is not None:
            echo(str(service.write_preview(session, actor, org_ref, out)))
        if link:
            from selfcare_ops.access import require_organisation
            from selfcare_ops.organisations import get_organisation
            from selfcare_ops.web.links import preview_link

            org = get_organisation(session, org_ref)
            require_organisation(actor, org, "preview the branding of")
            echo(preview_link(org.id, settings=cli.settings))


@branding.command(
    "check-image",
    help=N_("Exit 0 if FILE is acceptable as a logo or banner; exit 1 with the reason otherwise."),
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["logo", "banner"]), required=True)
@click.option(
    "--fit", is_flag=True, help=N_("Accept a logo above 600 px (it would be downscaled).")
)
def branding_check_image(file: Path, kind: str, fit: bool) -> None:
    checked = service.check_image(service.read_upload(file, kind), kind, fit=fit)
    echo(_("Acceptable: {summary}").format(summary=checked.summary()))


@branding.command(
    "audit", help=N_("Every organisation whose effective branding is unreadable or lacks an image.")
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Also write the audit as CSV (';', UTF-8 with BOM)."),
)
@pass_cli
def branding_audit(cli: CliContext, as_json: bool, csv_path: Path | None) -> None:
    with cli.sessions()() as session:
        frame = service.branding_audit(session, cli.actor(session))
    if csv_path is not None:
        service.write_audit_csv(frame, csv_path)
    if as_json:
        echo_json(frame)
        return
    echo_table(frame, ["organisation_ref", "kind", "codes", "suggested_text_color"])
    echo(
        ngettext(
            "{count} organisation with branding problems.",
            "{count} organisations with branding problems.",
            len(frame),
        ).format(count=len(frame))
    )
    if csv_path is not None:
        echo(_("CSV written to {path}").format(path=csv_path))


from selfcare_ops.cli import modules as _modules  # noqa: E402,F401  (the modules group lives next door)
