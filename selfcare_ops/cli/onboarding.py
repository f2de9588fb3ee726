"""``import users`` and ``import template``: CSV onboarding from a terminal."""

from __future__ import annotations

from pathlib import Path

import click

from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, pass_cli
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.onboarding import import_users, progress_bar, template_text, write_template
from selfcare_ops.store.models import utcnow

SHOWN_REJECTS = 10


@main.group("import", help=N_("Onboard users from the CSV files customers send."))
def import_group() -> None:
    """Onboard users from the CSV files customers send."""


def _default_report(cli: CliContext, file: Path) -> Path:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return cli.settings.data_dir / "reports" / f"{file.stem}-report-{stamp}.csv"


@import_group.command(
    "users",
    help=N_(
        "Validate FILE, show the plan, apply it (unless --dry-run) and write the "
        "report.\n\n"
        'An empty cell keeps the stored value of an existing user; a cell holding "-" '
        'clears it (rights: "non"). Notes name the lines to check (another encoding, a '
        "voided invitation link). Exit status 0 when no row was rejected, 1 otherwise; "
        "the report is written either way."
    ),
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--client", "client_ref", metavar="REF", help=N_("Client of every row without one."))
@click.option("--dry-run", is_flag=True, help=N_("Plan and report only; change nothing."))
@click.option("--invite", is_flag=True, help=N_("Invite the users who have an email."))
@click.option(
    "--strict", is_flag=True, help=N_("All or nothing: any rejected row stops the import.")
)
@click.option(
    "--create-sub-accounts", is_flag=True, help=N_("Create the sub-accounts the file names.")
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=N_("Where to write the report CSV (default: under the data directory, in reports/)."),
)
@click.option("--sep", default=";", show_default=True, help=N_("Separator of the report CSV."))
@click.option(
    "--encoding", default="utf-8-sig", show_default=True, help=N_("Encoding of the report CSV.")
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print the summary as a JSON object."))
@pass_cli
def import_users_command(
    cli: CliContext,
    file: Path,
    client_ref: str | None,
    dry_run: bool,
    invite: bool,
    strict: bool,
    create_sub_accounts: bool,
    report_path: Path | None,
    sep: str,
    encoding: str,
    as_json: bool,
) -> None:
    report_path = report_path or _default_report(cli, file)
    sessions = cli.sessions()
    with sessions() as session:
        actor = cli.actor(session)
    with progress_bar(_("Importing"), disable=True if as_json else None) as progress:
        report = import_users(
            sessions,
            actor,
            file,
            client_ref=client_ref,
            dry_run=dry_run,
            invite=invite,
            strict=strict,
            create_sub_accounts=create_sub_accounts,
            report_path=report_path,
            report_sep=sep,
            report_encoding=encoding,
            progress=progress,
            keep_rows=False,
        )
    counts = report.counts
    rejected = report.frame[report.frame["outcome"] == "rejected"]
    if as_json:
        shown_rejects = rejected.head(SHOWN_REJECTS)
        echo_json(
            {
                **counts,
                "report": str(report_path),
                "dry_run": dry_run,
                "run_id": report.run_id,
                "unknown_columns": report.unknown_columns,
                "warnings": report.warnings,
                "rejects": [
                    {"line": int(line), "reason_code": code, "reason": reason}
                    for line, code, reason in zip(
                        shown_rejects["line"],
                        shown_rejects["reason_code"],
                        shown_rejects["reason"],
                        strict=True,
                    )
                ],
            }
        )
    else:
        for warning in report.warnings:
            echo(_("Warning: {message}").format(message=warning))
        if report.unknown_columns:
            shown = ", ".join(f"'{c}'" for c in report.unknown_columns)
            echo(_("Columns not recognised (ignored): {columns}.").format(columns=shown))
        rejected = report.frame[report.frame["outcome"] == "rejected"]
        for reason in rejected["reason"].head(SHOWN_REJECTS):
            echo(_("Rejected: {reason}").format(reason=reason))
        if counts["reject"] > SHOWN_REJECTS:
            more = counts["reject"] - SHOWN_REJECTS
            echo(
                ngettext(
                    "... and {count} more rejected row.",
                    "... and {count} more rejected rows.",
                    more,
                ).format(count=more)
            )
        noted = report.frame[
            (report.frame["outcome"] != "rejected") & report.frame["notes"].fillna("").ne("")
        ]
        for line, notes in zip(
            noted["line"].head(SHOWN_REJECTS), noted["notes"].head(SHOWN_REJECTS), strict=True
        ):
            echo(_("Note: line {line}: {notes}").format(line=line, notes=notes))
        if len(noted) > SHOWN_REJECTS:
            echo(_("... and more notes in the report."))
        summary = report.summary()
        echo(_("Dry run: {summary}").format(summary=summary) if dry_run else summary)
        echo(_("Report: {path}").format(path=report_path))
    if counts["reject"]:
        raise click.exceptions.Exit(1)


@import_group.command(
    "template",
    help=N_("The CSV template with French or English headers (printed, or written with --out)."),
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help=N_("Write to this file.")
)
def import_template(lang: str, out: Path | None) -> None:
    if out is None:
        echo(template_text(lang), nl=False)
        return
    write_template(out, lang)
    echo(_("Template written to {path}.").format(path=out))
