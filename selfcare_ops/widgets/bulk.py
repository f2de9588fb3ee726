"""Bulk invitation dashboard: plan first ("N invitations to send" and who is left out, why),
send on confirmation with a progress bar, then deliver this client's queued mails if asked.

The plan comes from ``bulk_invitations.plan_bulk`` (a client, a sub-account or any DataFrame of
users); sending is ``bulk_invitations.apply_bulk`` on that very plan, which is idempotent. Each
button runs once per click (:class:`~selfcare_ops.widgets.common.ActionButton`), and after a
send the plan is made again, so what is on show is always the database's state. Delivery is
scoped to the client on show, counted before and confirmed (``client_outbox``).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor, can_deliver_mail
from selfcare_ops.errors import ValidationError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.invitations import bulk as bulk_invitations
from selfcare_ops.invitations.bulk import (
    REASON_BOUNCED,
    REASON_DEACTIVATED,
    REASON_DRAFT,
    REASON_NO_EMAIL,
)
from selfcare_ops.support.exports import csv_bytes
from selfcare_ops.widgets.common import (
    ActionButton,
    Confirmation,
    Feedback,
    Progress,
    Services,
    download_link,
    guard,
    html_table,
    section,
)


def _advice() -> dict[str, str]:
    """What the dashboard says of a left-out reason where there is something to do about it,
    keyed by the plan's stable ``reason_code``."""
    return {
        REASON_NO_EMAIL: _("no email address: activate them directly in the user view"),
        REASON_DEACTIVATED: _("deactivated (reactivate first)"),
        REASON_DRAFT: _("draft created without activation (activate first)"),
        REASON_BOUNCED: _("address refused by the mail server: correct the email first"),
    }


def reason_label(code: object, reason: object) -> str:
    """A left-out user's reason as the dashboard shows it: the advice for its code, else the
    plan's own sentence (already in the analyst's language)."""
    advice = _advice().get(str(code))
    if advice:
        return advice
    return "" if reason is None or (isinstance(reason, float) and pd.isna(reason)) else str(reason)


def invitations_to_send(count: int) -> str:
    """The seed's wording: "N invitations à envoyer"."""
    return ngettext("{count} invitation to send", "{count} invitations to send", count).format(
        count=count
    )


