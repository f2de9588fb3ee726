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
from selfcare_ops.widgets.common import (
    Feedback,
    Progress,
    Services,
    download_link,
    guard,
    html_table,
    section,
    uploaded_files,
)

COUNT_LABELS = [
    ("rows", "lignes"),
    ("create", "à créer"),
    ("update", "à mettre à jour"),
    ("unchanged", "inchangées"),
    ("reject", "rejetées"),
    ("invite", "à inviter"),
]
DONE_LABELS = [
    ("rows", "lignes"),
    ("create", "créés"),
    ("update", "mis à jour"),
    ("unchanged", "inchangés"),
    ("reject", "rejetées"),
    ("invite", "invités"),
]


def _csv_bytes(report: Any) -> bytes:
    """The report (or plan) as the CSV an analyst downloads, through the service's writer."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.csv"
        onboarding.write_report(report, path)
        return path.read_bytes()


def _counts_html(counts: dict[str, int], labels: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="selfcare-count selfcare-count-{key}" style="display:inline-block;'
        f'margin:0 14px 4px 0"><b style="font-size:18px">{int(counts.get(key, 0))}</b> '
        f"{html.escape(label)}</div>"
        for key, label in labels
    )
    return f'<div class="selfcare-counts">{cells}</div>'


def _describe_changes(row: Any) -> str:
    """'phone → +33…, function → …': each changed field with the value the import sets."""
    parts = []
    for name in str(row.get("changes") or "").split(","):
        name = name.strip()
        if not name:
            continue
        value = row.get(name)
        shown = "" if value is None or (isinstance(value, float) and value != value) else value
        parts.append(f"{name} → {shown}" if shown != "" else name)
    return ", ".join(parts)


class OnboardingDashboard:
    """Upload a CSV, see what importing it will do, apply it with a progress bar."""

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor) -> None:
        self.services = Services(session_factory, actor)
        self.feedback = Feedback()
        safe = guard(self.feedback)
        self.plan: onboarding.Plan | None = None
        self.report: onboarding.ImportReport | None = None
        self._content: bytes | None = None
        self._name = ""

        self.upload = widgets.FileUpload(
            accept=".csv,.txt,text/csv", multiple=False, description="Fichier CSV"
        )
        self.client = widgets.Text(
            placeholder="si le fichier n'a pas de colonne Client",
            description="Client",
            continuous_update=False,
        )
        self.create_sub_accounts = widgets.Checkbox(
            value=False, description="Créer les sous-comptes manquants", indent=False
        )
        self.invite = widgets.Checkbox(
            value=False, description="Inviter les nouveaux utilisateurs", indent=False
        )
        self.strict = widgets.Checkbox(
            value=False,
            description="Tout ou rien (refuser si une ligne est rejetée)",
            indent=False,
        )
        self.plan_button = widgets.Button(description="Analyser", icon="search")
        self.file_info = widgets.HTML("")
        self.summary = widgets.HTML("")
        self.rejected = widgets.HTML("")
        self.changes = widgets.HTML("")
        self.plan_download = widgets.HTML("")
        self.apply_button = widgets.Button(
            description="Appliquer",
            button_style="danger",
            disabled=True,
            icon="check",
            layout=widgets.Layout(width="auto"),
        )
        self.progress = Progress("Import")
        self.outcome = widgets.HTML("")
        self.report_download = widgets.HTML("")

        self.upload.observe(safe(self._on_upload), names="value")
        self.plan_button.on_click(safe(lambda _b: self.make_plan()))
        self.apply_button.on_click(safe(self._on_apply))

        self.widget = widgets.VBox(
            [
                section("Import d'utilisateurs (CSV)"),
                widgets.HTML(
                    "<p>Le fichier est lu tel qu'il vient d'Excel (séparateur <code>;</code> ou "
                    "<code>,</code>, UTF-8 ou Windows-1252, en-têtes en français ou en anglais). "
                    "Rien n'est écrit avant « Appliquer ».</p>"
                ),
                widgets.HBox([self.upload, self.client]),
                widgets.HBox([self.create_sub_accounts, self.invite, self.strict]),
                self.plan_button,
                self.feedback,
                self.file_info,
                self.summary,
                self.rejected,
                self.changes,
                self.plan_download,
                widgets.HBox([self.apply_button]),
                self.progress,
                self.outcome,
                self.report_download,
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

    def make_plan(self) -> onboarding.Plan | None:
        self.feedback.clear()
        self._reset_outcome()
        self.plan = None
        self.apply_button.disabled = True
        for shown in (self.file_info, self.summary, self.rejected, self.changes):
            shown.value = ""
        self.plan_download.value = ""
        if self._content is None:
            raise ValidationError("Choose a CSV file first (button « Fichier CSV »).")
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
        separator = {";": "point-virgule", ",": "virgule", "\t": "tabulation"}.get(
            plan.separator, plan.separator
        )
        notes = [
            f"{html.escape(self._name)} : encodage {html.escape(plan.encoding)}, "
            f"séparateur {html.escape(separator)}."
        ]
        if plan.unknown_columns:
            notes.append(
                "Colonnes ignorées (inconnues) : "
                + html.escape(", ".join(map(str, plan.unknown_columns)))
                + "."
            )
        notes += [html.escape(w) for w in plan.warnings]
        self.file_info.value = "".join(f"<p>{n}</p>" for n in notes)
        self.summary.value = _counts_html(plan.counts, COUNT_LABELS)
        frame = plan.frame
        rejected = frame[frame["action"] == "reject"]
        self.rejected.value = (
            "<p><b>Lignes rejetées</b></p>"
            + html_table(
                rejected,
                ["line", "last_name", "first_name", "email", "reason"],
                headers={
                    "line": "Ligne",
                    "last_name": "Nom",
                    "first_name": "Prénom",
                    "email": "E-mail",
                    "reason": "Motif",
                },
                max_rows=100,
            )
            if len(rejected)
            else "<p>Aucune ligne rejetée.</p>"
        )
        updates = frame[frame["action"] == "update"].copy()
        updates["changes"] = [_describe_changes(row) for _, row in updates.iterrows()]
        self.changes.value = (
            "<p><b>Mises à jour</b></p>"
            + html_table(
                updates,
                ["line", "login", "changes"],
                headers={"line": "Ligne", "login": "Identifiant", "changes": "Changements"},
                max_rows=100,
            )
            if len(updates)
            else ""
        )
        self.plan_download.value = download_link(
            _csv_bytes(plan), f"plan_{Path(self._name).stem}.csv", "Télécharger le plan (CSV)"
        )
        writes = sum(int(plan.counts.get(k, 0)) for k in ("create", "update"))
        refused = self.strict.value and plan.counts.get("reject", 0)
        self.apply_button.disabled = writes == 0 or bool(refused)
        self.apply_button.description = (
            f"Appliquer ({writes} ligne{'s' if writes > 1 else ''})"
            if writes
            else "Rien à appliquer"
        )
        if refused:
            self.feedback.warning(
                "Mode tout ou rien : des lignes sont rejetées, rien ne sera appliqué. "
                "Corrigez le fichier ou décochez l'option."
            )

    def _reset_outcome(self) -> None:
        self.outcome.value = self.report_download.value = ""
        self.progress.hide()
        self.report = None

    # --- apply -----------------------------------------------------------------------------

    def _on_apply(self, _button: Any = None) -> None:
        if self.plan is None:
            raise ValidationError("Analyse a file first: nothing has been planned yet.")
        plan = self.plan
        self.apply_button.disabled = True
        self.progress.start(int(plan.counts.get("rows", len(plan.frame))), "Import")
        try:
            report = onboarding.apply_plan(
                self.services.session_factory,
                self.services.actor,
                plan,
                strict=self.strict.value,
                progress=self.progress.callback,
            )
        except Exception:
            self.progress.finish("échec", failed=True)
            self.apply_button.disabled = False
            raise
        self.report = report
        self.progress.finish(f"{report.counts.get('rows', 0)} lignes traitées")
        self.outcome.value = "<p><b>Résultat</b></p>" + _counts_html(report.counts, DONE_LABELS)
        self.report_download.value = download_link(
            _csv_bytes(report),
            f"rapport_{Path(self._name).stem}.csv",
            "Télécharger le rapport (CSV)",
        )
        if report.counts.get("reject", 0):
            self.feedback.warning(
                f"Import terminé : {report.counts['reject']} ligne(s) rejetée(s), "
                "le motif de chacune est dans le rapport."
            )
        else:
            self.feedback.success("Import terminé sans ligne rejetée.")
