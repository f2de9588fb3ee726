"""A client's API key (seed 003: "Votre clé API est disponible et peut être régénérée").

One active key per client. The key is made from :mod:`secrets` (256 bits), returned once to the
caller and never stored: the database keeps its SHA-256 and a short prefix so people can tell
keys apart. Regenerating revokes the old key and makes a new one in the same transaction, so
integrations switch at one moment. Only administrators (not managers) manage keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import Actor
from selfcare_ops.accounts.rights import require_client_administrator
from selfcare_ops.errors import ConflictError
from selfcare_ops.i18n import _
from selfcare_ops.organisations import get_client
from selfcare_ops.store.models import ApiKey, Organisation, utcnow
from selfcare_ops.support.dates import long_date

KEY_SCHEME = "sco_"
KEY_BYTES = 32  # 256 bits of randomness
PREFIX_LENGTH = 12  # scheme + 8 characters: enough to tell keys apart, far from enough to guess
API_KEY_COLUMNS = ["id", "prefix", "status", "created_at", "created_by", "revoked_at"]


@dataclass(frozen=True)
class ApiKeyResult:
    """A key just made: ``key`` is the only time the secret exists outside the caller."""

    client_ref: str
    id: int
    prefix: str
    key: str
    replaced_prefix: str | None = None

    def describe(self) -> str:
        text = _("API key {prefix}… of client {ref} created.").format(
            prefix=self.prefix, ref=self.client_ref
        )
        if self.replaced_prefix:
            text += " " + _("It replaces {prefix}…, revoked now.").format(
                prefix=self.replaced_prefix
            )
        return text + " " + _("Copy it now: it is shown only once and cannot be read again.")


@dataclass(frozen=True)
class RevokeResult:
    client_ref: str
    id: int
    prefix: str

    def describe(self) -> str:
        return _("API key {prefix}… of client {ref} revoked.").format(
            prefix=self.prefix, ref=self.client_ref
        )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _new_key() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(KEY_BYTES)


def _locked_client(session: Session, actor: Actor, client_ref: str, action: str) -> Organisation:
    """The client, in scope, its row locked so two key changes of one client never overlap."""
    client = get_client(session, client_ref)
    require_client_administrator(actor, client, f"{action} the API key of")
    session.scalar(select(Organisation.id).where(Organisation.id == client.id).with_for_update())
    return client


def _active_key(session: Session, client_id: int) -> ApiKey | None:
    return session.scalar(
        select(ApiKey)
        .where(ApiKey.client_id == client_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id.desc())
    )


def _issue(session: Session, actor: Actor, client: Organisation) -> tuple[ApiKey, str]:
    key = _new_key()
    row = ApiKey(
        client_id=client.id,
        prefix=key[:PREFIX_LENGTH],
        key_hash=hash_key(key),
        created_by=actor.label,
    )
    session.add(row)
    session.flush()
    return row, key


def create_api_key(session: Session, actor: Actor, client_ref: str) -> ApiKeyResult:
    """The client's API key, when it has none active (else regenerate or revoke it)."""
    client = _locked_client(session, actor, client_ref, "create")
    current = _active_key(session, client.id)
    if current is not None:
        raise ConflictError(
            _(
                "Client {ref} already has an active API key ({prefix}…, created {day}); "
                "regenerate it or revoke it first."
            ).format(ref=client.ref, prefix=current.prefix, day=long_date(current.created_at))
        )
    row, key = _issue(session, actor, client)
    audit.record(
        session,
        actor,
        "apikey.create",
        "api_key",
        row.id,
        target_label=client.ref,
        organisation_id=client.id,
        after={"prefix": row.prefix},
    )
    return ApiKeyResult(client.ref, row.id, row.prefix, key)


def regenerate_api_key(session: Session, actor: Actor, client_ref: str) -> ApiKeyResult:
    """Revoke the active key and make a new one, in one transaction."""
    client = _locked_client(session, actor, client_ref, "regenerate")
    current = _active_key(session, client.id)
    if current is None:
        raise ConflictError(
            _("Client {ref} has no active API key to regenerate; create one instead.").format(
                ref=client.ref
            )
        )
    current.revoked_at = utcnow()
    session.flush()
    row, key = _issue(session, actor, client)
    audit.record(
        session,
        actor,
        "apikey.regenerate",
        "api_key",
        row.id,
        target_label=client.ref,
        organisation_id=client.id,
        before={"prefix": current.prefix, "id": current.id},
        after={"prefix": row.prefix, "id": row.id},
    )
    return ApiKeyResult(client.ref, row.id, row.prefix, key, replaced_prefix=current.prefix)


def revoke_api_key(session: Session, actor: Actor, client_ref: str) -> RevokeResult:
    """Revoke the active key; integrations using it stop working at once."""
    client = _locked_client(session, actor, client_ref, "revoke")
    current = _active_key(session, client.id)
    if current is None:
        raise ConflictError(
            _("Client {ref} has no active API key to revoke.").format(ref=client.ref)
        )
    current.revoked_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "apikey.revoke",
        "api_key",
        current.id,
        target_label=client.ref,
        organisation_id=client.id,
        before={"prefix": current.prefix, "status": "active"},
        after={"prefix": current.prefix, "status": "revoked"},
    )
    return RevokeResult(client.ref, current.id, current.prefix)


def list_api_keys(session: Session, actor: Actor, client_ref: str) -> pd.DataFrame:
    """Every key of the client, newest first, by prefix (never the secret or its hash)."""
    client = get_client(session, client_ref)
    require_client_administrator(actor, client, "see the API keys of")
    rows = session.execute(
        select(ApiKey.id, ApiKey.prefix, ApiKey.revoked_at, ApiKey.created_at, ApiKey.created_by)
        .where(ApiKey.client_id == client.id)
        .order_by(ApiKey.id.desc())
    ).all()
    return pd.DataFrame(
        [
            (key_id, prefix, "revoked" if revoked else "active", created, by, revoked)
            for key_id, prefix, revoked, created, by in rows
        ],
        columns=API_KEY_COLUMNS,
    )


def verify_api_key(session: Session, key: str) -> Organisation | None:
    """The client an API key belongs to, or ``None`` if the key is unknown or revoked.

    The lookup is by the key's hash, so the comparison never handles the secret itself.
    """
    if not isinstance(key, str) or not key.startswith(KEY_SCHEME) or len(key) > 200:
        return None
    row = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    if row is None:
        return None
    return session.get(Organisation, row.client_id)
