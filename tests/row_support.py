"""User rows as a raw bulk writer (an import, a benchmark's builder) would insert them: the tests
that check what the database itself enforces write through these, not through the services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from selfcare_ops.accounts.users import derived_columns
from selfcare_ops.store.models import utcnow


def new_user_columns(now: datetime) -> dict[str, Any]:
    """The columns every new, plain, not yet invited user has."""
    return {
        "role": "user",
        "status": "not_invited",
        "status_changed_at": now,
        "created_at": now,
        "updated_at": now,
        "right_manage_rights": False,
        "right_place_orders": False,
        "right_view_invoices": False,
    }


def raw_user_row(
    client_id: int, login: str, first_name: str, last_name: str, now: datetime | None = None
) -> dict[str, Any]:
    """A whole row of ``users``, stored columns derived as the services derive them."""
    return {
        "client_id": client_id,
        "login": login,
        "first_name": first_name,
        "last_name": last_name,
        **new_user_columns(now or utcnow()),
        **derived_columns(first_name, last_name, login, None),
    }
