"""Deactivation, reactivation and supervision of accounts (seed 000), with their audit trail."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest
from sqlalchemy import select

from selfcare_ops.accounts import lifecycle, supervision
from selfcare_ops.config import get_settings
from selfcare_ops.errors import (
    AccessDeniedError,
    ConflictError,
    InvitationError,
    TokenError,
    ValidationError,
)
from selfcare_ops.invitations import acceptance
from selfcare_ops.invitations import service as invitations
from selfcare_ops.store.models import AuditEvent, Invitation, User, utcnow
from selfcare_ops.support import tokens


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English sentences (French is the default language)."""
    monkeypatch.setenv("SELFCARE_OPS_LANG", "en")
    monkeypatch.setattr("selfcare_ops.i18n._chosen", None)  # whatever an earlier test chose


ALICE = "adupont@virginietelecom.sewan.eu"
MARC = "mlefevre@virginietelecom.sewan.eu"
JP = "jbubu@virginietelecom.sewan.eu"
VERO = "vduduche@virginietelecom.sewan.eu"
ROBERT = "rconvenant@virginietelecom.sewan.eu"


def _user(session, login):
    return session.scalar(select(User).where(User.login == login))


def test_deactivate_keeps_the_user_and_reactivate_brings_them_back(session_factory, tree):
    with session_factory.begin() as session:
        result = lifecycle.deactivate(session, tree.client_a_admin, MARC)
        assert (result.previous_status, result.status) == ("active", "deactivated")
    with session_factory() as session:
        marc = _user(session, MARC)
        assert marc.status == "deactivated" and marc.deactivated_at is not None
        assert marc.activated_at is not None  # history kept
    with session_factory.begin() as session:
        assert lifecycle.reactivate(session, tree.client_a_admin, MARC).status == "active"
    with session_factory() as session:
        assert _user(session, MARC).status == "active"
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_label == MARC)
        ).all()
        assert {"user.deactivate", "user.reactivate"} <= set(actions)


def test_deactivating_an_invited_user_revokes_the_link(session_factory, tree):
    with session_factory.begin() as session:
        sent = invitations.invite_user(session, tree.system, JP)
    with session_factory.begin() as session:
        assert lifecycle.deactivate(session, tree.system, JP).invitations_revoked == 1
    with session_factory() as session:
        assert session.get(Invitation, sent.invitation_id).status == "revoked"
        with pytest.raises(TokenError):
            acceptance.inspect_token(session, sent.token)
    with session_factory.begin() as session:
        # never activated: back to a draft that must be invited again
        assert lifecycle.reactivate(session, tree.system, JP).status == "not_invited"


def test_lifecycle_refusals(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(ConflictError, match="already deactivated"):
            lifecycle.deactivate(session, tree.system, ROBERT)
        with pytest.raises(ConflictError, match="is not deactivated"):
            lifecycle.reactivate(session, tree.system, ALICE)
        with pytest.raises(ConflictError, match="your own account"):
            lifecycle.deactivate(session, tree.client_a_admin, ALICE)
        with pytest.raises(AccessDeniedError):
            lifecycle.deactivate(session, tree.partner_b_admin, ALICE)
        with pytest.raises(AccessDeniedError):
            lifecycle.deactivate(session, tree.manager_siege, VERO)


def test_supervision_shows_a_banner_until_it_expires(session_factory, tree):
    start = utcnow()
    with session_factory.begin() as session:
        result = supervision.supervise(
            session, tree.partner_a_admin, MARC, reason="Montrer les factures", now=start
        )
    assert result.expires_at - start.replace(microsecond=0) == timedelta(minutes=30)
    with session_factory() as session:
        banner = supervision.supervision_banner(session, MARC, now=start + timedelta(minutes=1))
        assert banner is not None and banner.actor_label == "admin@pa.example"
        assert "Montrer les factures" in banner.text
        opened = supervision.open_supervision(
            session, result.link, now=start + timedelta(minutes=1)
        )
        assert opened.id == result.session_id
        later = start + timedelta(minutes=31)
        assert supervision.supervision_banner(session, _user(session, MARC), now=later) is None
        with pytest.raises(TokenError, match="expired") as caught:
            supervision.open_supervision(session, result.link, now=later)
        assert caught.value.reason == "expired"
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.supervise"))
        assert event.after["reason"] == "Montrer les factures"


def test_supervision_links_cannot_be_forged(session_factory, tree):
    with session_factory.begin() as session:
        result = supervision.supervise(session, tree.system, ALICE, reason="Aide à la commande")
    base, signature = result.link.rsplit(".", 1)
    session_id, expiry, token = base.rsplit("/", 1)[1].split(".")
    forged = [
        f"{base}.{'A' * len(signature)}",  # wrong signature
        result.link.replace(f"/{session_id}.{expiry}.", f"/{session_id}.{int(expiry) + 3600}."),
        "https://x/supervision/garbage",
    ]
    with session_factory() as session:
        for link in forged:
            with pytest.raises(TokenError) as caught:
                supervision.open_supervision(session, link)
            assert caught.value.reason == "invalid"


def test_ended_supervision_and_deactivation_remove_the_banner(session_factory, tree):
    with session_factory.begin() as session:
        first = supervision.supervise(session, tree.system, ALICE, reason="Démonstration")
        supervision.end_supervision(session, tree.system, first.session_id)
        assert supervision.supervision_banner(session, ALICE) is None
        with pytest.raises(TokenError, match="ended"):
            supervision.open_supervision(session, first.link)
        supervision.supervise(session, tree.system, MARC, reason="Démonstration")
        lifecycle.deactivate(session, tree.system, MARC)
        assert supervision.supervision_banner(session, MARC) is None


def test_supervision_refusals(session_factory, tree):
    with session_factory() as session:
        with pytest.raises(InvitationError, match="not active"):
            supervision.supervise(session, tree.system, JP, reason="Aide")
        with pytest.raises(ValidationError, match="needs a reason"):
            supervision.supervise(session, tree.system, ALICE, reason="  ")
        with pytest.raises(ValidationError, match="1 to 240 minutes"):
            supervision.supervise(session, tree.system, ALICE, reason="Aide", minutes=600)
        with pytest.raises(AccessDeniedError):
            supervision.supervise(session, tree.partner_b_admin, ALICE, reason="Aide")


def test_generated_secret_key_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFCARE_OPS_DATA_DIR", str(tmp_path / "d"))
    settings = get_settings()
    key = tokens.secret_key(settings)
    path = tmp_path / "d" / tokens.SECRET_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert tokens.secret_key(settings) == key and len(key) >= 32
    assert tokens.verify("payload", tokens.sign("payload", settings), settings)
    assert not tokens.verify("payload2", tokens.sign("payload", settings), settings)
    monkeypatch.setenv("SELFCARE_OPS_SECRET_KEY", "k" * 40)
    assert tokens.secret_key(get_settings()) == b"k" * 40
