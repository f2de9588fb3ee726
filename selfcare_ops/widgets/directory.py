"""Directory dashboard: find a client, page through its users, act on one of them.

Both lists are paged and sorted in the database (``directory.search_clients`` by page number,
``directory.list_users`` by keyset cursor), so the browser only ever receives one page, shown
in a grid whose row click picks the client or the user. Actions call the invitation service;
deactivation, reactivation and supervision ask first.
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
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.invitations import service as invitations
from selfcare_ops.widgets.common import (
    STATES,
    STATUSES,
    ActionButton,
    Confirmation,
    Feedback,
    Services,
    format_date,
    guard,
    page_label,
    role_label,
    section,
    state_label,
    status_count,
    status_header,
    status_label,
)
from selfcare_ops.widgets.grid import PageGrid, parse_sort, sort_dropdown, sort_value

ALL = "__all__"


def status_text(row: pd.Series) -> str:
    """The account state as the portal words it: what became of the invitation (queued, sent
    on a date, expired, refused by the mail server), active since, deactivated since."""
    status = row["status"]
    state = row.get("state", status)
    label = status_label(status)
    if state == "pending":
        label = _("Invited on {date} (mail waiting to go)").format(
            date=format_date(row["invited_at"])
        )
    elif state == "sent":
        label = _("Invitation sent on {date}").format(date=format_date(row["invitation_sent_at"]))
    elif state == "expired":
        label = _("Invitation expired on {date}").format(
            date=format_date(row["invitation_expires_at"])
        )
    elif state == "bounced":
        label = _("Address refused: {reply}").format(
            reply=directory.server_reply(row.get("invitation_reason"))
        )
    elif state == "draft":
        label = state_label("draft")
    elif status == "invited":
        label = _("Invited on {date}").format(date=format_date(row["invited_at"]))
    elif status == "active":
        label = _("Active since {date}").format(date=format_date(row["activated_at"]))
    elif status == "deactivated":
        label = _("Deactivated on {date}").format(date=format_date(row["deactivated_at"]))
    return label


def status_html(row: pd.Series) -> str:
    """:func:`status_text` marked up: a deactivated account struck through."""
    label = html.escape(status_text(row))
    if row["status"] == "deactivated":
        return f'<s class="selfcare-deactivated">{label}</s>'
    return f'<span class="selfcare-status-{row["status"]}">{label}</span>'


def client_sorts() -> list[tuple[str, str]]:
    """The orders the database gives the client list, as the sort drop-down offers them."""
    return [
        (_("Name A → Z"), "name"),
        (_("Name Z → A"), "-name"),
        (_("Reference A → Z"), "ref"),
        (_("Reference Z → A"), "-ref"),
        (_("Partner A → Z"), "partner_name"),
        (_("Partner Z → A"), "-partner_name"),
    ]


def user_sorts() -> list[tuple[str, str]]:
    """The orders the database gives a user list (keyset paging follows them)."""
    return [
        (_("Name A → Z"), "name"),
        (_("Name Z → A"), "-name"),
        (_("Login A → Z"), "login"),
        (_("Login Z → A"), "-login"),
    ]


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
        on_change: Any = None,
    ) -> None:
        self.services = Services(session_factory, actor)
        #: Called after an action changed the database (the other tabs refresh their figures).
        self.on_change = on_change
        self.client_page_size = client_page_size or self.CLIENT_PAGE_SIZE
        self.user_page_size = user_page_size or self.USER_PAGE_SIZE
        self.feedback = Feedback()
        #: Where the result of an action on the chosen user shows: next to its buttons.
        self.action_feedback = Feedback()
        safe = guard(self.feedback)
        act = guard(self.action_feedback)

        # clients
        self.search = widgets.Text(
            placeholder=_("Name or reference"),
            description=_("Client"),
            continuous_update=False,
        )
        self.search.tooltip = _("Accents are ignored")
        self.search_button = widgets.Button(description=_("Search"), icon="search")
        self.prev_clients = widgets.Button(description="◀", tooltip=_("Previous page"))
        self.next_clients = widgets.Button(description="▶", tooltip=_("Next page"))
        self.clients_page_label = widgets.Label("")
        self.clients_total = widgets.Label("")
        # 35 pages are not walked one by one: a page number to jump to, and the page size.
        self.clients_jump = widgets.BoundedIntText(
            value=1,
            min=1,
            max=1,
            description=_("Go to page"),
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="170px"),
        )
        self.page_size = widgets.Dropdown(
            options=[10, 20, 50, 100],
            value=self.client_page_size if self.client_page_size in (10, 20, 50, 100) else 20,
            description=_("Per page"),
            style={"description_width": "initial"},
            layout=widgets.Layout(width="160px"),
        )
        self.client_sort = sort_dropdown(client_sorts())
        self.clients_grid = PageGrid(
            "ref",
            {
                "ref": _("Ref."),
                "name": _("Client"),
                "partner_name": _("Partner"),
                "users": _("Users"),
                **{k: status_header(k) for k in STATUSES},
            },
            sortable=("ref", "name", "partner_name"),
            widths={"ref": 80, "name": 230, "partner_name": 230}
            | {k: 115 for k in ("users", *STATUSES)},
            on_pick=safe(self._on_client),
            on_sort=safe(self._on_client_header_sort),
            feedback=self.feedback,
            empty=_("No client matches this search."),
        )
        self.client_page: directory.ClientPage | None = None
        self.page = 1

        # users of the chosen client
        self.client_title = widgets.HTML("")
        self.counts_html = widgets.HTML("")
        self.status_filter = widgets.Dropdown(
            options=[(_("All"), ALL)]
            + [(status_label(k), k) for k in STATUSES]
            + [(state_label(k), k) for k in STATES],
            value=ALL,
            description=_("Status"),
        )
        self.email_filter = widgets.Dropdown(
            options=[(_("All"), ALL), (_("With an email"), "yes"), (_("Without email"), "no")],
            value=ALL,
            description=_("Email"),
        )
        self.user_search = widgets.Text(
            placeholder=_("Name, login, email"),
            description=_("Find"),
            continuous_update=False,
        )
        self.sub_account = widgets.Text(
            placeholder=_("(all)"),
            description=_("Sub-account"),
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.filter_button = widgets.Button(description=_("Filter"), icon="filter")
        self.prev_users = widgets.Button(description="◀", tooltip=_("Previous page"))
        self.next_users = widgets.Button(description="▶", tooltip=_("Next page"))
        self.users_page_label = widgets.Label("")
        self.user_sort = sort_dropdown(user_sorts())
        self.users_grid = PageGrid(
            "login",
            {
                "name": _("Name"),
                "login": _("Login"),
                "email": _("Email"),
                "sub_account": _("Sub-account"),
                "role_label": _("Role"),
                "state": _("Selfcare status"),
            },
            sortable=("name", "login"),
            widths={
                "name": 190,
                "login": 270,
                "email": 270,
                "sub_account": 140,
                "role_label": 120,
                "state": 250,
            },
            on_pick=act(self._on_user),
            on_sort=safe(self._on_user_header_sort),
            feedback=self.feedback,
            empty=_("No user matches these filters."),
        )
        self.users_page: directory.UserPage | None = None
        self._cursors: list[str | None] = [None]

        # actions on the chosen user
        self.user_detail = widgets.HTML("")
        self.email = widgets.Text(placeholder=_("the user's email address"), description=_("Email"))
        self.copy_button = ActionButton(
            description=_("Copy"), tooltip=_("Take the account's address")
        )
        self.invite_button = ActionButton(description=_("Invite"), button_style="primary")
        self.resend_button = ActionButton(description=_("Send the invitation again"))
        self.deactivate_button = ActionButton(description=_("Deactivate"), button_style="warning")
        self.reactivate_button = ActionButton(description=_("Reactivate"))
        self.reason = widgets.Text(
            placeholder=_("Reason of the supervision"), description=_("Reason")
        )
        self.supervise_button = ActionButton(description=_("Supervise"), icon="eye")
        self.confirmation = Confirmation(self.action_feedback)

        self.search_button.on_click(safe(self._on_search))
        self.search.observe(safe(self._on_search_submit), names="value")
        self.prev_clients.on_click(safe(lambda _b: self.show_clients(self.page - 1)))
        self.clients_jump.observe(safe(self._on_jump), names="value")
        self.page_size.observe(safe(self._on_page_size), names="value")
        self.next_clients.on_click(safe(lambda _b: self.show_clients(self.page + 1)))
        self.client_sort.observe(safe(lambda _c: self._on_search()), names="value")
        self.user_sort.observe(safe(lambda _c: self.show_users()), names="value")
        self.filter_button.on_click(safe(lambda _b: self.show_users()))
        self.user_search.observe(safe(lambda _c: self.show_users()), names="value")
        self.sub_account.observe(safe(lambda _c: self.show_users()), names="value")
        self.status_filter.observe(safe(lambda _c: self.show_users()), names="value")
        self.email_filter.observe(safe(lambda _c: self.show_users()), names="value")
        self.prev_users.on_click(safe(self._on_prev_users))
        self.next_users.on_click(safe(self._on_next_users))
        for button, action in (
            (self.copy_button, self._on_copy),
            (self.invite_button, self._on_invite),
            (self.resend_button, self._on_resend),
            (self.deactivate_button, self._on_deactivate),
            (self.reactivate_button, self._on_reactivate),
            (self.supervise_button, self._on_supervise),
        ):
            button.on_action(action, self.action_feedback)

        self.users_box = widgets.VBox(
            [
                self.client_title,
                self.counts_html,
                widgets.HBox([self.status_filter, self.email_filter]),
                widgets.HBox([self.user_search, self.sub_account, self.filter_button]),
                self.users_grid,
                widgets.HBox(
                    [self.prev_users, self.users_page_label, self.next_users, self.user_sort]
                ),
                self.user_detail,
                widgets.HBox([self.email, self.copy_button]),
                widgets.HBox([self.invite_button, self.resend_button]),
                widgets.HBox([self.deactivate_button, self.reactivate_button]),
                widgets.HBox([self.reason, self.supervise_button]),
                self.confirmation,
                self.action_feedback,
            ]
        )
        self.users_box.layout.display = "none"
        self.widget = widgets.VBox(
            [
                section(_("Client directory")),
                widgets.HBox([self.search, self.search_button]),
                self.feedback,
                self.clients_grid,
                widgets.HBox(
                    [
                        self.prev_clients,
                        self.clients_page_label,
                        self.next_clients,
                        self.clients_total,
                        self.clients_jump,
                        self.page_size,
                        self.client_sort,
                    ]
                ),
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
        return self.clients_grid.value or None

    def show_clients(self, page: int = 1) -> None:
        """Show one page of clients matching the search text (the query pages in the database)."""
        if self.client_page is not None and self.client_page.pages:
            page = min(page, self.client_page.pages)
        page = max(page, 1)
        sort, descending = parse_sort(self.client_sort.value)
        with self.services.read() as session:
            result = directory.search_clients(
                session,
                self.services.actor,
                self.search.value.strip() or None,
                page=page,
                page_size=self.client_page_size,
                sort=sort,
                descending=descending,
            )
        self.client_page, self.page = result, result.page
        self.clients_page_label.value = page_label(result.page, result.pages)
        self.clients_total.value = ngettext(
            "{count} client", "{count} clients", result.total
        ).format(count=result.total)
        self.prev_clients.disabled = result.page <= 1
        self.next_clients.disabled = result.page >= result.pages
        self._jumping = True
        try:
            self.clients_jump.max = max(result.pages, 1)
            self.clients_jump.value = result.page
        finally:
            self._jumping = False
        self.clients_grid.show(result.rows)

    def _on_client_header_sort(self, code: str, descending: bool) -> None:
        """A header of the grid asked for a sort: the drop-down takes it and reads again."""
        value = sort_value(code, descending)
        if self.client_sort.value == value:
            self._on_search()
        else:
            self.client_sort.value = value  # reads the list again through its observer

    def _on_jump(self, change: dict) -> None:
        if not getattr(self, "_jumping", False) and change["new"] != self.page:
            self.show_clients(int(change["new"]))

    def _on_page_size(self, change: dict) -> None:
        """Another page size: both lists are read again from their first page."""
        self.client_page_size = self.user_page_size = int(change["new"])
        self.client_page = None
        self.show_clients(1)
        if self.client_ref:
            self.show_users(0)

    def _on_search(self, _button: Any = None) -> None:
        self.feedback.clear()
        self.client_page = None
        self.show_clients(1)

    def _on_search_submit(self, _change: Any) -> None:
        self._on_search()

    def _on_client(self, client_ref: str | None) -> None:
        """A row of the client grid was clicked: its users open below."""
        if client_ref:
            self._open(client_ref)
        else:
            self.users_box.layout.display = "none"

    def open_client(self, client_ref: str) -> None:
        """Show the users of ``client_ref`` (first page, filters kept), as a click on its row
        does; the client may lie on another page of the grid."""
        self.clients_grid.pick(client_ref, notify=False)
        guard(self.feedback)(self._open)(client_ref)

    def _open(self, client_ref: str) -> None:
        self.users_box.layout.display = "none"  # stays hidden if the client cannot be listed
        self.users_grid.pick(None, notify=False)
        self.email.value = ""
        self.action_feedback.clear()
        self.confirmation.close_question()
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
        sort, descending = parse_sort(self.user_sort.value)
        with self.services.read() as session:
            result = directory.list_users(
                session,
                self.services.actor,
                ref,
                page_size=self.user_page_size,
                cursor=cursor,
                sort=sort,
                descending=descending,
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
        self.users_page_label.value = page_label(cursor_index + 1, pages)
        self.prev_users.disabled = cursor_index == 0
        self.next_users.disabled = result.next_cursor is None
        rows = result.rows.copy()
        rows["name"] = (rows["last_name"] + " " + rows["first_name"]).str.strip()
        rows["state"] = [status_text(r) for _, r in rows.iterrows()]
        rows["role_label"] = [role_label(r) for r in rows["role"]]
        self.users_grid.show(rows)
        self._render_user()

    def _on_user_header_sort(self, code: str, descending: bool) -> None:
        """A header of the user grid asked for a sort: read the users again in that order."""
        value = sort_value(code, descending)
        if self.user_sort.value == value:
            self.show_users()
        else:
            self.user_sort.value = value

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
        parts = " · ".join(status_count(s, int(row[s])) for s in STATUSES)
        users = int(row["users"])
        text = ngettext("{count} user: {parts}", "{count} users: {parts}", users).format(
            count=users, parts=parts
        )
        if listed is not None:
            text += " — " + ngettext(
                "{count} matches the filters", "{count} match the filters", int(listed)
            ).format(count=int(listed))
        self.counts_html.value = f'<p class="selfcare-counts">{html.escape(text)}</p>'

    def _on_prev_users(self, _button: Any) -> None:
        self.show_users(max(self._page_index - 1, 0))

    def _on_next_users(self, _button: Any) -> None:
        if self._page_index + 1 < len(self._cursors):
            self.show_users(self._page_index + 1)

    # --- the chosen user -------------------------------------------------------------------

    @property
    def selected(self) -> pd.Series | None:
        login = self.users_grid.value
        if not login or self.users_page is None:
            return None
        match = self.users_page.rows[self.users_page.rows["login"] == login]
        return None if match.empty else match.iloc[0]

    def _on_user(self, _login: str | None) -> None:
        self.email.value = ""
        self.action_feedback.clear()
        self.confirmation.close_question()
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
            self.user_detail.value = "<p><i>{}</i></p>".format(
                html.escape(_("Choose a user to act on their account."))
            )
            for button in buttons:
                button.disabled = True
            return
        status = row["status"]
        email = row["email"] if isinstance(row["email"], str) else ""
        self.user_detail.value = (
            f'<div class="selfcare-user"><b>{html.escape(user_label(row))}</b><br>'
            + _("Status: {status}").format(status=status_html(row))
            + "<br>"
            + _("Account email: {email}").format(
                email=html.escape(email) or "<i>{}</i>".format(html.escape(_("none")))
            )
            + "</div>"
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
            raise ValidationError(_("Choose a user in the list first."), field="user")
        return row

    def _on_copy(self, _button: Any = None) -> None:
        row = self._require_selected()
        self.email.value = row["email"] if isinstance(row["email"], str) else ""

    def refresh(self) -> None:
        """Read the figures again (the database changed in this tab or another one)."""
        self.show_clients(self.page)
        if self.client_ref:
            self.show_users(getattr(self, "_page_index", 0))

    def _refresh(self) -> None:
        self.refresh()
        if self.on_change is not None:
            self.on_change(self)

    def _on_invite(self, _button: Any = None) -> None:
        row = self._require_selected()
        email = self.email.value.strip() or None
        with self.services.write() as session:
            invitations.invite_user(session, self.services.actor, row["login"], email=email)
        self._refresh()
        self.action_feedback.success(
            _("Invitation sent to {login} ({email}).").format(
                login=row["login"], email=email or row["email"]
            )
        )

    def _on_resend(self, _button: Any = None) -> None:
        row = self._require_selected()
        with self.services.write() as session:
            invitations.resend(session, self.services.actor, row["login"])
        self._refresh()
        self.action_feedback.success(
            _("New invitation sent to {login}.").format(login=row["login"])
        )

    def _on_deactivate(self, _button: Any = None) -> None:
        row = self._require_selected()
        login = row["login"]
        self.confirmation.ask(
            _(
                "Deactivate the Selfcare account of {user}? It stays listed, struck through, "
                "and can be reactivated."
            ).format(user=user_label(row)),
            lambda: self._lifecycle("deactivate", login),
        )

    def _on_reactivate(self, _button: Any = None) -> None:
        row = self._require_selected()
        login = row["login"]
        self.confirmation.ask(
            _("Reactivate the Selfcare account of {user}?").format(user=user_label(row)),
            lambda: self._lifecycle("reactivate", login),
        )

    def _lifecycle(self, action: str, login: str) -> None:
        with self.services.write() as session:
            getattr(lifecycle, action)(session, self.services.actor, login)
        self._refresh()
        done = (
            _("Account of {login} deactivated.")
            if action == "deactivate"
            else _("Account of {login} reactivated.")
        )
        self.action_feedback.success(done.format(login=login))

    def _on_supervise(self, _button: Any = None) -> None:
        row = self._require_selected()
        reason = self.reason.value.strip()
        if not reason:
            raise ValidationError(
                _("Give the reason of the supervision: the user will see it and it is audited."),
                field="reason",
            )
        login = row["login"]
        self.confirmation.ask(
            _(
                "Take over the Selfcare of {user}? A banner tells the user for as long as the "
                "supervision lasts."
            ).format(user=user_label(row)),
            lambda: self._supervise(login, reason),
        )

    def _supervise(self, login: str, reason: str) -> None:
        with self.services.write() as session:
            result = supervision.supervise(session, self.services.actor, login, reason=reason)
        link = getattr(result, "url", None) or getattr(result, "link", None)
        until = getattr(result, "expires_at", None)
        if until is not None:
            text = _("Supervision of {login} open until {time} UTC.").format(
                login=login, time=f"{until:%H:%M}"
            )
        else:
            text = _("Supervision of {login} open.").format(login=login)
        self.action_feedback.success(text)
        if link:
            words = html.escape(_("Open the new Selfcare"))
            self.user_detail.value += (
                f'<p><a class="selfcare-supervision" href="{html.escape(str(link))}" '
                f'target="_blank">{words}</a></p>'
            )
