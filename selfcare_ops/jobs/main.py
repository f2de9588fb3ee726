"""The main job of ``make demo``: the whole chain, end to end, on the configured database.

Migrate, load the demo data and the operator's default branding, then — each through papermill,
recorded and locked like any scheduled run — onboard the packaged sample
(``selfcare_ops/demo/data/onboarding_sample.csv``) with invitations, run the invitation
maintenance (which delivers into the Maildir) and the adoption report. Every step is
idempotent: a second run creates no user, sends no mail twice, and only adds its own run
records and a new dated report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.demo import DEMO_CLIENT_REF, load_demo
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.jobs.history_words import run_status_words, seconds
from selfcare_ops.jobs.runner import JobRunResult, run_job
from selfcare_ops.store.db import describe, make_engine, make_session_factory, upgrade
from selfcare_ops.support.resources import DEMO_DIR, real_path

ONBOARDING_SAMPLE = DEMO_DIR / "onboarding_sample.csv"


@dataclass
class MainJobSummary:
    """Where everything the main job produced is, and what it did."""

    database: str
    demo: Any
    runs: dict[str, JobRunResult] = field(default_factory=dict)
    maildir: Path | None = None
    onboarding_report: Path | None = None
    maintenance: dict[str, Any] = field(default_factory=dict)
    report_csv: list[Path] = field(default_factory=list)
    charts: list[Path] = field(default_factory=list)
    report_html: Path | None = None
    demo_invited: int = 0
    onboarding: dict[str, Any] = field(default_factory=dict)
    preview: Path | None = None

    def lines(self) -> list[str]:
        """The summary ``selfcare-ops demo`` prints, one fact a line."""
        out = [_("Database: {where}").format(where=self.database)]
        out.append(
            _(
                "Demo data: {organisations} organisations, {users} users (added now: {added} "
                "users); invitations queued for the demo client {ref}: {invited}"
            ).format(
                organisations=self.demo.organisations,
                users=self.demo.users,
                added=self.demo.users_added,
                ref=DEMO_CLIENT_REF,
                invited=self.demo_invited,
            )
        )
        for name, run in self.runs.items():
            out.append(
                _("Job {name}: {status} in {seconds} s, executed notebook {path}").format(
                    name=name,
                    status=run_status_words(run.status),
                    seconds=seconds(run.duration_s),
                    path=run.output_path,
                )
            )
        if self.onboarding.get("summary"):
            out.append(_("Onboarding: {summary}").format(summary=self.onboarding["summary"]))
        if self.onboarding_report:
            out.append(_("Onboarding report (CSV): {path}").format(path=self.onboarding_report))
        if self.maintenance:
            delivery = self.maintenance.get("delivery", {})
            out.append(
                _(
                    "Invitations: {expired} expired, {reminded} reminded; mails: {sent} "
                    "delivered, {failed} failed"
                ).format(
                    expired=self.maintenance.get("expired", 0),
                    reminded=self.maintenance.get("reminded", 0),
                    sent=delivery.get("sent", 0),
                    failed=delivery.get("failed", 0),
                )
            )
        if self.maildir:
            out.append(_("Maildir: {path}").format(path=self.maildir))
        funnel = [p for p in self.report_csv if p.name == "adoption_funnel_clients.csv"]
        if self.report_csv:
            folder = self.report_csv[0].parent
            out.append(
                _("Adoption report CSV: {path}").format(path=funnel[0] if funnel else folder)
            )
            out.append(
                ngettext(
                    "Adoption report tables: {count} CSV file in {folder}",
                    "Adoption report tables: {count} CSV files in {folder}",
                    len(self.report_csv),
                ).format(count=len(self.report_csv), folder=folder)
            )
        if self.charts:
            out.append(_("Charts: {paths}").format(paths=", ".join(str(p) for p in self.charts)))
        if self.report_html:
            out.append(_("Adoption report page (HTML): {path}").format(path=self.report_html))
        if self.preview:
            out.append(
                _("Branding preview of {ref}: {path}").format(
                    ref=DEMO_CLIENT_REF, path=self.preview
                )
            )
        return out


def _files(run: JobRunResult, pattern: str) -> list[Path]:
    return sorted(run.output_dir.glob(pattern)) if run.output_dir else []


def run_main_job(
    settings: Settings | None = None,
    *,
    csv_path: Path | str | None = None,
    client: str | None = None,
    actor: str | None = None,
) -> MainJobSummary:
    """Run the demo chain; raises :class:`~selfcare_ops.errors.JobError` if a job fails.

    ``csv_path`` defaults to the demo sample, whose lines (it has no client column) go to
    ``client``: by default the demo client for the sample, none (the file says) for another file.
    Everything acts as ``actor`` (an email; None: the system actor), who must be an operator
    administrator: the chain loads data for, and delivers the mail of, the whole tree.
    """
    from selfcare_ops.access import check_actor_name, require_operator, resolve_actor
    from selfcare_ops.branding import seed_default_branding, write_preview
    from selfcare_ops.invitations.bulk import apply_bulk, plan_bulk

    check_actor_name(actor)
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with make_session_factory(engine).begin() as session:
            if actor is not None:  # a named actor must exist (and may) before anything loads
                require_operator(resolve_actor(session, actor), "run the demo chain")
            demo = load_demo(session)
            seed_default_branding(session)
            acting = resolve_actor(session, actor)
            require_operator(acting, "run the demo chain")
            # The demo client's users are invited here; invitation_maintenance delivers them.
            plan = plan_bulk(session, acting, client_ref=DEMO_CLIENT_REF)
            invited = apply_bulk(session, acting, plan).invited
        with make_session_factory(engine).begin() as session:
            preview = write_preview(
                session,
                resolve_actor(session, actor),
                DEMO_CLIENT_REF,
                settings.data_dir / "previews" / f"{DEMO_CLIENT_REF}.png",
            )
        database = describe(engine)
    finally:
        engine.dispose()
    summary = MainJobSummary(
        database=database,
        demo=demo,
        maildir=settings.maildir,
        demo_invited=invited,
        preview=preview,
    )
    onboarding = {
        "csv_path": str(csv_path or real_path(ONBOARDING_SAMPLE)),
        "client": client if client is not None else ("" if csv_path else DEMO_CLIENT_REF),
        "invite": True,
    }
    for name, parameters in (
        ("onboarding", onboarding),
        ("invitation_maintenance", {}),
        ("adoption_report", {}),
    ):
        summary.runs[name] = run_job(
            name, parameters, settings=settings, actor=actor
        ).raise_for_status()
    summary.onboarding_report = next(
        iter(_files(summary.runs["onboarding"], "onboarding_report.csv")), None
    )
    onboarded = _files(summary.runs["onboarding"], "onboarding_summary.json")
    if onboarded:
        summary.onboarding = json.loads(onboarded[0].read_text(encoding="utf-8"))
    maintenance = _files(summary.runs["invitation_maintenance"], "maintenance.json")
    if maintenance:
        summary.maintenance = json.loads(maintenance[0].read_text(encoding="utf-8"))
    report = summary.runs["adoption_report"]
    summary.report_csv = _files(report, "*.csv")
    summary.charts = _files(report, "*.png")
    summary.report_html = report.html_path
    return summary


__all__ = ["DEMO_CLIENT_REF", "ONBOARDING_SAMPLE", "MainJobSummary", "run_main_job"]
