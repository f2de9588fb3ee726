"""Adoption report: funnels, time to accept, weekly activations, failed mails, exports, charts."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from selfcare_ops import charts, reports
from selfcare_ops.store.models import Invitation, Organisation, OutboundMessage, User
from selfcare_ops.support import exports


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def history(session_factory, tree):
    """On top of the tree: alice invited 3 days before her activation (no invitation row),
    Véronique invited through an invitation accepted 2 days later, one failed mail."""
    with session_factory.begin() as session:
        users = {u.first_name: u for u in session.scalars(select(User))}
        ca = session.scalar(select(Organisation).where(Organisation.ref == "CA"))
        alice = users["Alice"]
        alice.invited_at, alice.activated_at = T0 - timedelta(days=3), T0
        marc = users["Marc"]
        marc.invited_at, marc.activated_at = T0, T0 + timedelta(days=8)
        vero = users["Véronique"]
        vero.status, vero.invited_at = "active", T0 + timedelta(days=7)
        vero.activated_at = T0 + timedelta(days=9)
        message = OutboundMessage(
            message_key="m1",
            kind="invitation",
            recipient="=cmd|' /C calc'!A0@evil.example",
            subject="Invitation",
            body_text="...",
            status="failed",
            attempts=3,
            last_error="550 5.1.1 mailbox unknown",
        )
        session.add(message)
        session.flush()
        session.add_all(
            [
                Invitation(
                    user_id=vero.id,
                    organisation_id=ca.id,
                    email=vero.email,
                    token_hash="a" * 64,
                    status="accepted",
                    created_at=T0 + timedelta(days=7),
                    expires_at=T0 + timedelta(days=14),
                    accepted_at=T0 + timedelta(days=9),
                    created_by="system",
                ),
                Invitation(
                    user_id=users["Jean-Pierre"].id,
                    organisation_id=ca.id,
                    email="jp.bubu@virginie.example",
                    token_hash="b" * 64,
                    status="pending",
                    created_at=T0,
                    expires_at=T0 + timedelta(days=7),
                    created_by="system",
                    message_id=message.id,
                ),
            ]
        )
    return tree


def _by(frame: pd.DataFrame, column: str) -> dict:
    return {row[column]: row for row in frame.to_dict("records")}


def test_funnels_by_partner_client_and_sub_account(session_factory, history) -> None:
    with session_factory() as session:
        report = reports.adoption_report(session, history.system)
    ca = _by(report.funnel_clients, "client_ref")["CA"]
    # Alice, Marc, Véronique active; Robert deactivated; Jean-Pierre and Cédric not invited.
    assert (ca["not_invited"], ca["invited"], ca["active"], ca["deactivated"]) == (2, 0, 3, 1)
    assert ca["users"] == 6 and ca["reached_active"] == 4 and ca["reached_invited"] == 4
    assert ca["active_rate"] == pytest.approx(4 / 6, abs=1e-4)
    assert ca["partner_ref"] == "PA"
    assert _by(report.funnel_clients, "client_ref")["CB"]["users"] == 0

    partners = _by(report.funnel_partners, "partner_ref")
    assert partners["PA"]["users"] == 6 and partners["PA"]["clients"] == 2  # CA and CA1 (PA1)
    assert partners["PA1"]["users"] == 0 and partners["PA1"]["depth"] == 2
    assert partners["PB"]["clients"] == 1 and partners["PB"]["active_rate"] == 0.0

    subs = {
        (r["client_ref"], r["sub_account"]): r
        for r in report.funnel_sub_accounts.to_dict("records")
    }
    assert subs[("CA", "Siège")]["users"] == 3  # Marc, Jean-Pierre, Cédric
    assert subs[("CA", "Siège")]["active"] == 1
    assert subs[("CA", "Agence")]["active"] == 1
    assert subs[("CA", "(none)")]["users"] == 2  # Alice (administrator), Robert
    assert report.totals["users"] == 6 and report.totals["failed_mails"] == 1


def test_time_to_accept_uses_the_invitation_then_the_account_dates(
    session_factory, history
) -> None:
    with session_factory() as session:
        report = reports.adoption_report(session, history.system)
    times = _by(report.time_to_accept, "login")
    by_name = {login.split("@")[0]: row for login, row in times.items()}
    assert by_name["vduduche"]["source"] == "invitation" and by_name["vduduche"]["days"] == 2.0
    assert by_name["adupont"]["source"] == "account" and by_name["adupont"]["days"] == 3.0
    assert by_name["mlefevre"]["days"] == 8.0
    assert len(times) == 3  # Robert has no invitation date: unknown, not zero
    summary = report.time_to_accept_by_partner.set_index("partner_ref")
    assert summary.loc["PA", "accepted"] == 3 and summary.loc["PA", "median_days"] == 3.0
    by_client = report.time_to_accept_by_client.set_index("client_ref")
    assert by_client.loc["CA", "max_days"] == 8.0 and by_client.loc["CA", "mean_days"] == 4.33


def test_activations_by_week_are_continuous_and_cumulative(session_factory, history) -> None:
    with session_factory() as session:
        weeks = reports.adoption_report(session, history.system).activations_by_week
    assert list(weeks.columns) == ["week", "invited", "activated", "activated_cumulative"]
    # Activations on T0 (Mon), T0+8 and T0+9 days; the tree's own activations happen "now".
    march = weeks[weeks["week"].astype(str).isin(["2026-03-02", "2026-03-09"])]
    assert list(march["activated"]) == [1, 2]
    assert list(march["invited"]) == [1, 1]  # Marc on T0, Véronique on T0+7
    gaps = pd.to_datetime(weeks["week"]).diff().dropna()
    assert (gaps == pd.Timedelta(days=7)).all()
    assert weeks["activated_cumulative"].iloc[-1] == weeks["activated"].sum()
    assert weeks["invited"].sum() == 3  # Alice, Marc, Véronique (Robert had no date)


def test_failed_mails_and_scope(session_factory, history) -> None:
    with session_factory() as session:
        mails = reports.failed_mails(session, history.system)
        assert list(mails["organisation_ref"]) == ["CA"]
        assert mails.loc[0, "last_error"] == "550 5.1.1 mailbox unknown"
        assert mails.loc[0, "recipient_domain"] == "evil.example"
        seen_by_b = reports.adoption_report(session, history.partner_b_admin)
        assert seen_by_b.failed_mails.empty
        assert set(seen_by_b.funnel_clients["client_ref"]) == {"CB"}
        assert set(seen_by_b.funnel_partners["partner_ref"]) == {"PB"}
        manager = reports.adoption_report(session, history.manager_siege)
    assert set(manager.funnel_sub_accounts["sub_account"]) == {"Siège"}
    assert set(manager.time_to_accept["login"].str.split("@").str[0]) == {"mlefevre"}


def test_exports_neutralise_formulas(session_factory, history, tmp_path: Path) -> None:
    with session_factory() as session:
        report = reports.adoption_report(session, history.system)
    paths = reports.export_report(report, tmp_path)
    assert set(paths) == set(report.tables())
    raw = paths["failed_mails"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    with paths["failed_mails"].open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert rows[0]["recipient"].startswith("'=cmd")
    with paths["funnel_clients"].open(encoding="utf-8-sig", newline="") as handle:
        clients = {r["client_ref"]: r for r in csv.DictReader(handle, delimiter=";")}
    assert clients["CA"]["client_name"] == "Virginie Télécom" and clients["CA"]["users"] == "6"


@given(st.text())
def test_neutralised_cells_never_start_a_formula(value: str) -> None:
    safe = exports.neutralise(value)
    assert not str(safe).startswith(exports.FORMULA_STARTS)
    assert str(safe).endswith(value)


def test_charts_are_png_files_even_for_an_empty_database(
    session_factory, engine, tmp_path: Path, history
) -> None:
    with session_factory() as session:
        report = reports.adoption_report(session, history.system)
        empty = reports.adoption_report(session, history.partner_b_admin)
    assert empty.time_to_accept_by_client.empty
    assert empty.time_to_accept_by_client["median_days"].dtype == "float64"  # still sortable
    for name, source in (("full", report), ("empty", empty)):
        written = charts.save_charts(source, tmp_path / name)
        assert set(written) == {"funnel", "activations", "time_to_accept", "failed_mails"}
        for path in written.values():
            with Image.open(path) as image:
                assert image.format == "PNG" and image.width >= 600
