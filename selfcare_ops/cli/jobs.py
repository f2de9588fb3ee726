"""``jobs list``, ``jobs path NAME``, ``jobs run NAME [-p KEY VALUE ...]`` and ``jobs history``."""

from __future__ import annotations

import sys

import click
import pandas as pd

from selfcare_ops import jobs as jobs_service
from selfcare_ops.cli import main
from selfcare_ops.cli.common import CliContext, echo, echo_json, echo_table, pass_cli
from selfcare_ops.errors import SelfcareError
from selfcare_ops.i18n import N_, _, ngettext
from selfcare_ops.jobs.history_words import run_status_words, seconds


@main.group(help=N_("Run the scheduled notebooks and read their history."))
def jobs() -> None:
    """Run the scheduled notebooks and read their history."""


@jobs.command(
    "list", help=N_("The registered jobs, their notebook and their parameters with defaults.")
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
def jobs_list(as_json: bool) -> None:
    rows = []
    described: dict[str, str] = {}
    for job in jobs_service.JOBS.values():
        try:
            parameters: dict | str = job.parameters()
        except SelfcareError as error:  # one broken notebook must not hide the other jobs
            parameters = _("unavailable: {error}").format(error=error)
        rows.append(
            {
                "name": job.name,
                "notebook": job.notebook_name,
                "parameters": parameters,
                "description": job.description,
            }
        )
        described[job.name] = jobs_service.job_description(job)
    if as_json:
        echo_json(rows)
        return
    for row in rows:  # people read the descriptions in their language
        echo(f"{row['name']}  ({row['notebook']})")
        echo(f"    {described[row['name']]}")
        params = row["parameters"]
        shown = (
            ", ".join(f"{k}={v!r}" for k, v in params.items())
            if isinstance(params, dict)
            else params
        )
        echo("    " + _("parameters: {shown}").format(shown=shown))


@jobs.command(
    "path",
    help=N_(
        "The file of job NAME's notebook, inside the installed package.\n\n"
        "For schedulers that run papermill themselves (Airflow's PapermillOperator): "
        "their runs are neither locked nor recorded, unlike ``jobs run``."
    ),
)
@click.argument("name")
def jobs_path(name: str) -> None:
    echo(str(jobs_service.get_job(name).notebook_path()))


@jobs.command(
    "run",
    help=N_(
        "Run job NAME with papermill as the acting actor; exit status 1 when it fails.\n\n"
        "The notebook acts as --as (or SELFCARE_OPS_ACTOR; neither: the system actor): "
        "a job whose parameters reach beyond that actor's scope is refused before it "
        "starts."
    ),
)
@click.argument("name")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help=N_("Set a notebook parameter (repeatable); the value takes the type of the default."),
)
@click.option("--json", "as_json", is_flag=True, help=N_("Print the run as a JSON object."))
@pass_cli
def jobs_run(
    cli: CliContext, name: str, parameters: tuple[tuple[str, str], ...], as_json: bool
) -> None:
    result = jobs_service.run_job(
        name, dict(parameters), settings=cli.settings, actor=cli.actor_name
    )
    if as_json:
        echo_json(
            {
                "run_id": result.run_id,
                "job": result.job,
                "status": result.status,
                "actor": result.actor,
                "notebook": str(result.notebook) if result.notebook else None,
                "parameters": result.parameters,
                "started_at": result.started_at,
                "finished_at": result.finished_at,
                "duration_s": round(result.duration_s, 3),
                "output_path": str(result.output_path),
                "output_dir": str(result.output_dir) if result.output_dir else None,
                "html_path": str(result.html_path) if result.html_path else None,
                "files": [str(p) for p in result.files],
                "failed_cell": result.failed_cell,
                "error": result.error,
            }
        )
        if not result.ok:
            sys.exit(1)
        return
    if result.ok:
        echo(result.describe())
        if result.html_path:
            echo(_("HTML page: {path}").format(path=result.html_path))
        if result.output_dir:
            count = len(result.files)
            echo(
                ngettext(
                    "Files written: {path} ({count} file)",
                    "Files written: {path} ({count} files)",
                    count,
                ).format(path=result.output_dir, count=count)
            )
        return
    echo(_("Error: {error}").format(error=result.describe()), err=True)
    sys.exit(1)


@jobs.command(
    "history",
    help=N_(
        "The last runs, newest first: who ran them, parameters, status, duration, "
        "failure.\n\n"
        "Operator administrators (and the system actor) read every run; others their "
        "own."
    ),
)
@click.option("--job", "job_name", metavar="NAME", help=N_("Only the runs of this job."))
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=N_("Print a JSON array of objects."))
@pass_cli
def jobs_history(cli: CliContext, job_name: str | None, limit: int, as_json: bool) -> None:
    with cli.read_sessions()() as session:
        frame = jobs_service.job_history(session, cli.actor(session), job=job_name, limit=limit)
    if as_json:
        echo_json(frame)
        return
    if frame.empty:
        echo_table(frame)
        return
    shown = frame.assign(
        started_at=frame["started_at"].map(lambda t: f"{t:%Y-%m-%d %H:%M:%S}"),
        duration_s=frame["duration_s"].map(lambda d: "" if pd.isna(d) else seconds(d)),
        parameters=frame["parameters"].map(
            lambda p: " ".join(
                f"{k}={v}" for k, v in p.items() if k not in ("database_url", "output_dir")
            )
        ),
        failed_cell=frame["failed_cell"].map(lambda c: "" if pd.isna(c) else str(int(c))),
        error=frame["error"].fillna(""),
        status=frame["status"].map(run_status_words),
        actor=frame["actor"].fillna(""),  # runs recorded before who ran them was kept
    )
    echo_table(
        shown,
        [
            "id",
            "job",
            "status",
            "actor",
            "started_at",
            "duration_s",
            "parameters",
            "output_path",
            "failed_cell",
            "error",
        ],
    )
