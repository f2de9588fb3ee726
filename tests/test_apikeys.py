"""Client API keys (seed 003): created, regenerated and revoked by administrators, shown once,
stored only as a SHA-256 hash."""

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from selfcare_ops.accounts import apikeys
from selfcare_ops.errors import AccessDeniedError, ConflictError
from selfcare_ops.store.models import ApiKey, AuditEvent, Base


def dump_database(session) -> str:
    """Every row of every table as text, to search for a secret that must not be there."""
    return "\n".join(
        repr(row)
        for table in Base.metadata.sorted_tables
        for row in session.execute(table.select())
    )


def test_a_key_is_shown_once_and_only_its_hash_is_stored(session_factory, tree, db_url):
    with session_factory.begin() as session:
        made = apikeys.create_api_key(session, tree.client_a_admin, "CA")
    key = made.key
    assert key.startswith(apikeys.KEY_SCHEME)
    assert len(key) - len(apikeys.KEY_SCHEME) >= 43  # 32 random bytes, base64url: 256 bits
    assert made.prefix == key[: apikeys.PREFIX_LENGTH]
    assert "shown only once" in made.describe()
    with session_factory() as session:
        row = session.get(ApiKey, made.id)
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert (row.prefix, row.created_by, row.revoked_at) == (
            made.prefix,
            "alice@virginie.example",
            None,
        )
        everything = dump_database(session)
        assert key not in everything
        assert key[apikeys.PREFIX_LENGTH :] not in everything
        assert row.key_hash in everything  # the dump does see the stored columns
        listed = apikeys.list_api_keys(session, tree.partner_a_admin, "CA")
        assert list(listed.columns) == apikeys.API_KEY_COLUMNS
        assert listed.to_dict("records")[0]["status"] == "active"
        assert row.key_hash not in listed.to_string()
        assert apikeys.verify_api_key(session, key).ref == "CA"
    if make_url(db_url).get_backend_name() == "sqlite":
        files = Path(make_url(db_url).database).parent.glob("selfcare.db*")
        raw = b"".join(path.read_bytes() for path in files)
        assert hashlib.sha256(key.encode()).hexdigest().encode() in raw
        assert key.encode() not in raw


def test_regenerate_and_revoke(session_factory, tree):
    with session_factory.begin() as session:
        first = apikeys.create_api_key(session, tree.partner_a_admin, "CA")
        with pytest.raises(ConflictError, match="already has an active API key"):
            apikeys.create_api_key(session, tree.client_a_admin, "CA")
    with session_factory.begin() as session:
        second = apikeys.regenerate_api_key(session, tree.client_a_admin, "CA")
        assert second.key != first.key and second.replaced_prefix == first.prefix
        assert apikeys.verify_api_key(session, first.key) is None
        assert apikeys.verify_api_key(session, second.key).ref == "CA"
    with session_factory.begin() as session:
        revoked = apikeys.revoke_api_key(session, tree.client_a_admin, "CA")
        assert revoked.id == second.id
        assert apikeys.verify_api_key(session, second.key) is None
        with pytest.raises(ConflictError, match="no active API key to revoke"):
            apikeys.revoke_api_key(session, tree.client_a_admin, "CA")
        with pytest.raises(ConflictError, match="no active API key to regenerate"):
            apikeys.regenerate_api_key(session, tree.client_a_admin, "CA")
        third = apikeys.create_api_key(session, tree.system, "CA")
        assert apikeys.verify_api_key(session, third.key).ref == "CA"
    with session_factory() as session:
        statuses = apikeys.list_api_keys(session, tree.system, "CA")["status"].tolist()
        assert statuses == ["active", "revoked", "revoked"]
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("apikey.%")).order_by(AuditEvent.id)
        ).all()
        assert [e.action for e in events] == [
            "apikey.create",
            "apikey.regenerate",
            "apikey.revoke",
            "apikey.create",
        ]
        assert events[1].before == {"prefix": first.prefix, "id": first.id}
        assert events[1].after == {"prefix": second.prefix, "id": second.id}
        assert events[2].after == {"prefix": second.prefix, "status": "revoked"}
        assert all(e.target_label == "CA" for e in events)
        everything = dump_database(session)
        for made in (first, second, third):
            assert made.key not in everything


@pytest.mark.parametrize("key", ["", "sco_", "sco_" + "A" * 43, "abc", "sco_" + "x" * 500])
def test_unknown_keys_are_refused(session_factory, tree, key):
    with session_factory() as session:
        assert apikeys.verify_api_key(session, key) is None


def test_only_administrators_in_scope_manage_keys(session_factory, tree):
    with session_factory.begin() as session:
        with pytest.raises(AccessDeniedError, match="only administrators may"):
            apikeys.create_api_key(session, tree.manager_siege, "CA")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            apikeys.create_api_key(session, tree.partner_b_admin, "CA")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            apikeys.list_api_keys(session, tree.partner_a1_admin, "CA")
        apikeys.create_api_key(session, tree.partner_b_admin, "CB")
        with pytest.raises(AccessDeniedError, match="only administrators may"):
            apikeys.list_api_keys(session, tree.manager_siege, "CA")
        with pytest.raises(AccessDeniedError, match="outside their scope"):
            apikeys.revoke_api_key(session, tree.client_a_admin, "CB")
        assert session.scalar(select(ApiKey.client_id).where(ApiKey.revoked_at.is_(None)))
