"""Directory dashboard: find a client, page through its users, act on one of them.

Both lists are paged in the database (``directory.search_clients`` by page number,
``directory.list_users`` by keyset cursor), so the browser only ever receives one page.
Actions call the invitation service; deactivation, reactivation and supervision ask first.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops import directory
from selfcare_ops.access import Actor
from selfcare_ops.accounts import lifecycle, supervision
from selfcare_ops.errors import ValidationError
from selfcare_ops.invitations import service as invitations
from selfcare_ops.widgets.common import (
    ROLE_LABELS,
    STATE_LABELS,
    STATUS_LABELS,
    STATUS_PLURALS,
    Confirmation,
    Feedback,
    Services,
    format_date,
    guard,
    html_table,
    plural,
    section,
)

ALL = "__all__"


def status_html(row: pd.Series) -> str:
    """The account state as the portal words it: what became of the invitation (queued, sent
    on a date, expired, refused by the mail server), active since, deactivated struck."""
    status = row["status"]
    state = row.get("state", status)
    label = STATUS_LABELS.get(status, status)
    if state == "pending":
        label = f"Invité le {format_date(row['invited_at'])} (envoi en attente)"
    elif state == "sent":
        label = f"Invitation envoyée le {format_date(row['invitation_sent_at'])}"
    elif state == "expired":
        label = f"Invitation expirée le {format_date(row['invitation_expires_at'])}"
    elif state == "bounced":
        label = f"Adresse refusée : {directory.server_reply(row.get('invitation_reason'))}"
    elif state == "draft":
        label = STATE_LABELS["draft"]
    elif status == "invited":
        label = f"Invité le {format_date(row['invited_at'])}"
    elif status == "active":
        label = f"Actif depuis le {format_date(row['activated_at'])}"
    elif status == "deactivated":
        return (
            f'<s class="selfcare-deactivated">Désactivé le {format_date(row["deactivated_at"])}</s>'
        )
    return f'<span class="selfcare-status-{status}">{html.escape(label)}</span>'


def user_label(row: pd.Series) -> str:
    name = f"{row['last_name']} {row['first_name']}".strip()
    return f"{name} — {row['login']}"


class DirectoryDashboard:
    """Search clients, list their users with status, invite / resend / deactivate / supervise."""

    CLIENT_PAGE_SIZE = 20
    USER_PAGE_SIZE = 25

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        actor: Actor,
        *,
        client_page_size: int | None = None,
        user_page_size: int | None = None,
    ) -> None:
        self.services = Services(session_factory, actor)
        self.client_page_size = client_page_size or self.CLIENT_PAGE_SIZE
        self.user_page_size = user_page_size or self.USER_PAGE_SIZE
        self.feedback = Feedback()
        safe = guard(self.feedback)

        # clients
        self.search = widgets.Text(
            placeholder="Nom ou référence (accents ignorés)",
            description="Client",
            continuous_update=False,
        )
        self.search_button = widgets.Button(description="Rechercher", icon="search")
        self.prev_clients = widgets.Button(description="◀", tooltip="Page précédente")
        self.next_clients = widgets.Button(description="▶", tooltip="Page suivante")
        self.clients_page_label = widgets.Label("")
        self.clients_total = widgets.Label("")
        self.clients_html = widgets.HTML("")
        self.client_select = widgets.Select(
            options=[], rows=8, description="Choisir", layout=widgets.Layout(width="60%")
        )
        self.client_page: directory.ClientPage | None = None
        self.page = 1

        # users of the chosen client
        self.client_title = widgets.HTML("")
        self.counts_html = widgets.HTML("")
        self.status_filter = widgets.Dropdown(
            options=[("Tous", ALL)]
            + [(v, k) for k, v in STATUS_LABELS.items()]
            + [(v, k) for k, v in STATE_LABELS.items()],
            value=ALL,
            description="Statut",
        )
        self.email_filter = widgets.Dropdown(
            options=[("Tous", ALL), ("Avec e-mail", "yes"), ("Sans e-mail", "no")],
            value=ALL,
            description="E-mail",
        )
        self.user_search = widgets.Text(
            placeholder="Nom, identifiant, e-mail", description="Chercher", continuous_update=False
        )
        self.sub_account = widgets.Text(
            placeholder="(tous)",
            description="Sous-compte",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.filter_button = widgets.Button(description="Filtrer", icon="filter")
        self.prev_users = widgets.Button(description="◀", tooltip="Page précédente")
        self.next_users = widgets.Button(description="▶", tooltip="Page suivante")
        self.users_page_label = widgets.Label("")
        self.users_html = widgets.HTML("")
        self.user_select = widgets.Select(
            options=[], rows=8, description="Utilisateur", layout=widgets.Layout(width="60%")
        )
        self.users_page: directory.UserPage | None = None
        self._cursors: list[str | None] = [None]

        # actions on the chosen user
        self.user_detail = widgets.HTML("")
        self.email = widgets.Text(
            placeholder="adresse e-mail de l'utilisateur", description="E-mail"
        )
        self.copy_button = widgets.Button(
            description="Copier", tooltip="Reprendre l'adresse du compte"
        )
        self.invite_button = widgets.Button(description="Inviter", button_style="primary")
        self.resend_button = widgets.Button(description="Renvoyer l'invitation")
        self.deactivate_button = widgets.Button(description="Désactiver", button_style="warning")
        self.reactivate_button = widgets.Button(description="Réactiver")
        self.reason = widgets.Text(placeholder="Raison de la supervision", description="Raison")
        self.supervise_button = widgets.Button(description="Superviser", icon="eye")
        self.confirmation = Confirmation(self.feedback)

        self.search_button.on_click(safe(self._on_search))
        self.search.observe(safe(self._on_search_submit), names="value")
        self.prev_clients.on_click(safe(lambda _b: self.show_clients(self.page - 1)))
        self.next_clients.on_click(safe(lambda _b: self.show_clients(self.page + 1)))
        self.client_select.observe(safe(self._on_client), names="value")
        self.filter_button.on_click(safe(lambda _b: self.show_users()))
        self.user_search.observe(safe(lambda _c: self.show_users()), names="value")
        self.sub_account.observe(safe(lambda _c: self.show_users()), names="value")
        self.status_filter.observe(safe(lambda _c: self.show_users()), names="value")
        self.email_filter.observe(safe(lambda _c: self.show_users()), names="value")
        self.prev_users.on_click(safe(self._on_prev_users))
        self.next_users.on_click(safe(self._on_next_users))
        self.user_select.observe(safe(self._on_user), names="value")
        self.copy_button.on_click(safe(self._on_copy))
        self.invite_button.on_click(safe(self._on_invite))
        self.resend_button.on_click(safe(self._on_resend))
        self.deactivate_button.on_click(safe(self._on_deactivate))
        self.reactivate_button.on_click(safe(self._on_reactivate))
        self.supervise_button.on_click(safe(self._on_supervise))

        self.users_box = widgets.VBox(
            [
                self.client_title,
                self.counts_html,
                widgets.HBox([self.status_filter, self.email_filter]),
                widgets.HBox([self.user_search, self.sub_account, self.filter_button]),
                self.users_html,
                widgets.HBox([self.prev_users, self.users_page_label, self.next_users]),
                self.user_select,
                self.user_detail,
                widgets.HBox([self.email, self.copy_button]),
                widgets.HBox([self.invite_button, self.resend_button]),
                widgets.HBox([self.deactivate_button, self.reactivate_button]),
                widgets.HBox([self.reason, self.supervise_button]),
                self.confirmation,
            ]
        )
        self.users_box.layout.display = "none"
        self.widget = widgets.VBox(
            [
                section("Annuaire des clients"),
                widgets.HBox([self.search, self.search_button]),
                self.feedback,
                self.clients_html,
                widgets.HBox(
                    [
                        self.prev_clients,
                        self.clients_page_label,
                        self.next_clients,
                        self.clients_total,
                    ]
                ),
                self.client_select,
                self.users_box,
            ]
        )
        self.widget.add_class("selfcare-directory")
        safe(self.show_clients)(1)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- clients ---------------------------------------------------------------------------

    @property
    def client_ref(self) -> str | None:
        return self.client_select.value or None

    def show_clients(self, page: int = 1) -> None:
        """Show one page of clients matching the search text (the query pages in the database)."""
        if self.client_page is not None and self.client_page.pages:
            page = min(page, self.client_page.pages)
        page = max(page, 1)
        with self.services.read() as session:
            result = directory.search_clients(
                session,
                self.services.actor,
                self.search.value.strip() or None,
                page=page,
                page_size=self.client_page_size,
            )
        self.client_page, self.page = result, result.page
        self.clients_page_label.value = result.label
        self.clients_total.value = plural(result.total, "client")
        self.prev_clients.disabled = result.page <= 1
        self.next_clients.disabled = result.page >= result.pages
        self.clients_html.value = html_table(
            result.rows,
            [
                "ref",
                "name",
                "partner_name",
                "users",
                "not_invited",
                "invited",
                "active",
                "deactivated",
            ],
            headers={
                "ref": "Réf.",
                "name": "Client",
                "partner_name": "Partenaire",
                "users": "Utilisateurs",
                **{k: v.capitalize() for k, v in STATUS_PLURALS.items()},
            },
            empty="Aucun client ne correspond à cette recherche.",
        )
        current = self.client_select.value
        options = [(f"{r.name} ({r.ref})", r.ref) for r in result.rows.itertuples()]
        self.client_select.options = options
        if current in {ref for _, ref in options}:
            self.client_select.value = current
        else:
            self.client_select.value = None

    def _on_search(self, _button: Any = None) -> None:
        self.feedback.clear()
        self.client_page = None
        self.show_clients(1)

    def _on_search_submit(self, _change: Any) -> None:
        self._on_search()

    def _on_client(self, change: dict) -> None:
        if change["new"]:
            self.open_client(change["new"])
        else:
            self.users_box.layout.display = "none"

    def open_client(self, client_ref: str) -> None:
        """Show the users of ``client_ref`` (first page, filters kept)."""
        if self.client_select.value != client_ref:
            options = list(self.client_select.options)
            if client_ref not in {ref for _, ref in options}:
                self.client_select.options = [*options, (client_ref, client_ref)]
            self.client_select.value = client_ref  # comes back here through the observer
            return
        self.users_box.layout.display = "none"  # stays hidden if the client cannot be listed
        self.user_select.value = None
        self.show_users()
        self.users_box.layout.display = ""

    # --- users -----------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        status = self.status_filter.value
        email = self.email_filter.value
        return {
            "status": None if status == ALL else status,
            "has_email": None if email == ALL else email == "yes",
            "search": self.user_search.value.strip() or None,
            "sub_account": self.sub_account.value.strip() or None,
        }

    def show_users(self, cursor_index: int = 0) -> None:
        """Show one page of the chosen client's users (keyset paging in the database)."""
        ref = self.client_ref
        if not ref:
            return
        if cursor_index == 0:
            self._cursors = [None]
        cursor = self._cursors[cursor_index]
        with self.services.read() as session:
            result = directory.list_users(
                session,
                self.services.actor,
                ref,
                page_size=self.user_page_size,
                cursor=cursor,
                **self._filters(),
            )
            counts = directory.search_clients(session, self.services.actor, ref, page_size=50)
        self.users_page = result
        self._page_index = cursor_index
        if result.next_cursor and len(self._cursors) == cursor_index + 1:
            self._cursors.append(result.next_cursor)
        self._render_counts(ref, counts.rows, result.total)
        total = result.total or 0
        pages = max(1, -(-total // self.user_page_size))
        self.users_page_label.value = f"Page {cursor_index + 1} / {pages}"
        self.prev_users.disabled = cursor_index == 0
        self.next_users.disabled = result.next_cursor is None
        rows = result.rows.copy()
        rows["name"] = (rows["last_name"] + " " + rows["first_name"]).str.strip()
        rows["state"] = [status_html(r) for _, r in rows.iterrows()]
        rows["role_label"] = rows["role"].map(ROLE_LABELS).fillna(rows["role"])
        self.users_html.value = html_table(
            rows,
            ["name", "login", "email", "sub_account", "role_label", "state"],
            headers={
                "name": "Nom",
                "login": "Identifiant",
                "email": "E-mail",
                "sub_account": "Sous-compte",
                "role_label": "Rôle",
                "state": "Statut Selfcare",
            },
            raw_columns=["state"],
            row_classes=["struck" if d else "" for d in rows["deactivated"]],
            empty="Aucun utilisateur ne correspond à ces filtres.",
        )
        current = self.user_select.value
        options = [(user_label(r), r["login"]) for _, r in rows.iterrows()]
        self.user_select.options = options
        self.user_select.value = current if current in {v for _, v in options} else None
        self._render_user()

    def _render_counts(self, ref: str, client_rows: pd.DataFrame, listed: int | None) -> None:
        match = client_rows[client_rows["ref"] == ref]
        if match.empty:
            self.client_title.value = f"<h4>{html.escape(ref)}</h4>"
            self.counts_html.value = ""
            return
        row = match.iloc[0]
        self.client_title.value = (
            f"<h4 style='margin:8px 0 2px'>{html.escape(row['name'])} "
            f"<small>({html.escape(ref)}, {html.escape(row['partner_name'])})</small></h4>"
        )
        parts = [
            plural(int(row[s]), STATUS_LABELS[s].lower(), STATUS_PLURALS[s]) for s in STATUS_LABELS
        ]
        shown = ""
        if listed is not None:
            verb = "correspond" if int(listed) < 2 else "correspondent"
            shown = f" — {int(listed)} {verb} aux filtres"
        self.counts_html.value = (
            f'<p class="selfcare-counts">{plural(int(row["users"]), "utilisateur")} : '
            f"{html.escape(' · '.join(parts))}{html.escape(shown)}</p>"
        )

    def _on_prev_users(self, _button: Any) -> None:
        self.show_users(max(self._page_index - 1, 0))

    def _on_next_users(self, _button: Any) -> None:
        if self._page_index + 1 < len(self._cursors):
            self.show_users(self._page_index + 1)

    # --- the chosen user -------------------------------------------------------------------

    @property
    def selected(self) -> pd.Series | None:
        login = self.user_select.value
        if not login or self.users_page is None:
            return None
        match = self.users_page.rows[self.users_page.rows["login"] == login]
        return None if match.empty else match.iloc[0]

    def _on_user(self, _change: Any) -> None:
        self.email.value = ""
        self._render_user()

    def _render_user(self) -> None:
        row = self.selected
        buttons = [
            self.copy_button,
            self.invite_button,
            self.resend_button,
            self.deactivate_button,
            self.reactivate_button,
            self.supervise_button,
        ]
        if row is None:
            self.user_detail.value = (
                "<p><i>Choisissez un utilisateur pour agir sur son compte.</i></p>"
            )
            for button in buttons:
                button.disabled = True
            return
        status = row["status"]
        email = row["email"] if isinstance(row["email"], str) else ""
        self.user_detail.value = (
            f'<div class="selfcare-user"><b>{html.escape(user_label(row))}</b><br>'
            f"Statut : {status_html(row)}<br>"
            f"E-mail du compte : {html.escape(email) or '<i>aucune</i>'}</div>"
        )
        self.copy_button.disabled = not email
        self.invite_button.disabled = status in ("active", "deactivated")
        self.resend_button.disabled = status != "invited"
        self.deactivate_button.disabled = status == "deactivated"
        self.reactivate_button.disabled = status != "deactivated"
        self.supervise_button.disabled = status != "active"

    def _require_selected(self) -> pd.Series:
        row = self.selected
        if row is None:
            raise ValidationError("Choose a user in the list first.", field="user")
        return row

    def _on_copy(self, _button: Any) -> None:
        row = self._require_selected()
        self.email.value = row["email"] if isinstance(row["email"], str) else ""

    def _refresh(self) -> None:
        self.show_clients(self.page)
        self.show_users(getattr(self, "_page_index", 0))

    def _on_invite(self, _button: Any) -> None:
        row = self._require_selected()
        email = self.email.value.strip() or None
        with self.services.write() as session:
            invitations.invite_user(session, self.services.actor, row["login"], email=email)
        self._refresh()
        self.feedback.success(f"Invitation envoyée à {row['login']} ({email or row['email']}).")

    def _on_resend(self, _button: Any) -> None:
        row = self._require_selected()
        with self.services.write() as session:
            invitations.resend(session, self.services.actor, row["login"])
        self._refresh()
        self.feedback.success(f"Nouvelle invitation envoyée à {row['login']}.")

    def _on_deactivate(self, _button: Any) -> None:
        row = self._require_selected()
        login = row["login"]
        self.confirmation.ask(
            f"Désactiver le compte Selfcare de {user_label(row)} ? "
            "Il restera listé, barré, et pourra être réactivé.",
            lambda: self._lifecycle("deactivate", login, "Compte de {} désactivé."),
        )

    def _on_reactivate(self, _button: Any) -> None:
        row = self._require_selected()
        login = row["login"]
        self.confirmation.ask(
            f"Réactiver le compte Selfcare de {user_label(row)} ?",
            lambda: self._lifecycle("reactivate", login, "Compte de {} réactivé."),
        )

    def _lifecycle(self, action: str, login: str, done: str) -> None:
        with self.services.write() as session:
            getattr(lifecycle, action)(session, self.services.actor, login)
        self._refresh()
        self.feedback.success(done.format(login))

    def _on_supervise(self, _button: Any) -> None:
        row = self._require_selected()
        reason = self.reason.value.strip()
        if not reason:
            raise ValidationError(
                "Give the reason of the supervision: the user will see it and it is audited.",
                field="reason",
            )
        login = row["login"]
        self.confirmation.ask(
            f"Prendre la main sur le Selfcare de {user_label(row)} ? "
            "Un bandeau le signalera à l'utilisateur pendant toute la supervision.",
            lambda: self._supervise(login, reason),
        )

    def _supervise(self, login: str, reason: str) -> None:
        with self.services.write() as session:
            result = supervision.supervise(session, self.services.actor, login, reason=reason)
        link = getattr(result, "url", None) or getattr(result, "link", None)
        until = getattr(result, "expires_at", None)
        text = f"Supervision de {login} ouverte"
        if until is not None:
            text += f" jusqu'à {until:%H:%M} UTC"
        self.feedback.success(text + ".")
        if link:
            self.user_detail.value += (
                f'<p><a class="selfcare-supervision" href="{html.escape(str(link))}" '
                'target="_blank">Accéder au nouveau Selfcare</a></p>'
            )
