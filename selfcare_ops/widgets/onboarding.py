"""Onboarding dashboard: upload a customer's CSV, read the plan, apply it, download the report.

Uploading only plans (``onboarding.build_plan`` writes nothing): the counts, the rejected lines
with their reasons and the changes of each update are shown before anything happens. Applying
is ``onboarding.apply_plan`` on that plan, batched and idempotent, with a progress bar. Both the
plan and the report download as CSV (``;`` + UTF-8 with BOM, cells neutralised for Excel).
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops import onboarding
from selfcare_ops.access import Actor
from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.widgets.common import (
    ActionButton,
    Feedback,
    Progress,
    Services,
    download_link,
    guard,
    html_table,
    section,
    uploaded_files,
)

#: The figures of a plan and of a report, by their stable keys.
COUNT_KEYS = ("rows", "create", "update", "unchanged", "reject", "invite")


def _plan_word(key: str, count: int) -> str:
    """What a plan's figure counts: "3 lignes", "1 à créer"."""
    words = {
        "rows": ngettext("row", "rows", count),
        "create": ngettext("to create", "to create", count),
        "update": ngettext("to update", "to update", count),
        "unchanged": ngettext("unchanged", "unchanged", count),
        "reject": ngettext("rejected", "rejected", count),
        "invite": ngettext("to invite", "to invite", count),
    }
    return words[key]


def _done_word(key: str, count: int) -> str:
    """What a report's figure counts: "2 créés", "1 mis à jour"."""
    words = {
        "rows": ngettext("row", "rows", count),
        "create": ngettext("created", "created", count),
        "update": ngettext("updated", "updated", count),
        "unchanged": ngettext("left unchanged", "left unchanged", count),
        "reject": ngettext("rejected", "rejected", count),
        "invite": ngettext("invited", "invited", count),
    }
    return words[key]


