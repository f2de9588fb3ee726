"""Modules and rights dashboard: the seed's "Paramètres" toggles and the per-user rights.

Each module shows its effective state, where it comes from and the modules it impacts; its
toggle (on / off / inherit) is saved at once through ``modules.set_module``. For a client, a
page of its users (keyset-paged in the database) lets one pick a user whose three rights are
switched one by one, each saved at once through ``rights.set_rights`` (no mail to the user).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops import directory, modules
from selfcare_ops.access import Actor
from selfcare_ops.accounts import rights
from selfcare_ops.errors import NotFoundError
from selfcare_ops.i18n import _
from selfcare_ops.widgets.common import (
    Feedback,
    OrganisationPicker,
    Services,
    guard,
    page_label,
    role_label,
    section,
)
from selfcare_ops.widgets.directory import user_sorts
from selfcare_ops.widgets.grid import PageGrid, parse_sort, sort_dropdown, sort_value

#: The three rights, by the service's names; :func:`right_label` gives their words.
RIGHTS = ("manage_rights", "place_orders", "view_invoices")


def state_options() -> list[tuple[str, str]]:
    return [(_("On"), "on"), (_("Off"), "off"), (_("Inherited"), "inherit")]


def right_label(name: str) -> str:
    labels = {
        "manage_rights": _("Manage rights"),
        "place_orders": _("Place orders"),
        "view_invoices": _("See invoices"),
    }
    return labels.get(name, name)


def _own_word(own: bool | None) -> str:
    return "inherit" if own is None else ("on" if own else "off")


def state_text(state: Any, ref: str | None) -> str:
    """'activé — hérité de OP' / 'désactivé — défini ici' / 'activé — valeur par défaut'."""
    word = _("on") if state.enabled else _("off")
    if state.source is None:
        origin = _("default value")
    elif state.source == ref:
        origin = _("set here")
    else:
        origin = _("inherited from {ref}").format(ref=state.source)
    return f"{word} — {origin}"


class _ModuleRow:
    def __init__(self, key: str, label: str, on_change: Any) -> None:
        self.key = key
        self.label = widgets.HTML(f"<b>{html.escape(label.upper())}</b>")
        self.label.layout.width = "260px"
        self.toggle = widgets.ToggleButtons(options=state_options(), value="inherit")
        self.toggle.style.button_width = "90px"
        self.state = widgets.HTML("")
        self.impacts = widgets.HTML("")
        self.toggle.observe(lambda change: on_change(self, change), names="value")
        self.box = widgets.VBox([widgets.HBox([self.label, self.toggle, self.state]), self.impacts])
        self.box.add_class(f"selfcare-module-{key}")


class ModulesRightsDashboard:
    """Toggle modules with their inherited state; switch each user's rights, saved at once."""

    USER_PAGE_SIZE = 25

    def __init__(
        self, session_factory: sessionmaker[Session], actor: Actor, *, on_change: Any = None
    ) -> None:
        self.services = Services(session_factory, actor)
        #: Called after a module or a right was saved (the other tabs refresh their figures).
        self.on_change = on_change
        self.feedback = Feedback()
        #: The result of a toggle shows under the modules, of a right under the rights.
        self.modules_feedback = Feedback()
        self.rights_feedback = Feedback()
        safe = guard(self.feedback)
        self.ref: str | None = None
        self.states: dict[str, Any] = {}
        self._loading = False
        self._cursors: list[str | None] = [None]
        self._page_index = 0
        self.users_page: directory.UserPage | None = None

        with self.services.read() as session:
            from selfcare_ops.branding import resolve_branding

            own = resolve_branding(session, actor.organisation_id).organisation_ref
        self.picker = OrganisationPicker(self.services, self.feedback, self.load, own_ref=own)

        self.rows = {
            key: _ModuleRow(key, info.label, guard(self.modules_feedback)(self._on_toggle))
            for key, info in modules.CATALOGUE.items()
        }
        self.modules_box = widgets.VBox(
            [
                section(_("Which modules are shown")),
                widgets.HTML(
                    "<p>{}</p>".format(
                        html.escape(
                            _(
                                "Choose the modules your users see. A module turned off "
                                "disappears from their view; “Inherited” takes the setting "
                                "of the level above."
                            )
                        )
                    )
                ),
                *(row.box for row in self.rows.values()),
                self.modules_feedback,
            ]
        )

        self.user_search = widgets.Text(
            placeholder=_("Name, login, email"),
            description=_("Find"),
            continuous_update=False,
        )
        self.prev_users = widgets.Button(description="◀", layout=widgets.Layout(width="40px"))
        self.next_users = widgets.Button(description="▶", layout=widgets.Layout(width="40px"))
        self.users_label = widgets.Label("")
        self.user_sort = sort_dropdown(user_sorts())
        self.users_grid = PageGrid(
            "login",
            {"name": _("Name"), "login": _("Login"), "role_label": _("Role")},
            sortable=("name", "login"),
            widths={"name": 220, "login": 300, "role_label": 130},
            on_pick=guard(self.rights_feedback)(self._on_user),
            on_sort=guard(self.rights_feedback)(self._on_header_sort),
            feedback=self.rights_feedback,
            empty=_("No user matches this search."),
        )
        self.right_boxes = {
            name: widgets.Checkbox(
                description=right_label(name), value=False, indent=False, disabled=True
            )
            for name in RIGHTS
        }
        self.rights_note = widgets.HTML("")
        self.user_search.observe(safe(lambda _c: self.show_users(0)), names="value")
        self.prev_users.on_click(safe(lambda _b: self.show_users(max(self._page_index - 1, 0))))
        self.next_users.on_click(safe(self._on_next_users))
        self.user_sort.observe(safe(lambda _c: self.show_users(0)), names="value")
        for name, box in self.right_boxes.items():
            box.observe(
                guard(self.rights_feedback)(lambda change, n=name: self._on_right(n, change)),
                names="value",
            )
        self.rights_box = widgets.VBox(
            [
                section(_("Users' rights")),
                widgets.HTML(
                    "<p>{}</p>".format(
                        html.escape(
                            _(
                                "Each right is saved as soon as it is ticked or unticked; the "
                                "user is not told."
                            )
                        )
                    )
                ),
                widgets.HBox(
                    [
                        self.user_search,
                        self.prev_users,
                        self.users_label,
                        self.next_users,
                        self.user_sort,
                    ]
                ),
                self.users_grid,
                widgets.HBox(list(self.right_boxes.values())),
                self.rights_note,
                self.rights_feedback,
            ]
        )
        self.modules_box.layout.display = "none"
        self.rights_box.layout.display = "none"
        self.widget = widgets.VBox(
            [
                section(_("Modules and rights")),
                self.picker,
                self.feedback,
                self.modules_box,
                self.rights_box,
            ]
        )
        self.widget.add_class("selfcare-modules")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def follow_client(self, client_ref: str) -> None:
        if self.ref is None:
            self.picker.choose(client_ref)

    # --- modules ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Another tab changed the database: read the states and the users again."""
        if self.ref:
            self.load(self.ref)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def load(self, ref: str | None) -> None:
        self.feedback.clear()
        self.modules_feedback.clear()
        self.rights_feedback.clear()
        self.modules_box.layout.display = self.rights_box.layout.display = "none"
        self.ref = None
        if not ref:
            return
        with self.services.read() as session:
            states = modules.show_modules(session, self.services.actor, ref)
        self.ref = ref
        self._render_modules(states)
        self.modules_box.layout.display = ""
        self.show_users(0)

    def _render_modules(self, states: dict[str, Any]) -> None:
        self.states = states
        self._loading = True
        try:
            for key, row in self.rows.items():
                state = states[key]
                row.toggle.value = _own_word(state.own)
                colour = "#1b5e20" if state.enabled else "#8a1c1c"
                row.state.value = (
                    f'<span class="selfcare-module-state" style="color:{colour}">'
                    f"{html.escape(state_text(state, self.ref))}</span>"
                )
                row.impacts.value = (
                    '<p class="selfcare-impacts" style="margin:0 0 6px 12px;font-size:12px">'
                    + html.escape(
                        _(
                            "These modules will be affected (the mentions of the mobile service "
                            "are removed from them when it is off): {modules}"
                        ).format(modules=", ".join(state.impacts))
                    )
                    + "</p>"
                    if state.impacts
                    else ""
                )
        finally:
            self._loading = False

    def _on_toggle(self, row: _ModuleRow, change: dict) -> None:
        if self._loading or not self.ref:
            return
        try:
            with self.services.write() as session:
                result = modules.set_module(
                    session, self.services.actor, self.ref, row.key, change["new"]
                )
                states = modules.show_modules(session, self.services.actor, self.ref)
        except Exception:
            self._render_modules(self.states)  # put the toggle back where it was
            raise
        self._render_modules(states)
        state = _("on") if result.enabled_after else _("off")
        text = _("{module}: {state} for {ref} (saved).").format(
            module=result.label, state=state, ref=self.ref
        )
        if result.impacts:
            text += " " + _("Modules affected: {modules}.").format(
                modules=", ".join(result.impacts)
            )
        self.modules_feedback.success(text)
        self._changed()

    # --- rights ----------------------------------------------------------------------------

    def show_users(self, index: int = 0) -> None:
        if not self.ref:
            return
        if index == 0:
            self._cursors = [None]
        sort, descending = parse_sort(self.user_sort.value)
        try:
            with self.services.read() as session:
                page = directory.list_users(
                    session,
                    self.services.actor,
                    self.ref,
                    page_size=self.USER_PAGE_SIZE,
                    cursor=self._cursors[index],
                    search=self.user_search.value.strip() or None,
                    sort=sort,
                    descending=descending,
                )
        except NotFoundError:
            self.rights_box.layout.display = "none"
            return
        self.rights_box.layout.display = ""
        self.users_page, self._page_index = page, index
        if page.next_cursor and len(self._cursors) == index + 1:
            self._cursors.append(page.next_cursor)
        pages = max(1, -(-(page.total or 0) // self.USER_PAGE_SIZE))
        self.users_label.value = page_label(index + 1, pages)
        self.prev_users.disabled = index == 0
        self.next_users.disabled = page.next_cursor is None
        rows = page.rows.copy()
        rows["name"] = (rows["last_name"] + " " + rows["first_name"]).str.strip()
        rows["role_label"] = [role_label(r) for r in rows["role"]]
        self.users_grid.show(rows)
        self._render_rights()

    def _on_header_sort(self, code: str, descending: bool) -> None:
        """A header of the grid asked for a sort: the users are read again in that order."""
        value = sort_value(code, descending)
        if self.user_sort.value == value:
            self.show_users(0)
        else:
            self.user_sort.value = value

    def _on_next_users(self, _button: Any) -> None:
        if self._page_index + 1 < len(self._cursors):
            self.show_users(self._page_index + 1)

    def _on_user(self, _login: str | None) -> None:
        self._render_rights()

    def _selected(self) -> Any:
        login = self.users_grid.value
        if not login or self.users_page is None:
            return None
        match = self.users_page.rows[self.users_page.rows["login"] == login]
        return None if match.empty else match.iloc[0]

    def _render_rights(self, values: dict[str, bool] | None = None) -> None:
        row = self._selected()
        self._loading = True
        try:
            for name, box in self.right_boxes.items():
                box.disabled = row is None
                if row is not None:
                    box.value = bool(values[name] if values else row[f"right_{name}"])
        finally:
            self._loading = False
        if row is None:
            self.rights_note.value = "<p><i>{}</i></p>".format(html.escape(_("Choose a user.")))

    def _on_right(self, name: str, change: dict) -> None:
        if self._loading:
            return
        row = self._selected()
        if row is None:
            return
        try:
            with self.services.write() as session:
                result = rights.set_rights(
                    session, self.services.actor, row["login"], **{name: bool(change["new"])}
                )
        except Exception:
            self._loading = True
            try:
                self.right_boxes[name].value = bool(change["old"])
            finally:
                self._loading = False
            raise
        self.show_users(self._page_index)
        self._render_rights(result.rights)
        done = (
            _("Right “{right}” granted to {login} (saved, no message to the user).")
            if change["new"]
            else _("Right “{right}” taken from {login} (saved, no message to the user).")
        )
        self.rights_note.value = '<p class="selfcare-rights-saved">{}</p>'.format(
            html.escape(done.format(right=right_label(name), login=row["login"]))
        )
        self.rights_feedback.success(_("Rights of {login} saved.").format(login=row["login"]))
        self._changed()
