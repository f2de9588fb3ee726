"""Pieces every dashboard shares: sessions, readable errors, progress bars, HTML tables.

A dashboard callback does three things: read the widgets, call one service, show the result.
:func:`guard` wraps every callback so that a :class:`SelfcareError` shows its sentence and any
other exception a short message, never a traceback (the traceback goes to the log, where an
engineer can find it). Content is rendered into ``HTML`` widgets rather than ``Output``
widgets, so that what a dashboard shows can be read back in tests and in Voila alike.
"""

from __future__ import annotations

import base64
import functools
import html
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar

import ipywidgets as widgets
import pandas as pd
import traitlets
from pandas.io.formats.style import Styler
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from selfcare_ops.access import Actor
from selfcare_ops.errors import SelfcareError
from selfcare_ops.i18n import _, ngettext
from selfcare_ops.store.db import make_session_factory

log = logging.getLogger("selfcare_ops.widgets")

F = TypeVar("F", bound=Callable[..., Any])

#: Account states, roles and invitation states by their stable codes; the words are looked up
#: when shown, in the language of the moment.
STATUSES = ("not_invited", "invited", "active", "deactivated")
#: One vocabulary (DOMAIN.md): the seed's "gestionnaire" of a company is its administrator; the
#: sub-account role is seed 002's "manager".
ROLES = ("administrator", "manager", "user")
#: States of the latest invitation or draft, as the status filter offers them.
STATES = ("draft", "sent", "expired", "bounced")


def status_label(code: str) -> str:
    """An account state as a filter offers it: "Non invité"."""
    labels = {
        "not_invited": _("Not invited"),
        "invited": _("Invited"),
        "active": _("Active"),
        "deactivated": _("Deactivated"),
    }
    return labels.get(code, code)


def status_header(code: str) -> str:
    """An account state as a column of counts is headed: "Non invités"."""
    labels = {
        "not_invited": _("Users not invited"),
        "invited": _("Users invited"),
        "active": _("Active users"),
        "deactivated": _("Deactivated users"),
    }
    return labels.get(code, code)


def status_count(code: str, count: int) -> str:
    """ "3 non invités", "1 actif"."""
    forms = {
        "not_invited": ngettext("{count} not invited", "{count} not invited", count),
        "invited": ngettext("{count} invited", "{count} invited", count),
        "active": ngettext("{count} active", "{count} active", count),
        "deactivated": ngettext("{count} deactivated", "{count} deactivated", count),
    }
    return forms.get(code, f"{{count}} {code}").format(count=count)


def role_label(code: str) -> str:
    labels = {
        "administrator": _("Administrator"),
        "manager": _("Sub-account manager"),
        "user": _("User"),
    }
    return labels.get(code, code)


def state_label(code: str) -> str:
    labels = {
        "draft": _("Draft (not activated)"),
        "sent": _("Invitation sent"),
        "expired": _("Invitation expired"),
        "bounced": _("Address refused"),
    }
    return labels.get(code, code)


