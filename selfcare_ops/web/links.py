"""Signed portal links that need no token in the database: a user's home right after the
acceptance, and an analyst's preview of a client (``branding preview ORG --link``).

``<path><id>.<expiry>.<signature>``: the HMAC (the toolkit's secret key) covers the purpose, the
id and the expiry, so a home link cannot be turned into a preview link, nor extended. Also the
form value that binds a POST to its invitation token (CSRF).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from selfcare_ops.config import Settings, get_settings
from selfcare_ops.store.models import utcnow
from selfcare_ops.support.tokens import hash_token, sign, verify

HOME_PATH = "/selfcare/"
PREVIEW_PATH = "/preview/"
#: How long a signed home or preview link opens its page.
LINK_MINUTES = 60


def _payload(purpose: str, ident: int, expiry: int) -> str:
    return f"{purpose}.{ident}.{expiry}"


def signed_code(
    purpose: str,
    ident: int,
    *,
    minutes: int = LINK_MINUTES,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> str:
    expiry = int(((now or utcnow()) + timedelta(minutes=minutes)).timestamp())
    return f"{ident}.{expiry}.{sign(_payload(purpose, ident, expiry), settings)}"


def read_code(
    purpose: str, code: str, *, now: datetime | None = None, settings: Settings | None = None
) -> int | None:
    """The id a code signs for ``purpose`` while it lasts; None for a forged or expired one."""
    parts = (code or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    ident, expiry = int(parts[0]), int(parts[1])
    if not verify(_payload(purpose, ident, expiry), parts[2], settings):
        return None
    if expiry <= (now or utcnow()).timestamp():
        return None
    return ident


def home_link(user_id: int, *, settings: Settings | None = None) -> str:
    """The path of a user's Selfcare home, valid :data:`LINK_MINUTES` minutes."""
    return HOME_PATH + signed_code("home", user_id, settings=settings)


def preview_link(organisation_id: int, *, settings: Settings | None = None) -> str:
    """The full link an analyst opens to see a client's Selfcare, valid one hour."""
    settings = settings or get_settings()
    code = signed_code("preview", organisation_id, settings=settings)
    return f"{settings.portal_url}{PREVIEW_PATH}{code}"


def csrf_value(token: str, settings: Settings | None = None) -> str:
    """The form value bound to one invitation token (a value of another token fails)."""
    return sign(f"csrf.{hash_token(token)}", settings)


def csrf_ok(token: str, value: str, settings: Settings | None = None) -> bool:
    return bool(value) and verify(f"csrf.{hash_token(token)}", value, settings)