def _csv_bytes(report: Any) -> bytes:
    """The report (or plan) as the CSV an analyst downloads, through the service's writer."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.csv"
        onboarding.write_report(report, path)
        return path.read_bytes()


def _counts_html(counts: dict[str, int], word: Any) -> str:
    cells = "".join(
        f'<div class="selfcare-count selfcare-count-{key}" style="display:inline-block;'
        f'margin:0 14px 4px 0"><b style="font-size:18px">{int(counts.get(key, 0))}</b> '
        f"{html.escape(word(key, int(counts.get(key, 0))))}</div>"
        for key in COUNT_KEYS
    )
    return f'<div class="selfcare-counts">{cells}</div>'


def _describe_changes(row: Any) -> str:
    """'phone → +33…, function → …': each changed field with the value the import sets."""
    parts = []
    changes = row.get("changes")
    for name in changes if isinstance(changes, (tuple, list)) else ():
        value = row.get(name)
        shown = "" if value is None or (isinstance(value, float) and value != value) else value
        parts.append(f"{name} → {shown}" if shown != "" else name)
    return ", ".join(parts)


class OnboardingDashboard:
    """Upload a CSV, see what importing it will do, apply it with a progress bar."""

    def __init__(
        self, session_factory: sessionmaker[Session], actor: Actor, *, on_change: Any = None
    ) -> None:
        self.services = Services(session_factory, actor)
        #: Called after an import wrote to the database (the other tabs refresh their figures).
        self.on_change = on_change
        self.feedback = Feedback()
        self.apply_feedback = Feedback()
        safe = guard(self.feedback)
        self.plan: onboarding.Plan | None = None
        self.report: onboarding.ImportReport | None = None
        self._content: bytes | None = None
        self._name = ""

        self.upload = widgets.FileUpload(
            accept=".csv,.txt,text/csv", multiple=False, description=_("CSV file")
        )
        self.client = widgets.Text(
            placeholder=_("if the file has no Client column"),
            description=_("Client"),
            continuous_update=False,
        )
        self.create_sub_accounts = widgets.Checkbox(
            value=False, description=_("Create the missing sub-accounts"), indent=False
        )
        self.invite = widgets.Checkbox(
            value=False, description=_("Invite the new users"), indent=False
        )
        self.strict = widgets.Checkbox(
            value=False,
            description=_("All or nothing (refuse if a line is rejected)"),
            indent=False,
        )
        self.plan_button = ActionButton(description=_("Analyse"), icon="search")
        self.stale = widgets.HTML("")
        self.file_info = widgets.HTML("")
        self.summary = widgets.HTML("")
        self.rejected = widgets.HTML("")
        self.changes = widgets.HTML("")
        self.plan_download = widgets.HTML("")
        self.apply_button = ActionButton(
            description=_("Apply"),
            button_style="danger",
            disabled=True,
            icon="check",
            layout=widgets.Layout(width="auto"),
        )
        self.progress = Progress(_("Import"))
        self.created = widgets.HTML("")
        self.outcome = widgets.HTML("")
        self.report_download = widgets.HTML("")

        self.upload.observe(safe(self._on_upload), names="value")
        self.plan_button.on_action(self.make_plan, self.feedback)
        self.apply_button.on_action(self._on_apply, self.apply_feedback)
        for option in (self.client, self.create_sub_accounts, self.invite, self.strict):
            option.observe(safe(self._on_option), names="value")

        self.widget = widgets.VBox(
            [
                section(_("Import of users (CSV)")),
                widgets.HTML(
                    "<p>{}</p>".format(
                        html.escape(
                            _(
                                "The file is read as it comes from Excel (separator ; or , "
                                "UTF-8 or Windows-1252, headers in French or English). Nothing "
                                "is written before “Apply”."
                            )
                        )
                    )
                ),
                widgets.HBox([self.upload, self.client]),
                widgets.HBox([self.create_sub_accounts, self.invite, self.strict]),
                self.plan_button,
                self.feedback,
                self.file_info,
                self.summary,
                self.stale,
                widgets.HBox([self.apply_button, self.plan_download]),
                self.apply_feedback,
                self.progress,
                self.outcome,
                self.report_download,
                self.rejected,
                self.created,
                self.changes,
            ]
        )
        self.widget.add_class("selfcare-onboarding")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def follow_client(self, client_ref: str) -> None:
        if not self.client.value.strip():
            self.client.value = client_ref

    # --- plan ------------------------------------------------------------------------------

    def _on_upload(self, _change: Any) -> None:
        files = uploaded_files(self.upload)
        if not files:
            return
        self._name, self._content = files[0]
        self.make_plan()

    def _on_option(self, _change: Any) -> None:
        """An option changed after the analysis: the plan no longer says what would happen."""
        if self.plan is None:
            return
        self.plan = None
        self.apply_button.disabled = True
        self.apply_button.description = _("Apply")
        self.stale.value = (
            '<div class="selfcare-stale" style="color:#6d4c00;background:#fff8e1;'
            'padding:4px 8px">{}</div>'.format(
                html.escape(_("Options changed: analyse the file again."))
            )
        )

    def make_plan(self) -> onboarding.Plan | None:
        """A new plan of the file with the options on show; earlier results are cleared."""
        self.feedback.clear()
        self.apply_feedback.clear()
        self._reset_outcome()
        return self._replan()

    def _replan(self) -> onboarding.Plan | None:
        self.plan = None
        self.stale.value = ""
        self.apply_button.disabled = True
        for shown in (self.file_info, self.summary, self.rejected, self.created, self.changes):
            shown.value = ""
        self.plan_download.value = ""
        if self._content is None:
            raise ValidationError(_("Choose a CSV file first (button “CSV file”)."))
        source = onboarding.read_rows(self._content, name=self._name)
        with self.services.read() as session:
            plan = onboarding.build_plan(
                session,
                self.services.actor,
                source,
                client_ref=self.client.value.strip() or None,
                create_sub_accounts=self.create_sub_accounts.value,
                invite=self.invite.value,
            )
        self.plan = plan
        self._render_plan(plan)
        return plan

    def _render_plan(self, plan: onboarding.Plan) -> None:
        separator = {";": _("semicolon"), ",": _("comma"), "\t": _("tab")}.get(
            plan.separator, plan.separator
        )
        notes = [
            html.escape(
                _("{file}: encoding {encoding}, separator {separator}.").format(
                    file=self._name, encoding=plan.encoding, separator=separator
                )
            )
        ]
        if plan.unknown_columns:
            notes.append(
                html.escape(
                    _("Columns ignored (unknown): {columns}.").format(
                        columns=", ".join(map(str, plan.unknown_columns))
                    )
                )
            )
        notes += [html.escape(w) for w in plan.warnings]
        self.file_info.value = "".join(f"<p>{n}</p>" for n in notes)
        self.summary.value = _counts_html(plan.counts, _plan_word)
        frame = plan.frame
        rejected = frame[frame["action"] == "reject"]
        self.rejected.value = (
            "<p><b>{}</b></p>".format(html.escape(_("Rejected lines")))
            + html_table(
                rejected,
                ["line", "last_name", "first_name", "email", "reason"],
                headers={
                    "line": _("Line"),
                    "last_name": _("Name"),
                    "first_name": _("First name"),
                    "email": _("Email"),
                    "reason": _("Reason"),
                },
                max_rows=100,
            )
            if len(rejected)
            else "<p>{}</p>".format(html.escape(_("No line rejected.")))
        )
        # Who will be created, with the login the import generates for each.
        created = frame[frame["action"] == "create"]
        self.created.value = (
            "<p><b>{}</b></p>".format(html.escape(_("Users to create")))
            + html_table(
                created,
                [c for c in ("line", "last_name", "first_name", "email", "login") if c in frame],
                headers={
                    "line": _("Line"),
                    "last_name": _("Name"),
                    "first_name": _("First name"),
                    "email": _("Email"),
                    "login": _("Login"),
                },
                max_rows=100,
                table_class="selfcare-created",
            )
            if len(created)
            else ""
        )
        updates = frame[frame["action"] == "update"].copy()
        updates["changes"] = [_describe_changes(row) for _, row in updates.iterrows()]
        self.changes.value = (
            "<p><b>{}</b></p>".format(html.escape(_("Updates")))
            + html_table(
                updates,
                ["line", "login", "changes"],
                headers={"line": _("Line"), "login": _("Login"), "changes": _("Changes")},
                max_rows=100,
            )
            if len(updates)
            else ""
        )
        self.plan_download.value = download_link(
            _csv_bytes(plan), f"plan_{Path(self._name).stem}.csv", _("Download the plan (CSV)")
        )
        writes = sum(int(plan.counts.get(k, 0)) for k in ("create", "update"))
        refused = self.strict.value and plan.counts.get("reject", 0)
        self.apply_button.disabled = writes == 0 or bool(refused)
        self.apply_button.description = (
            ngettext("Apply ({count} line)", "Apply ({count} lines)", writes).format(count=writes)
            if writes
            else _("Nothing to apply")
        )
        if refused:
            self.apply_feedback.warning(
                _(
                    "All or nothing: some lines are rejected, nothing will be applied. Correct "
                    "the file or untick the option."
                )
            )

    def _reset_outcome(self) -> None:
        self.outcome.value = self.report_download.value = ""
        self.progress.hide()
        self.report = None

    # --- apply -----------------------------------------------------------------------------

    def _on_apply(self) -> None:
        if self.plan is None:
            raise ValidationError(_("Analyse a file first: nothing has been planned yet."))
        plan = self.plan
        self.apply_button.disabled = True
        self.progress.start(int(plan.counts.get("rows", len(plan.frame))), _("Import"))
        try:
            report = onboarding.apply_plan(
                self.services.session_factory,
                self.services.actor,
                plan,
                strict=self.strict.value,
                progress=self.progress.callback,
            )
        except Exception:
            self.progress.finish(_("failed"), failed=True)
            self.apply_button.disabled = False
            raise
        self.report = report
        self.apply_feedback.clear()
        rows = int(report.counts.get("rows", 0))
        self.progress.finish(
            ngettext("{count} line processed", "{count} lines processed", rows).format(count=rows)
        )
        self.outcome.value = "<p><b>{}</b></p>".format(html.escape(_("Result"))) + _counts_html(
            report.counts, _done_word
        )
        self.report_download.value = download_link(
            _csv_bytes(report),
            f"rapport_{Path(self._name).stem}.csv",
            _("Download the report (CSV)"),
        )
        if report.counts.get("reject", 0):
            rejected = int(report.counts["reject"])
            self.apply_feedback.warning(
                ngettext(
                    "Import done: {count} line rejected, its reason is in the report.",
                    "Import done: {count} lines rejected, the reason of each is in the report.",
                    rejected,
                ).format(count=rejected)
            )
        else:
            self.apply_feedback.success(_("Import done without any rejected line."))
        # The file is analysed again: the plan now says what is left to do (usually nothing).
        guard(self.feedback)(self._replan)()
        if self.on_change is not None:
            self.on_change(self)
