"""Secret tokens and signatures: random link tokens stored as hashes, HMAC-signed links.

Invitation and supervision links carry a token of 256 random bits; the database keeps only its
SHA-256, so a copy of the database opens no account. Signed links use the HMAC key from
``SELFCARE_OPS_SECRET_KEY``, or a random key generated once into ``<data_dir>/secret_key``
(permissions 0600) so that a fresh install is safe without configuration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.errors import ConfigurationError

TOKEN_BYTES = 32
SECRET_KEY_FILE = "secret_key"


def new_token() -> str:
    """A URL-safe token of 256 random bits (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_tokens(count: int) -> list[str]:
    """``count`` tokens as :func:`new_token` makes them, from one read of the system's random
    source (a bulk invitation needs 100,000: one read per token is a system call each)."""
    pool = os.urandom(TOKEN_BYTES * count)
    encode = base64.urlsafe_b64encode
    return [
        encode(pool[start : start + TOKEN_BYTES]).rstrip(b"=").decode("ascii")
        for start in range(0, TOKEN_BYTES * count, TOKEN_BYTES)
    ]


def random_hex(count: int, size: int) -> list[str]:
    """``count`` random hex strings of ``size`` bytes each (``secrets.token_hex(size)``), from
    one read of the system's random source."""
    pool = os.urandom(size * count).hex()
    width = 2 * size
    return [pool[start : start + width] for start in range(0, width * count, width)]


def hash_token(token: str) -> str:
    """The hex SHA-256 stored in place of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / SECRET_KEY_FILE


def secret_key(settings: Settings | None = None) -> bytes:
    """The signing key: the configured one, else a generated one kept in the data folder."""
    settings = settings or get_settings()
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = _key_file(settings)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key(path)
    except OSError as exc:
        raise ConfigurationError(
            f"The signing key file {path} cannot be created ({exc.strerror}): set "
            "SELFCARE_OPS_SECRET_KEY or make the data folder writable."
        ) from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key.encode("ascii")


def _read_key(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ConfigurationError(
            f"The signing key file {path} holds {len(text)} characters, fewer than the 32 "
            "needed: delete it to have a new one generated, or set SELFCARE_OPS_SECRET_KEY."
        )
    return text.encode("ascii")


def sign(payload: str, settings: Settings | None = None) -> str:
    """A URL-safe HMAC-SHA256 signature of ``payload``."""
    digest = hmac.new(secret_key(settings), payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(payload: str, signature: str, settings: Settings | None = None) -> bool:
    """Constant-time check of a signature made by :func:`sign`."""
    return hmac.compare_digest(sign(payload, settings), signature)
