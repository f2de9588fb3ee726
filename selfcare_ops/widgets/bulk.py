"""Bulk invitation dashboard: plan first ("N invitations à envoyer" and who is left out, why),
send on confirmation with a progress bar, then deliver the queued mails if asked.

The plan comes from ``invitations.plan_bulk`` (a client, a sub-account or any DataFrame of
users); sending is ``invitations.apply_bulk`` on that very plan, which is idempotent, so a
double click sends nothing twice.
"""

from __future__ import annotations

import html
import re
from typing import Any

import ipywidgets as widgets
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, can_deliver_mail
from selfcare_ops.errors import ValidationError
from selfcare_ops.invitations import service as invitations
from selfcare_ops.invitations.bulk import (
    REASON_ACTIVE,
    REASON_BOUNCED,
    REASON_DEACTIVATED,
    REASON_DRAFT,
    REASON_INVITED_SINCE_PLAN,
    REASON_NO_EMAIL,
    REASON_NO_LONGER_ELIGIBLE,
    REASON_OUT_OF_SCOPE,
    REASON_UNKNOWN,
)
from selfcare_ops.support.exports import csv_bytes
from selfcare_ops.widgets.common import (
    Feedback,
    Progress,
    Services,
    download_link,
    guard,
    html_table,
    plural,
    section,
)

#: Keyed by the plan's ``reason_code`` (other reasons: the plan's own sentence).
REASON_LABELS = {
    REASON_NO_EMAIL: "pas d'adresse e-mail : à activer directement dans la vue utilisateur",
    REASON_ACTIVE: "déjà actif",
    REASON_DEACTIVATED: "désactivé (à réactiver d'abord)",
    REASON_OUT_OF_SCOPE: "hors de votre périmètre",
    REASON_UNKNOWN: "utilisateur inconnu",
    REASON_INVITED_SINCE_PLAN: "invité depuis la préparation du plan",
    REASON_NO_LONGER_ELIGIBLE: "n'est plus éligible",
    REASON_DRAFT: "brouillon créé sans activation (à activer d'abord)",
    REASON_BOUNCED: "adresse refusée par le serveur de messagerie : corriger l'e-mail d'abord",
}
_RECENT = re.compile(r"invited less than (\d+) days? ago")


def reason_label(reason: object) -> str:
    """A plan's reason in the analyst's words (unknown reasons are shown as they are)."""
    text = "" if reason is None or (isinstance(reason, float) and pd.isna(reason)) else str(reason)
    recent = _RECENT.fullmatch(text)
    if recent:
        return f"invité il y a moins de {recent.group(1)} jours"
    return REASON_LABELS.get(text, text)


def invitations_to_send(count: int) -> str:
    """The seed's wording: "N invitations à envoyer"."""
    return f"{count} invitation{'s' if count > 1 else ''} à envoyer"