class Services:
    """The session factory and the actor a dashboard works with."""

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor) -> None:
        self.session_factory = session_factory
        self.actor = actor
        bind = session_factory.kw.get("bind")
        self._read_factory = (
            make_session_factory(bind, read_only=True)
            if isinstance(bind, Engine)
            else session_factory
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing is committed and a running import never blocks it."""
        with self._read_factory() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error."""
        with self.session_factory.begin() as session:
            yield session


class Feedback(widgets.HTML):
    """The message line of a dashboard: success, warning or error, always one sentence."""

    STYLES = {
        "success": "color:#1b5e20;background:#e8f5e9;border-left:4px solid #2e7d32",
        "info": "color:#0d47a1;background:#e3f2fd;border-left:4px solid #1565c0",
        "warning": "color:#6d4c00;background:#fff8e1;border-left:4px solid #f9a825",
        "error": "color:#b71c1c;background:#ffebee;border-left:4px solid #c62828",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = ""
        self.text = ""
        self.add_class("selfcare-feedback")

    def show(self, text: str, kind: str = "info") -> None:
        self.kind, self.text = kind, text
        style = self.STYLES.get(kind, self.STYLES["info"])
        self.value = (
            f'<div class="selfcare-{kind}" style="{style};padding:6px 10px;margin:4px 0">'
            f"{html.escape(text)}</div>"
        )

    def success(self, text: str) -> None:
        self.show(text, "success")

    def error(self, text: str) -> None:
        self.show(text, "error")

    def warning(self, text: str) -> None:
        self.show(text, "warning")

    def clear(self) -> None:
        self.kind, self.text, self.value = "", "", ""


def error_message(exc: BaseException) -> str:
    """What an analyst reads for ``exc``: the sentence of our errors, a short note otherwise."""
    if isinstance(exc, SelfcareError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    detail = f" ({type(exc).__name__}: {first})" if first else f" ({type(exc).__name__})"
    return _("An unexpected error occurred{detail}. The details are in the kernel's log.").format(
        detail=detail
    )


def guard(feedback: Feedback) -> Callable[[F], F]:
    """Decorate a callback so that no exception escapes it as a traceback."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except SelfcareError as exc:
                feedback.error(str(exc))
            except Exception as exc:
                log.exception("dashboard callback %s failed", getattr(func, "__name__", func))
                feedback.error(error_message(exc))
            return None

        return wrapper  # type: ignore[return-value]

    return decorate


class ActionButton(widgets.Button):
    """A button whose work runs once per click, whatever the analyst's fingers do.

    While its work runs the button is disabled (the browser greys it); a click that arrives
    while it is disabled (a double click queued behind the first) is ignored, so the result on
    show is always the first click's own. The work may set ``disabled`` while it runs: that
    state is applied when the work ends (an applied plan leaves nothing to apply).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._running = False
        self._after = bool(self.disabled)
        self.runs = 0

    @traitlets.validate("disabled")
    def _hold_while_running(self, proposal: Any) -> bool:
        if getattr(self, "_running", False):
            self._after = bool(proposal["value"])
            return True
        return bool(proposal["value"])

    @property
    def running(self) -> bool:
        return self._running

    def on_action(self, func: Callable[[], Any], feedback: Feedback) -> None:
        """Run ``func`` on each click that finds the button enabled, errors into ``feedback``."""
        safe = guard(feedback)(func)

        def clicked(_button: Any) -> None:
            if self._running or self.disabled:
                return
            self._after = False
            self.disabled = True
            self._running = True
            self.runs += 1
            try:
                safe()
            finally:
                self._running = False
                self.disabled = self._after

        self.on_click(clicked)


class Progress(widgets.HBox):
    """A progress bar with its "done / total" label; ``callback`` fits the services' progress."""

    def __init__(self, description: str = "") -> None:
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description=description)
        self.label = widgets.Label("")
        super().__init__([self.bar, self.label])
        self.layout.display = "none"

    def start(self, total: int, description: str | None = None) -> None:
        if description is not None:
            self.bar.description = description
        self.bar.bar_style = ""
        self.bar.max = max(int(total), 1)
        self.bar.value = 0
        self.label.value = f"0 / {total}"
        self.layout.display = ""

    def callback(self, done: int, total: int) -> None:
        if total and self.bar.max != total:
            self.bar.max = max(int(total), 1)
        self.bar.value = min(int(done), self.bar.max)
        self.label.value = f"{done} / {total}"

    def finish(self, text: str | None = None, *, failed: bool = False) -> None:
        self.bar.value = self.bar.max
        self.bar.bar_style = "danger" if failed else "success"
        if text is not None:
            self.label.value = text

    def hide(self) -> None:
        self.layout.display = "none"


class Confirmation(widgets.VBox):
    """Asks before a consequential action: the question, then Confirm / Cancel."""

    def __init__(self, feedback: Feedback) -> None:
        self.question = widgets.HTML("")
        self.confirm_button = ActionButton(description=_("Confirm"), button_style="danger")
        self.cancel_button = widgets.Button(description=_("Cancel"))
        self._pending: Callable[[], None] | None = None
        self._on_cancel: Callable[[], None] | None = None
        super().__init__([self.question, widgets.HBox([self.confirm_button, self.cancel_button])])
        self.layout.display = "none"
        self.add_class("selfcare-confirmation")
        self.confirm_button.on_action(self._confirm, feedback)
        self.cancel_button.on_click(guard(feedback)(self._cancel))

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def ask(
        self,
        question: str,
        action: Callable[[], None],
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        self._pending = action
        self._on_cancel = on_cancel
        self.question.value = f"<b>{html.escape(question)}</b>"
        self.layout.display = ""

    def _confirm(self, _button: Any = None) -> None:
        action, self._pending = self._pending, None
        self._on_cancel = None
        self.layout.display = "none"
        self.question.value = ""
        if action is not None:
            action()

    def _cancel(self, _button: Any = None) -> None:
        self._pending = None
        self.question.value = ""
        self.layout.display = "none"
        on_cancel, self._on_cancel = self._on_cancel, None
        if on_cancel is not None:
            on_cancel()

    def close_question(self) -> None:
        """Withdraw a question whose figures are no longer true (nothing is done)."""
        self._pending = self._on_cancel = None
        self._cancel()


def format_date(value: Any) -> str:
    """A date as the portal shows it (dd/mm/yyyy); empty for missing values."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def cell_text(value: Any) -> str:
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime | pd.Timestamp):
        return format_date(value)
    return str(value)


#: The dashboards' table look, by class: every table of a page shares it (a struck row is a
#: deactivated user, as the portal shows one).
TABLE_STYLE = (
    "<style>.selfcare-table th,.selfcare-table td{padding:3px 10px;text-align:left;"
    "border-bottom:1px solid #e6e6e6;vertical-align:top}.selfcare-table th{background:#f5f5f5;"
    "position:sticky;top:0}.selfcare-table td.struck{text-decoration:line-through;color:#888}"
    "</style>"
)


def html_table(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    headers: dict[str, str] | None = None,
    row_classes: Iterable[str] | None = None,
    raw_columns: Iterable[str] = (),
    column_classes: dict[str, str] | None = None,
    table_class: str = "",
    empty: str | None = None,
    max_rows: int = 200,
    max_height: int = 420,
) -> str:
    """A pandas-rendered table whose text is escaped by pandas, except ``raw_columns`` (HTML
    the dashboard built itself); ``row_classes`` give each row's cells a class ("struck"),
    ``column_classes`` each column's cells, ``table_class`` the table (besides
    ``selfcare-table``)."""
    if frame is None or frame.empty:
        shown = empty or _("No rows.")
        return f'<p class="selfcare-empty"><i>{html.escape(shown)}</i></p>'
    columns = list(columns or frame.columns)
    headers = headers or {}
    raw = set(raw_columns)
    shown = frame.head(max_rows)[columns].map(cell_text)
    shown.columns = pd.Index([headers.get(c, c) for c in columns])
    styler = Styler(shown, cell_ids=False).hide(axis="index")
    escaped = [headers.get(c, c) for c in columns if c not in raw]
    styler = styler.format(escape="html", subset=escaped).format_index(escape="html", axis=1)
    if row_classes is not None or column_classes:
        per_row = list(row_classes or [])[: len(shown)]
        per_row += [""] * (len(shown) - len(per_row))
        by_column = [(column_classes or {}).get(c, "") for c in columns]
        cells = [[f"{row} {col}".strip() for col in by_column] for row in per_row]
        styler = styler.set_td_classes(
            pd.DataFrame(cells, index=shown.index, columns=shown.columns)
        )
    classes = html.escape(f"selfcare-table {table_class}".strip())
    styler = styler.set_table_attributes(
        f'class="{classes}" style="border-collapse:collapse;font-size:13px"'
    )
    more = ""
    if len(frame) > max_rows:
        hidden = len(frame) - max_rows
        more = "<p><i>{}</i></p>".format(
            ngettext("… and {count} more row.", "… and {count} more rows.", hidden).format(
                count=hidden
            )
        )
    return (
        f'{TABLE_STYLE}<div class="selfcare-scroll" '
        f'style="max-height:{max_height}px;overflow:auto">{styler.to_html()}</div>{more}'
    )


def download_link(content: bytes, filename: str, label: str, mime: str = "text/csv") -> str:
    """An HTML link that downloads ``content`` from the page itself (no file server needed)."""
    data = base64.b64encode(content).decode("ascii")
    return (
        f'<a class="selfcare-download" download="{html.escape(filename)}" '
        f'style="color:#0b57d0;text-decoration:underline" '
        f'href="data:{mime};base64,{data}">⬇ {html.escape(label)}</a>'
    )


def uploaded_files(upload: widgets.FileUpload) -> list[tuple[str, bytes]]:
    """``(name, content)`` of each file in an ipywidgets 8 FileUpload value."""
    files = []
    for entry in upload.value or ():
        content = entry["content"]
        data = content.tobytes() if isinstance(content, memoryview) else bytes(content)
        files.append((str(entry["name"]), data))
    return files


def page_label(page: int, pages: int) -> str:
    """ "Page 2 / 35"."""
    return _("Page {page} / {pages}").format(page=page, pages=max(pages, 1))


def section(title: str) -> widgets.HTML:
    return widgets.HTML(f"<h3 style='margin:8px 0 4px'>{html.escape(title)}</h3>")


class OrganisationPicker(widgets.VBox):
    """The seed's "Personnaliser un client": your own level, or a client found by a paged
    search (accent-insensitive, "Page 1 / 33"); ``on_change(ref)`` is called on each choice.
    """

    PAGE_SIZE = 20

    def __init__(
        self,
        services: Services,
        feedback: Feedback,
        on_change: Callable[[str | None], None],
        *,
        own_ref: str | None = None,
        own_label: str | None = None,
    ) -> None:
        from selfcare_ops import directory

        self._directory = directory
        self.services = services
        self.on_change = on_change
        self.own_ref = own_ref
        self.own_label = own_label or (
            _("My level ({ref})").format(ref=own_ref) if own_ref else None
        )
        self.page = 1
        self.pages = 1
        self.search = widgets.Text(
            placeholder=_("Search a client"), description=_("Client"), continuous_update=False
        )
        self.prev_button = widgets.Button(description="◀", layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", layout=widgets.Layout(width="40px"))
        self.page_label = widgets.Label("")
        self.select = widgets.Dropdown(
            options=[], description=_("Choice"), layout=widgets.Layout(width="60%")
        )
        self.current = widgets.HTML("")
        safe = guard(feedback)
        self.search.observe(safe(lambda _c: self.show(1)), names="value")
        self.prev_button.on_click(safe(lambda _b: self.show(self.page - 1)))
        self.next_button.on_click(safe(lambda _b: self.show(self.page + 1)))
        self.select.observe(safe(self._on_select), names="value")
        super().__init__(
            [
                widgets.HBox([self.search, self.prev_button, self.page_label, self.next_button]),
                self.select,
                self.current,
            ]
        )
        safe(self.show)(1)

    @property
    def value(self) -> str | None:
        return self.select.value or None

    def show(self, page: int) -> None:
        page = max(1, min(page, self.pages if self.pages else 1))
        with self.services.read() as session:
            result = self._directory.search_clients(
                session,
                self.services.actor,
                self.search.value.strip() or None,
                page=page,
                page_size=self.PAGE_SIZE,
            )
        self.page, self.pages = result.page, max(result.pages, 1)
        found = ngettext("{count} result", "{count} results", result.total)
        self.page_label.value = f"{page_label(result.page, result.pages)} · " + found.format(
            count=result.total
        )
        self.prev_button.disabled = result.page <= 1
        self.next_button.disabled = result.page >= result.pages
        options: list[tuple[str, str | None]] = [(_("— choose —"), None)]
        if self.own_ref and self.own_label:
            options.append((self.own_label, self.own_ref))
        options += [(f"{r.name} ({r.ref})", r.ref) for r in result.rows.itertuples()]
        current = self.select.value
        if current and current not in {v for _, v in options}:
            options.append((current, current))
        self.select.options = options
        self.select.value = current

    def choose(self, ref: str) -> None:
        """Pick ``ref`` even when it is not on the page shown (the directory's client)."""
        if ref not in {v for _, v in self.select.options}:
            self.search.value = ref  # searches by reference: the client comes with its name
        if ref not in {v for _, v in self.select.options}:
            self.select.options = [*self.select.options, (ref, ref)]
        self.select.value = ref

    def _on_select(self, change: dict) -> None:
        ref = change["new"]
        self.current.value = ""
        self.on_change(ref)  # may raise: then nothing claims to be shown
        label = self.select.label or ref
        looking = _("You are looking at {name}.").format(name=f"<b>{html.escape(label)}</b>")
        self.current.value = f"<p>{looking}</p>" if ref else ""