class BulkInvitationDashboard:
    """Invite every eligible user of a client, or of a DataFrame passed in."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        actor: Actor,
        *,
        users: pd.DataFrame | None = None,
        client_ref: str | None = None,
        on_change: Any = None,
    ) -> None:
        self.services = Services(session_factory, actor)
        #: Called after the database changed here (the other tabs refresh their figures).
        self.on_change = on_change
        self.feedback = Feedback()
        self.send_feedback = Feedback()
        self.deliver_feedback = Feedback()
        safe = guard(self.feedback)
        self.users: pd.DataFrame | None = users
        self.plan: bulk_invitations.BulkPlan | None = None
        self.outcome: bulk_invitations.BulkOutcome | None = None
        self.delivery: Any = None
        self.queued = 0

        self.source = widgets.HTML("")
        self.client = widgets.Text(
            placeholder=_("Client reference"), description=_("Client"), continuous_update=False
        )
        self.sub_account = widgets.Text(
            placeholder=_("(every sub-account)"),
            description=_("Sub-account"),
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.min_days = widgets.BoundedIntText(
            value=bulk_invitations.DEFAULT_MIN_DAYS,
            min=0,
            max=365,
            description=_("Delay (d)"),
            tooltip=_("Do not invite again someone invited less than N days ago"),
        )
        self.plan_button = ActionButton(description=_("Prepare"), icon="list")
        self.summary = widgets.HTML("")
        self.stale = widgets.HTML("")
        self.left_out = widgets.HTML("")
        self.plan_download = widgets.HTML("")
        self.confirm_button = ActionButton(
            description=_("Confirm the sending"),
            button_style="danger",
            disabled=True,
            icon="paper-plane",
            layout=widgets.Layout(width="auto"),
        )
        self.progress = Progress(_("Sending"))
        self.outcome_html = widgets.HTML("")
        self.deliver_button = ActionButton(
            description=_("Deliver this client's messages"),
            layout=widgets.Layout(width="auto"),
            icon="envelope",
            disabled=True,
            tooltip=_("Sends this client's waiting invitation mails now"),
        )
        self.deliver_confirmation = Confirmation(self.deliver_feedback)
        self.delivery_progress = Progress(_("Delivery"))
        self.delivery_html = widgets.HTML("")

        self.plan_button.on_action(self.make_plan, self.feedback)
        self.client.observe(safe(lambda _c: self.make_plan()), names="value")
        for option in (self.sub_account, self.min_days):
            option.observe(safe(self._on_option), names="value")
        self.confirm_button.on_action(self._on_confirm, self.send_feedback)
        self.deliver_button.on_action(self._on_deliver, self.deliver_feedback)

        self.delivery_box = widgets.VBox(
            [
                widgets.HBox([self.deliver_button]),
                self.deliver_confirmation,
                self.deliver_feedback,
                self.delivery_progress,
                self.delivery_html,
            ]
        )
        self.widget = widgets.VBox(
            [
                section(_("Bulk invitation")),
                self.source,
                widgets.HBox([self.client, self.sub_account]),
                widgets.HBox([self.min_days, self.plan_button]),
                self.feedback,
                self.summary,
                self.stale,
                widgets.HBox([self.confirm_button, self.plan_download]),
                self.send_feedback,
                self.progress,
                self.outcome_html,
                self.delivery_box,
                self.left_out,
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
        source = ngettext(
            "Source: a table of {count} row given by the notebook.",
            "Source: a table of {count} rows given by the notebook.",
            len(users),
        ).format(count=len(users))
        self.source.value = f"<p>{html.escape(source)}</p>"
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

    def refresh(self) -> None:
        """The database changed elsewhere (another tab): plan again, results kept on show."""
        if self.plan is not None and not self.confirm_button.running:
            guard(self.feedback)(self._replan)()

    def _on_option(self, _change: Any) -> None:
        """An option changed after the plan: the plan no longer says what would happen."""
        if self.plan is None:
            return
        self.plan = None
        self.confirm_button.disabled = True
        self.confirm_button.description = _("Confirm the sending")
        self.stale.value = (
            '<div class="selfcare-stale" style="color:#6d4c00;background:#fff8e1;'
            'padding:4px 8px">{}</div>'.format(
                html.escape(_("Options changed: prepare the plan again."))
            )
        )

    def make_plan(self) -> bulk_invitations.BulkPlan | None:
        """A new plan from the options on show; the previous results are cleared."""
        self.feedback.clear()
        self.send_feedback.clear()
        self.deliver_feedback.clear()
        self.outcome_html.value = self.delivery_html.value = ""
        self.progress.hide()
        self.delivery_progress.hide()
        self.outcome = None
        return self._replan()

    def _replan(self) -> bulk_invitations.BulkPlan | None:
        self.plan = None
        self.confirm_button.disabled = True
        self.confirm_button.description = _("Confirm the sending")
        self.summary.value = self.left_out.value = self.plan_download.value = ""
        self.stale.value = ""
        ref = self.client.value.strip()
        if self.users is None and not ref:
            self._count_queued()
            return None
        kwargs: dict[str, Any] = {"min_days": int(self.min_days.value)}
        if self.users is not None:
            kwargs["users"] = self.users
        else:
            kwargs["client_ref"] = ref
            if self.sub_account.value.strip():
                kwargs["sub_account"] = self.sub_account.value.strip()
        try:
            with self.services.read() as session:
                plan = bulk_invitations.plan_bulk(session, self.services.actor, **kwargs)
        finally:
            self._count_queued()
        self.plan = plan
        self._render_plan(plan)
        return plan

    def _render_plan(self, plan: bulk_invitations.BulkPlan) -> None:
        to_send = plan.to_send
        skipped = plan.frame[plan.frame["action"] != "invite"].copy()
        where = self.client.value.strip() if self.users is None else _("the table given")
        examined = ngettext(
            "{count} user examined for {where}",
            "{count} users examined for {where}",
            len(plan.frame),
        ).format(count=len(plan.frame), where=where)
        left = ngettext("{count} left out.", "{count} left out.", len(skipped)).format(
            count=len(skipped)
        )
        self.summary.value = (
            f'<div class="selfcare-plan"><h4 style="margin:6px 0">'
            f"{html.escape(invitations_to_send(to_send))}</h4>"
            + "<p>{}</p></div>".format(
                html.escape(_("{examined}; {left}").format(examined=examined, left=left))
            )
        )
        if len(skipped):
            skipped["motif"] = [
                reason_label(code, reason)
                for code, reason in zip(skipped["reason_code"], skipped["reason"], strict=True)
            ]
            counts = skipped["motif"].value_counts()
            by_reason = " · ".join(
                html.escape(_("{reason}: {count}").format(reason=k, count=v))
                for k, v in counts.items()
            )
            self.left_out.value = "<p><b>{}</b> ({})</p>".format(
                html.escape(_("Users left out")), by_reason
            ) + html_table(
                skipped,
                ["login", "email", "motif"],
                headers={"login": _("Login"), "email": _("Email"), "motif": _("Reason")},
                max_rows=100,
                max_height=300,
            )
        else:
            self.left_out.value = "<p>{}</p>".format(html.escape(_("Nobody is left out.")))
        self.plan_download.value = download_link(
            csv_bytes(plan.frame), "plan_invitations.csv", _("Download the plan")
        )
        self.confirm_button.description = (
            _("Confirm the sending ({count})").format(count=to_send)
            if to_send
            else _("Nothing to send")
        )
        self.confirm_button.disabled = to_send == 0

    # --- send ------------------------------------------------------------------------------

    def _on_confirm(self) -> None:
        if self.plan is None:
            raise ValidationError(_("Prepare the plan first: nothing has been planned yet."))
        plan = self.plan
        to_send = plan.to_send
        self.send_feedback.clear()
        self.progress.start(to_send, _("Sending"))
        try:
            with self.services.write() as session:
                outcome = bulk_invitations.apply_bulk(
                    session, self.services.actor, plan, progress=self.progress.callback
                )
        except Exception:
            self.progress.finish(_("failed: nothing was sent"), failed=True)
            self.confirm_button.disabled = False
            raise
        self.outcome = outcome
        invited = outcome.invited
        self.progress.finish(f"{invited} / {to_send}")
        counts = outcome.frame["outcome"].value_counts()
        sent_text = ngettext("{count} invitation sent", "{count} invitations sent", invited).format(
            count=invited
        )
        words = {
            "invited": lambda n: ngettext("invited", "invited", n),
            "skipped": lambda n: ngettext("set aside", "set aside", n),
        }
        details = " · ".join(
            html.escape(
                _("{reason}: {count}").format(
                    reason=words[str(k)](int(v)) if str(k) in words else str(k), count=v
                )
            )
            for k, v in counts.items()
        )
        waiting = _("The messages wait in the outbox.")
        self.outcome_html.value = (
            f'<div class="selfcare-outcome"><b>{html.escape(sent_text)}</b> ({details}). '
            f"{html.escape(waiting)}</div>"
        )
        self.send_feedback.success(
            ngettext(
                "{count} invitation created; the messages are in the outbox.",
                "{count} invitations created; the messages are in the outbox.",
                invited,
            ).format(count=invited)
        )
        # The plan is made again: it now says what is left to send (usually nothing).
        guard(self.feedback)(self._replan)()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # --- deliver ---------------------------------------------------------------------------

    def _count_queued(self) -> None:
        """This client's mails waiting in the outbox, on the delivery button."""
        ref = self.client.value.strip()
        self.queued = 0
        self.deliver_confirmation.close_question()
        # Client-side actors do not run the outbox (access.can_deliver_mail): their mails
        # leave with the next scheduled delivery, and the button stays off.
        if not ref or self.users is not None or not can_deliver_mail(self.services.actor):
            self.delivery_box.layout.display = "none"
            self.deliver_button.disabled = True
            return
        from selfcare_ops.invitations.client_outbox import queued_for_client

        try:
            with self.services.read() as session:
                self.queued = queued_for_client(session, self.services.actor, ref)
        except Exception:
            self.delivery_box.layout.display = "none"
            self.deliver_button.disabled = True
            raise
        self.delivery_box.layout.display = ""
        self.deliver_button.description = (
            ngettext(
                "Deliver this client's {count} message",
                "Deliver this client's {count} messages",
                self.queued,
            ).format(count=self.queued)
            if self.queued
            else _("No message of this client waiting")
        )
        self.deliver_button.disabled = self.queued == 0

    def _on_deliver(self) -> None:
        ref = self.client.value.strip()
        self._count_queued()  # the figure asked about is the database's, not the page's
        if not self.queued:
            self.deliver_feedback.warning(_("No message of this client waits in the outbox."))
            return
        count = self.queued
        self.deliver_confirmation.ask(
            ngettext(
                "Deliver this client's {count} message ({ref}) now? The other clients' "
                "messages stay in the outbox.",
                "Deliver this client's {count} messages ({ref}) now? The other clients' "
                "messages stay in the outbox.",
                count,
            ).format(count=count, ref=ref),
            lambda: self.deliver(ref),
        )

    def deliver(self, ref: str) -> None:
        """Deliver the due invitation mails of ``ref`` (after the confirmation)."""
        from selfcare_ops.config import get_settings
        from selfcare_ops.invitations.client_outbox import deliver_client

        self.deliver_button.disabled = True
        self.deliver_feedback.clear()
        self.delivery_progress.start(self.queued, _("Delivery"))
        try:
            report = deliver_client(
                self.services.session_factory,
                get_settings(),
                actor=self.services.actor,
                client_ref=ref,
                progress=self.delivery_progress.callback,
            )
        except Exception:
            self.delivery_progress.finish(_("failed"), failed=True)
            guard(self.deliver_feedback)(self._count_queued)()
            raise
        self.delivery = report
        sent = int(getattr(report, "sent", 0))
        retried = int(getattr(report, "retried", 0))
        failed = int(getattr(report, "failed", 0))
        cancelled = int(getattr(report, "cancelled", 0))
        self.delivery_progress.finish(
            ngettext("{count} message sent", "{count} messages sent", sent).format(count=sent),
            failed=bool(failed),
        )
        delivered = ngettext(
            "{count} message delivered", "{count} messages delivered", sent
        ).format(count=sent)
        figures = _("{delivered}, {retried} to retry, {failed} failed").format(
            delivered=delivered, retried=retried, failed=failed
        )
        if cancelled:
            figures += ", " + ngettext(
                "{count} cancelled (link revoked, replaced or expired)",
                "{count} cancelled (link revoked, replaced or expired)",
                cancelled,
            ).format(count=cancelled)
        self.delivery_html.value = f'<div class="selfcare-delivery">{html.escape(figures)}.</div>'
        error = getattr(report, "error", None)
        if error:
            self.delivery_progress.finish(_("interrupted"), failed=True)
            self.deliver_feedback.warning(
                _(
                    "The delivery stopped: {error} The messages stay in the outbox and will "
                    "leave at the next try."
                ).format(error=error)
            )
        elif failed or retried:
            self.deliver_feedback.warning(
                _(
                    "{delivered}; {retried} to retry and {failed} failed: see the state of the "
                    "outbox (selfcare-ops mail status)."
                ).format(delivered=delivered, retried=retried, failed=failed)
            )
        else:
            self.deliver_feedback.success(f"{delivered}.")
        guard(self.deliver_feedback)(self._count_queued)()
        self._changed()