class BulkInvitationDashboard:
    """Invite every eligible user of a client, or of a DataFrame passed in."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        actor: Actor,
        *,
        users: pd.DataFrame | None = None,
        client_ref: str | None = None,
    ) -> None:
        self.services = Services(session_factory, actor)
        self.feedback = Feedback()
        safe = guard(self.feedback)
        self.users: pd.DataFrame | None = users
        self.plan: invitations.BulkPlan | None = None
        self.outcome: invitations.BulkOutcome | None = None
        self.delivery: Any = None

        self.source = widgets.HTML("")
        self.client = widgets.Text(
            placeholder="Référence du client", description="Client", continuous_update=False
        )
        self.sub_account = widgets.Text(
            placeholder="(tous les sous-comptes)",
            description="Sous-compte",
            style={"description_width": "initial"},
        )
        self.min_days = widgets.BoundedIntText(
            value=invitations.DEFAULT_MIN_DAYS,
            min=0,
            max=365,
            description="Délai (j)",
            tooltip="Ne pas réinviter quelqu'un invité il y a moins de N jours",
        )
        self.plan_button = widgets.Button(description="Préparer", icon="list")
        self.summary = widgets.HTML("")
        self.left_out = widgets.HTML("")
        self.plan_download = widgets.HTML("")
        self.confirm_button = widgets.Button(
            description="Confirmer l'envoi",
            button_style="danger",
            disabled=True,
            icon="paper-plane",
            layout=widgets.Layout(width="auto"),
        )
        self.progress = Progress("Envoi")
        self.outcome_html = widgets.HTML("")
        self.deliver_button = widgets.Button(
            description="Distribuer les messages",
            layout=widgets.Layout(width="auto"),
            icon="envelope",
            disabled=True,
            tooltip="Envoie maintenant les mails en attente dans la boîte d'envoi",
        )
        self.delivery_progress = Progress("Distribution")
        self.delivery_html = widgets.HTML("")

        self.plan_button.on_click(safe(self._on_plan))
        self.client.observe(safe(lambda _c: self._on_plan()), names="value")
        self.confirm_button.on_click(safe(self._on_confirm))
        self.deliver_button.on_click(safe(self._on_deliver))

        self.widget = widgets.VBox(
            [
                section("Invitation en masse"),
                self.source,
                widgets.HBox([self.client, self.sub_account]),
                widgets.HBox([self.min_days, self.plan_button]),
                self.feedback,
                self.summary,
                self.left_out,
                self.plan_download,
                widgets.HBox([self.confirm_button]),
                self.progress,
                self.outcome_html,
                widgets.HBox([self.deliver_button]),
                self.delivery_progress,
                self.delivery_html,
            ]
        )
        self.widget.add_class("selfcare-bulk")
        if users is not None:
            self.use_users(users)
        elif client_ref:
            self.client.value = client_ref

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- source ----------------------------------------------------------------------------

    def use_users(self, users: pd.DataFrame) -> None:
        """Plan for the users of a DataFrame (a login or user_id column) instead of a client."""
        self.users = users
        self.source.value = (
            f"<p>Source : un tableau de {plural(len(users), 'ligne')} fourni par le notebook.</p>"
        )
        safe = guard(self.feedback)
        safe(self.make_plan)()

    def use_client(self, client_ref: str) -> None:
        """Plan for every user of ``client_ref`` (the directory calls this when one is picked)."""
        self.users = None
        self.source.value = ""
        if self.client.value == client_ref:
            guard(self.feedback)(self.make_plan)()
        else:
            self.client.value = client_ref  # plans through the observer

    def follow_client(self, client_ref: str) -> None:
        """Called when this tab opens after a client was picked in the directory."""
        if self.users is None and self.client.value.strip() != client_ref:
            self.use_client(client_ref)

    def _on_plan(self, _button: Any = None) -> None:
        self.make_plan()

    def make_plan(self) -> invitations.BulkPlan | None:
        self.feedback.clear()
        self.outcome_html.value = ""
        self.progress.hide()
        self.outcome = None
        self.plan = None
        self.confirm_button.disabled = True
        self.summary.value = self.left_out.value = self.plan_download.value = ""
        ref = self.client.value.strip()
        if self.users is None and not ref:
            return None
        kwargs: dict[str, Any] = {"min_days": int(self.min_days.value)}
        if self.users is not None:
            kwargs["users"] = self.users
        else:
            kwargs["client_ref"] = ref
            if self.sub_account.value.strip():
                kwargs["sub_account"] = self.sub_account.value.strip()
        with self.services.read() as session:
            plan = invitations.plan_bulk(session, self.services.actor, **kwargs)
        self.plan = plan
        self._render_plan(plan)
        return plan

    def _render_plan(self, plan: invitations.BulkPlan) -> None:
        to_send = plan.to_send
        skipped = plan.frame[plan.frame["action"] != "invite"].copy()
        where = self.client.value.strip() if self.users is None else "le tableau fourni"
        self.summary.value = (
            f'<div class="selfcare-plan"><h4 style="margin:6px 0">'
            f"{html.escape(invitations_to_send(to_send))}</h4>"
            f"<p>{plural(len(plan.frame), 'utilisateur examiné', 'utilisateurs examinés')} "
            f"pour {html.escape(where)} ; {len(skipped)} laissé(s) de côté.</p></div>"
        )
        if len(skipped):
            skipped["motif"] = [
                REASON_LABELS.get(code) or reason_label(reason)
                for code, reason in zip(skipped["reason_code"], skipped["reason"], strict=True)
            ]
            counts = skipped["motif"].value_counts()
            by_reason = " · ".join(f"{html.escape(k)} : {v}" for k, v in counts.items())
            self.left_out.value = (
                f"<p><b>Utilisateurs laissés de côté</b> ({by_reason})</p>"
                + html_table(
                    skipped,
                    ["login", "email", "motif"],
                    headers={"login": "Identifiant", "email": "E-mail", "motif": "Motif"},
                    max_rows=100,
                    max_height=300,
                )
            )
        else:
            self.left_out.value = "<p>Personne n'est laissé de côté.</p>"
        self.plan_download.value = download_link(
            csv_bytes(plan.frame), "plan_invitations.csv", "Télécharger le plan"
        )
        self.confirm_button.description = (
            f"Confirmer l'envoi ({to_send})" if to_send else "Rien à envoyer"
        )
        self.confirm_button.disabled = to_send == 0

    # --- send ------------------------------------------------------------------------------

    def _on_confirm(self, _button: Any = None) -> None:
        if self.plan is None:
            raise ValidationError("Prepare the plan first: nothing has been planned yet.")
        plan = self.plan
        to_send = plan.to_send
        self.confirm_button.disabled = True
        self.progress.start(to_send, "Envoi")
        try:
            with self.services.write() as session:
                outcome = invitations.apply_bulk(
                    session, self.services.actor, plan, progress=self.progress.callback
                )
        except Exception:
            self.progress.finish("échec : rien n'a été envoyé", failed=True)
            self.confirm_button.disabled = False
            raise
        self.outcome = outcome
        invited = outcome.invited
        self.progress.finish(f"{invited} / {to_send}")
        counts = outcome.frame["outcome"].value_counts()
        sent_text = plural(invited, "invitation envoyée", "invitations envoyées")
        words = {"invited": "invités", "skipped": "écartés"}
        details = " · ".join(
            f"{html.escape(words.get(str(k), str(k)))} : {v}" for k, v in counts.items()
        )
        self.outcome_html.value = (
            f'<div class="selfcare-outcome"><b>{html.escape(sent_text)}</b> ({details}). '
            "Les messages attendent dans la boîte d'envoi.</div>"
        )
        self.feedback.success(
            f"{plural(invited, 'invitation créée', 'invitations créées')} ; "
            "les messages sont dans la boîte d'envoi."
        )
        # Client-side actors do not run the outbox (access.can_deliver_mail): their mails
        # leave with the next scheduled delivery, and the button stays off.
        self.deliver_button.disabled = not can_deliver_mail(self.services.actor)

    def _on_deliver(self, _button: Any = None) -> None:
        from selfcare_ops.config import get_settings
        from selfcare_ops.invitations.service import deliver_and_redact

        self.delivery_progress.start(0, "Distribution")
        try:
            report = deliver_and_redact(
                self.services.session_factory,
                get_settings(),
                actor=self.services.actor,
                progress=self.delivery_progress.callback,
            )
        except Exception:
            self.delivery_progress.finish("échec", failed=True)
            raise
        self.delivery = report
        sent = int(getattr(report, "sent", 0))
        retried = int(getattr(report, "retried", 0))
        failed = int(getattr(report, "failed", 0))
        cancelled = int(getattr(report, "cancelled", 0))
        self.delivery_progress.finish(f"{sent} envoyés", failed=bool(failed))
        delivered = plural(sent, "message distribué", "messages distribués")
        not_sent = (
            f", {plural(cancelled, 'annulé', 'annulés')} (lien révoqué, remplacé ou expiré)"
            if cancelled
            else ""
        )
        self.delivery_html.value = (
            f'<div class="selfcare-delivery">{html.escape(delivered)}, '
            f"{retried} à réessayer, {failed} en échec{not_sent}.</div>"
        )
        error = getattr(report, "error", None)
        if error:
            self.delivery_progress.finish("interrompue", failed=True)
            self.feedback.warning(
                f"La distribution s'est arrêtée : {error} Les messages restent dans la boîte "
                "d'envoi et partiront au prochain essai."
            )
        elif failed or retried:
            self.feedback.warning(
                f"{delivered} ; {retried} à réessayer et {failed} en échec : "
                "voir l'état de la boîte d'envoi (selfcare-ops mail status)."
            )
        else:
            self.feedback.success(f"{delivered}.")
