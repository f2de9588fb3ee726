"""The adoption report's charts as PNG files (matplotlib's Agg canvas, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly rather than ``pyplot``, so
nothing here changes the backend of a notebook that imports it and nothing is kept in memory
between charts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from selfcare_ops.i18n import _, current_language
from selfcare_ops.reports import AdoptionReport

STATUS_COLOURS = {
    "not_invited": "#c7c7c7",
    "invited": "#f2a541",
    "active": "#2a9d8f",
    "deactivated": "#7d7d7d",
}


def status_label(status: str) -> str:
    """An account status as the legend names it, in the current language."""
    labels = {
        "not_invited": _("not invited"),
        "invited": _("invited"),
        "active": _("active"),
        "deactivated": _("deactivated"),
    }
    return labels.get(status, status)


def _number(value: float) -> str:
    """One decimal, with the decimal mark of the current language."""
    shown = f"{value:.1f}"
    return shown.replace(".", ",") if current_language() == "fr" else shown


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    return path


def _empty(figure: Figure, title: str, message: str) -> None:
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555")
    axes.set_axis_off()


def funnel_chart(partners: pd.DataFrame, path: Path, *, top: int = 12) -> Path:
    """Stacked horizontal bars: users by account status for the largest partners."""
    figure = Figure(figsize=(9, 0.45 * max(min(top, len(partners)), 4) + 1.5), layout="tight")
    title = _("Invitation funnel by partner (users by account status)")
    if partners.empty or partners["users"].sum() == 0:
        _empty(figure, title, _("No users yet."))
        return _save(figure, path)
    shown = partners.nlargest(top, "users").iloc[::-1]
    labels = [f"{r.partner_ref} {r.partner_name}"[:40] for r in shown.itertuples()]
    axes = figure.add_subplot()
    left = pd.Series(0, index=shown.index)
    for status, colour in STATUS_COLOURS.items():
        axes.barh(labels, shown[status], left=left, color=colour, label=status_label(status))
        left = left + shown[status]
    for y, row in enumerate(shown.itertuples()):
        rate = _("{rate}% active").format(rate=round(row.active_rate * 100))
        axes.text(row.users, y, f" {rate}", va="center", fontsize=8)
    axes.set_xlabel(_("users"))
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_xlim(0, shown["users"].max() * 1.18)
    return _save(figure, path)


def activations_chart(weeks: pd.DataFrame, path: Path) -> Path:
    """Weekly invitations and activations (bars) and active accounts so far (line)."""
    figure = Figure(figsize=(10, 4.5), layout="tight")
    title = _("Invitations and activations per week")
    if weeks.empty:
        _empty(figure, title, _("No invitation or activation yet."))
        return _save(figure, path)
    axes = figure.add_subplot()
    x = pd.to_datetime(weeks["week"])
    axes.bar(
        x,
        weeks["invited"],
        width=3,
        align="edge",
        color=STATUS_COLOURS["invited"],
        label=_("invited"),
    )
    axes.bar(
        x + pd.Timedelta(days=3),
        weeks["activated"],
        width=3,
        align="edge",
        color=STATUS_COLOURS["active"],
        label=_("activated"),
    )
    axes.set_ylabel(_("per week"))
    axes.set_title(title)
    total = axes.twinx()
    total.plot(x, weeks["activated_cumulative"], color="#264653", label=_("active so far"))
    total.set_ylabel(_("accounts activated so far"))
    handles = axes.get_legend_handles_labels()
    more = total.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    return _save(figure, path)


def time_to_accept_chart(times: pd.DataFrame, path: Path) -> Path:
    """Histogram of the days between invitation and activation, with the median marked."""
    figure = Figure(figsize=(8, 4), layout="tight")
    title = _("Days from invitation to activation")
    if times.empty:
        _empty(figure, title, _("Nobody has accepted an invitation yet."))
        return _save(figure, path)
    axes = figure.add_subplot()
    days = times["days"].astype(float)
    axes.hist(days, bins=min(30, max(5, int(days.max()) + 1)), color=STATUS_COLOURS["active"])
    median = float(days.median())
    axes.axvline(
        median,
        color="#264653",
        linestyle="--",
        label=_("median {days} days").format(days=_number(median)),
    )
    axes.set_xlabel(_("days"))
    axes.set_ylabel(_("users"))
    axes.set_title(title)
    axes.legend(fontsize=8)
    return _save(figure, path)


def failed_mails_chart(mails: pd.DataFrame, path: Path, *, top: int = 10) -> Path:
    """Failed (bounced or refused) mails by recipient domain."""
    figure = Figure(figsize=(8, 4), layout="tight")
    title = _("Failed mails by recipient domain")
    if mails.empty:
        _empty(figure, title, _("No failed mail."))
        return _save(figure, path)
    counts = mails["recipient_domain"].value_counts().head(top).iloc[::-1]
    axes = figure.add_subplot()
    axes.barh(counts.index.astype(str), counts.values, color="#e76f51")
    axes.set_xlabel(_("failed mails"))
    axes.set_title(title)
    return _save(figure, path)


def save_charts(report: AdoptionReport, folder: Path, *, top: int = 12) -> dict[str, Path]:
    """Every chart of the report as ``adoption_<name>.png`` in ``folder``."""
    folder = Path(folder)
    return {
        "funnel": funnel_chart(report.funnel_partners, folder / "adoption_funnel.png", top=top),
        "activations": activations_chart(
            report.activations_by_week, folder / "adoption_activations.png"
        ),
        "time_to_accept": time_to_accept_chart(
            report.time_to_accept, folder / "adoption_time_to_accept.png"
        ),
        "failed_mails": failed_mails_chart(
            report.failed_mails, folder / "adoption_failed_mails.png"
        ),
    }
