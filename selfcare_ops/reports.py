"""Adoption report: who was invited, who is active, how fast, and which mails failed.

Pure queries and pandas (charts are in :mod:`selfcare_ops.charts`). Every table is limited to
what the actor may see: a partner administrator their subtree, a client administrator their
client, a manager their sub-account only (its users, their invitations and failed mails).
The funnel is *not invited → invited → active*: a deactivated account
was active once and counts as having reached activation. Time to accept is taken from the
accepted invitation (``created_at`` → ``accepted_at``) and, for accounts activated without an
invitation row (imported history), from ``users.invited_at`` → ``activated_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from selfcare_ops.access import Actor, organisation_scope, user_scope
from selfcare_ops.i18n import _
from selfcare_ops.store.models import (
    ACCOUNT_STATUSES,
    ClientUserCount,
    Invitation,
    Organisation,
    OutboundMessage,
    SubAccount,
    User,
    utcnow,
)
from selfcare_ops.support.exports import write_csv

STATUS_COLUMNS = list(ACCOUNT_STATUSES)
FUNNEL_COLUMNS = [
    *STATUS_COLUMNS,
    "users",
    "reached_invited",
    "reached_active",
    "invited_rate",
    "active_rate",
]


@dataclass(frozen=True)
class AdoptionReport:
    """Every table of the report; :meth:`tables` names them for export."""

    generated_at: datetime
    funnel_partners: pd.DataFrame
    funnel_clients: pd.DataFrame
    funnel_sub_accounts: pd.DataFrame
    time_to_accept: pd.DataFrame
    time_to_accept_by_partner: pd.DataFrame
    time_to_accept_by_client: pd.DataFrame
    activations_by_week: pd.DataFrame
    failed_mails: pd.DataFrame
    totals: dict[str, float] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "funnel_partners": self.funnel_partners,
            "funnel_clients": self.funnel_clients,
            "funnel_sub_accounts": self.funnel_sub_accounts,
            "time_to_accept": self.time_to_accept,
            "time_to_accept_by_partner": self.time_to_accept_by_partner,
            "time_to_accept_by_client": self.time_to_accept_by_client,
            "activations_by_week": self.activations_by_week,
            "failed_mails": self.failed_mails,
        }


def _add_funnel(frame: pd.DataFrame) -> pd.DataFrame:
    for status in STATUS_COLUMNS:
        if status not in frame:
            frame[status] = 0
        frame[status] = frame[status].fillna(0).astype("int64")
    frame["users"] = frame[STATUS_COLUMNS].sum(axis=1)
    frame["reached_active"] = frame["active"] + frame["deactivated"]
    frame["reached_invited"] = frame["invited"] + frame["reached_active"]
    users = frame["users"].where(frame["users"] > 0)
    frame["invited_rate"] = (frame["reached_invited"] / users).round(4).fillna(0.0)
    frame["active_rate"] = (frame["reached_active"] / users).round(4).fillna(0.0)
    return frame


def _clients(session: Session, actor: Actor) -> pd.DataFrame:
    partner = aliased(Organisation)
    rows = session.execute(
        select(
            Organisation.id,
            Organisation.ref,
            Organisation.name,
            Organisation.path,
            partner.ref,
            partner.name,
        )
        .join(partner, partner.id == Organisation.parent_id)
        .where(Organisation.kind == "client", organisation_scope(actor))
        .order_by(Organisation.ref)
    ).all()
    return pd.DataFrame(
        rows,
        columns=["client_id", "client_ref", "client_name", "path", "partner_ref", "partner_name"],
    )


def funnel_by_client(session: Session, actor: Actor) -> pd.DataFrame:
    """One row per client in scope: users by status (from the trigger-kept counts) and rates;
    for a manager, the users of their sub-account only."""
    clients = _clients(session, actor)
    if actor.kind == "manager":
        query = (
            select(User.client_id, User.status, func.count(User.id))
            .where(User.sub_account_id == actor.sub_account_id)
            .group_by(User.client_id, User.status)
        )
    else:
        query = select(ClientUserCount.client_id, ClientUserCount.status, ClientUserCount.users)
    counts = pd.DataFrame(session.execute(query).all(), columns=["client_id", "status", "users"])
    wide = (
        counts.pivot_table(index="client_id", columns="status", values="users", aggfunc="sum")
        if not counts.empty
        else pd.DataFrame(index=pd.Index([], name="client_id"))
    )
    frame = clients.merge(wide, left_on="client_id", right_index=True, how="left")
    frame = _add_funnel(frame)
    return frame[
        ["client_ref", "client_name", "partner_ref", "partner_name", "path", *FUNNEL_COLUMNS]
    ].reset_index(drop=True)


def funnel_by_partner(session: Session, actor: Actor, clients: pd.DataFrame) -> pd.DataFrame:
    """One row per partner in scope, counting every client of its subtree (nested included)."""
    partners = pd.DataFrame(
        session.execute(
            select(Organisation.ref, Organisation.name, Organisation.path)
            .where(Organisation.kind == "partner", organisation_scope(actor))
            .order_by(Organisation.path)
        ).all(),
        columns=["partner_ref", "partner_name", "path"],
    )
    records = []
    for partner in partners.itertuples(index=False):
        inside = clients[clients["path"].str.startswith(partner.path)]
        record = {
            "partner_ref": partner.partner_ref,
            "partner_name": partner.partner_name,
            "depth": partner.path.count("/") - 2,
            "clients": len(inside),
        }
        record.update({s: int(inside[s].sum()) for s in STATUS_COLUMNS})
        records.append(record)
    frame = pd.DataFrame(
        records, columns=["partner_ref", "partner_name", "depth", "clients", *STATUS_COLUMNS]
    )
    frame = _add_funnel(frame).sort_values("partner_ref").reset_index(drop=True)
    return frame[["partner_ref", "partner_name", "depth", "clients", *FUNNEL_COLUMNS]]


def funnel_by_sub_account(session: Session, actor: Actor) -> pd.DataFrame:
    """One row per client and sub-account (``(none)`` for users outside any sub-account)."""
    rows = session.execute(
        select(
            Organisation.ref,
            Organisation.name,
            SubAccount.name,
            User.status,
            func.count(User.id),
        )
        .select_from(User)
        .join(Organisation, Organisation.id == User.client_id)
        .outerjoin(SubAccount, SubAccount.id == User.sub_account_id)
        .where(user_scope(actor))
        .group_by(Organisation.ref, Organisation.name, SubAccount.name, User.status)
    ).all()
    long = pd.DataFrame(
        rows, columns=["client_ref", "client_name", "sub_account", "status", "users"]
    )
    long["sub_account"] = long["sub_account"].fillna("(none)")
    if long.empty:
        wide = pd.DataFrame(columns=["client_ref", "client_name", "sub_account"])
    else:
        wide = long.pivot_table(
            index=["client_ref", "client_name", "sub_account"],
            columns="status",
            values="users",
            aggfunc="sum",
        ).reset_index()
        wide.columns.name = None
    frame = _add_funnel(wide)
    return frame.sort_values(["client_ref", "sub_account"]).reset_index(drop=True)[
        ["client_ref", "client_name", "sub_account", *FUNNEL_COLUMNS]
    ]


def _days(start: pd.Series, end: pd.Series) -> pd.Series:
    return ((end - start).dt.total_seconds() / 86400).round(2)


def time_to_accept(session: Session, actor: Actor, clients: pd.DataFrame) -> pd.DataFrame:
    """One row per activated user with a known invitation date: how many days they took."""
    accepted = pd.DataFrame(
        session.execute(
            select(Invitation.user_id, Invitation.created_at, Invitation.accepted_at)
            .join(User, User.id == Invitation.user_id)
            .join(Organisation, Organisation.id == User.client_id)
            .where(Invitation.accepted_at.is_not(None), user_scope(actor))
        ).all(),
        columns=["user_id", "invited_at", "accepted_at"],
    )
    accepted["source"] = "invitation"
    history = pd.DataFrame(
        session.execute(
            select(User.id, User.invited_at, User.activated_at)
            .join(Organisation, Organisation.id == User.client_id)
            .where(
                User.invited_at.is_not(None),
                User.activated_at.is_not(None),
                User.activated_at >= User.invited_at,
                user_scope(actor),
            )
        ).all(),
        columns=["user_id", "invited_at", "accepted_at"],
    )
    history["source"] = "account"
    history = history[~history["user_id"].isin(accepted["user_id"])]
    frames = [f for f in (accepted, history) if not f.empty]
    both = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["user_id", "invited_at", "accepted_at", "source"])
    )
    # Last accepted invitation per user (a re-invited user counts once, with the latest).
    both = both.sort_values(["user_id", "accepted_at"]).drop_duplicates("user_id", keep="last")
    users = pd.DataFrame(
        session.execute(
            select(User.id, User.login, Organisation.ref)
            .join(Organisation, Organisation.id == User.client_id)
            .where(User.id.in_(both["user_id"].tolist() or [-1]), user_scope(actor))
        ).all(),
        columns=["user_id", "login", "client_ref"],
    )
    frame = both.merge(users, on="user_id").merge(
        clients[["client_ref", "partner_ref"]], on="client_ref", how="left"
    )
    for column in ("invited_at", "accepted_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["days"] = _days(frame["invited_at"], frame["accepted_at"])
    return (
        frame[["login", "client_ref", "partner_ref", "source", "invited_at", "accepted_at", "days"]]
        .sort_values(["client_ref", "login"])
        .reset_index(drop=True)
    )


def summarise_time_to_accept(times: pd.DataFrame, by: str = "partner_ref") -> pd.DataFrame:
    """Per ``by`` (direct partner or client): how many accepted, median, mean, p90 and max days."""
    columns = [by, "accepted", "median_days", "mean_days", "p90_days", "max_days"]
    if times.empty:
        empty = {c: pd.Series(dtype="float64") for c in columns[2:]}
        return pd.DataFrame(
            {by: pd.Series(dtype=object), "accepted": pd.Series(dtype="int64"), **empty}
        )
    grouped = times.groupby(by)["days"]
    frame = pd.DataFrame(
        {
            "accepted": grouped.size(),
            "median_days": grouped.median(),
            "mean_days": grouped.mean(),
            "p90_days": grouped.quantile(0.9),
            "max_days": grouped.max(),
        }
    ).round(2)
    return frame.reset_index().sort_values(by).reset_index(drop=True)[columns]


def activations_by_week(session: Session, actor: Actor) -> pd.DataFrame:
    """Per week (starting Monday): invitations sent, activations, and active accounts so far."""
    rows = session.execute(
        select(User.invited_at, User.activated_at)
        .join(Organisation, Organisation.id == User.client_id)
        .where(User.invited_at.is_not(None) | User.activated_at.is_not(None), user_scope(actor))
    ).all()
    frame = pd.DataFrame(rows, columns=["invited_at", "activated_at"])
    columns = ["week", "invited", "activated", "activated_cumulative"]
    if frame.empty:
        return pd.DataFrame(columns=columns)

    def weeks(values: pd.Series) -> pd.Series:
        moments = pd.to_datetime(values, utc=True).dropna().dt.tz_localize(None)
        return moments.dt.to_period("W-SUN").dt.start_time.dt.date

    invited = weeks(frame["invited_at"]).value_counts()
    activated = weeks(frame["activated_at"]).value_counts()
    table = pd.DataFrame({"invited": invited, "activated": activated}).fillna(0).astype("int64")
    table = table.sort_index()
    table.index = pd.to_datetime(table.index)
    table = table.asfreq("7D", fill_value=0)  # weeks with nothing still appear
    table["activated_cumulative"] = table["activated"].cumsum()
    table.index = table.index.date
    return table.rename_axis("week").reset_index()[columns]


def failed_mails(session: Session, actor: Actor) -> pd.DataFrame:
    """Mails the outbox gave up on (bounced or refused), with the client they concern."""
    query = (
        select(
            OutboundMessage.id,
            OutboundMessage.kind,
            OutboundMessage.recipient,
            Organisation.ref,
            Organisation.name,
            OutboundMessage.attempts,
            OutboundMessage.last_error,
            OutboundMessage.created_at,
        )
        .outerjoin(Invitation, Invitation.message_id == OutboundMessage.id)
        .outerjoin(Organisation, Organisation.id == Invitation.organisation_id)
        .where(OutboundMessage.status == "failed")
        .order_by(OutboundMessage.id)
    )
    if actor.kind != "system":
        query = query.where(Organisation.id.is_not(None), organisation_scope(actor))
    if actor.kind == "manager":
        query = query.where(
            Invitation.user_id.in_(
                select(User.id).where(User.sub_account_id == actor.sub_account_id)
            )
        )
    frame = pd.DataFrame(
        session.execute(query).all(),
        columns=[
            "message_id",
            "kind",
            "recipient",
            "organisation_ref",
            "organisation_name",
            "attempts",
            "last_error",
            "created_at",
        ],
    )
    frame["recipient_domain"] = [str(r).rpartition("@")[2].lower() for r in frame["recipient"]]
    return frame


def adoption_report(session: Session, actor: Actor) -> AdoptionReport:
    """Every table of the adoption report for what ``actor`` may see (read-only)."""
    clients = funnel_by_client(session, actor)
    times = time_to_accept(session, actor, clients)
    partners = funnel_by_partner(session, actor, clients)
    mails = failed_mails(session, actor)
    users = int(clients["users"].sum())
    totals = {
        "clients": float(len(clients)),
        "users": float(users),
        "reached_invited": float(clients["reached_invited"].sum()),
        "reached_active": float(clients["reached_active"].sum()),
        "active_rate": round(float(clients["reached_active"].sum()) / users, 4) if users else 0.0,
        "median_days_to_accept": float(times["days"].median()) if not times.empty else 0.0,
        "failed_mails": float(len(mails)),
    }
    return AdoptionReport(
        generated_at=utcnow(),
        funnel_partners=partners,
        funnel_clients=clients.drop(columns=["path"]),
        funnel_sub_accounts=funnel_by_sub_account(session, actor),
        time_to_accept=times,
        time_to_accept_by_partner=summarise_time_to_accept(times, "partner_ref"),
        time_to_accept_by_client=summarise_time_to_accept(times, "client_ref"),
        activations_by_week=activations_by_week(session, actor),
        failed_mails=mails,
        totals=totals,
    )


def column_label(name: str) -> str:
    """A report column's header as people read it, in the current language (the frames and
    their CSV exports keep the stable names programs use)."""
    labels = {
        "client_id": _("client id"),
        "client_ref": _("client"),
        "client_name": _("client name"),
        "path": _("path"),
        "partner_ref": _("partner"),
        "partner_name": _("partner name"),
        "depth": _("depth"),
        "clients": _("clients"),
        "sub_account": _("sub-account"),
        "status": _("status"),
        "not_invited": _("not invited"),
        "invited": _("invited"),
        "active": _("active"),
        "deactivated": _("deactivated"),
        "users": _("users"),
        "reached_invited": _("reached invited"),
        "reached_active": _("reached active"),
        "invited_rate": _("invited rate"),
        "active_rate": _("active rate"),
        "user_id": _("user id"),
        "login": _("login"),
        "source": _("source"),
        "invited_at": _("invited at"),
        "accepted_at": _("accepted at"),
        "activated_at": _("activated at"),
        "days": _("days"),
        "accepted": _("accepted"),
        "median_days": _("median days"),
        "mean_days": _("mean days"),
        "p90_days": _("90th percentile days"),
        "max_days": _("max days"),
        "week": _("week"),
        "activated": _("activated"),
        "activated_cumulative": _("activated so far"),
        "message_id": _("message id"),
        "kind": _("kind"),
        "recipient": _("recipient"),
        "recipient_domain": _("recipient domain"),
        "organisation_ref": _("organisation"),
        "organisation_name": _("organisation name"),
        "attempts": _("attempts"),
        "last_error": _("last error"),
        "created_at": _("created at"),
        "median_days_to_accept": _("median days to accept"),
        "failed_mails": _("failed mails"),
    }
    return labels.get(name, name)


def for_people(table: pd.DataFrame | dict[str, float]) -> pd.DataFrame | dict[str, float]:
    """A table (or the totals) with its headers in the current language, to show in the
    report's HTML; the data is not touched."""
    if isinstance(table, dict):
        return {column_label(name): value for name, value in table.items()}
    return table.rename(columns={name: column_label(str(name)) for name in table.columns})


def export_report(report: AdoptionReport, folder: Path) -> dict[str, Path]:
    """Every table as ``adoption_<name>.csv`` in ``folder``; returns the paths by name."""
    return {
        name: write_csv(frame, Path(folder) / f"adoption_{name}.csv")
        for name, frame in report.tables().items()
    }
