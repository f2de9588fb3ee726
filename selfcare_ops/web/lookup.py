"""What the page of an invitation link needs, read in two plain queries.

Every visit of a link (scanners included) runs this, so it reads columns with Core selects
instead of loading ORM objects: the invitation with its user and client in one query, then the
organisation chain with its branding settings and images in a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from selfcare_ops.branding.resolve import (
    FIELD_COLUMNS,
    FIELDS,
    AssetRef,
    finish,
    path_ids,
    resolve_levels,
)
from selfcare_ops.i18n import LANGUAGES
from selfcare_ops.invitations.ledger import invitation_state
from selfcare_ops.pages.home import asset_path
from selfcare_ops.pages.render import Theme
from selfcare_ops.store.models import (
    OPEN_INVITATION_STATUSES,
    Asset,
    BrandingSetting,
    Invitation,
    Organisation,
    User,
    utcnow,
)
from selfcare_ops.support.tokens import hash_token
from selfcare_ops.web.pages import Look

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_INV = Invitation.__table__
_USERS = User.__table__
_ORGS = Organisation.__table__
_SETTINGS = BrandingSetting.__table__


@dataclass(frozen=True)
class LinkView:
    """An invitation as its page shows it (whatever its state)."""

    id: int
    kind: str
    status: str
    email: str
    expires_at: datetime
    accepted_at: datetime | None
    closed_at: datetime | None
    organisation_id: int
    user_id: int | None
    login: str | None
    first_name: str
    user_language: str | None
    organisation_ref: str
    organisation_name: str
    organisation_path: str

    def state(self, now: datetime | None = None) -> str:
        return invitation_state(self.status, self.expires_at, now or utcnow())


#: Built once: a statement object memoises its cache key, so each visit only binds the hash.
_LINK_QUERY = (
    select(
        _INV.c.id,
        _INV.c.kind,
        _INV.c.status,
        _INV.c.email,
        _INV.c.expires_at,
        _INV.c.accepted_at,
        _INV.c.closed_at,
        _INV.c.organisation_id,
        _INV.c.user_id,
        _USERS.c.login,
        _USERS.c.first_name,
        _USERS.c.language,
        _ORGS.c.ref,
        _ORGS.c.name,
        _ORGS.c.path,
    )
    .join(_ORGS, _ORGS.c.id == _INV.c.organisation_id)
    .outerjoin(_USERS, _USERS.c.id == _INV.c.user_id)
    .where(_INV.c.token_hash == bindparam("token_hash"))
)
_LOGO = Asset.__table__.alias("logo")
_BANNER = Asset.__table__.alias("banner")
_LOOK_QUERY = (
    select(
        _ORGS.c.id,
        _ORGS.c.ref,
        _ORGS.c.language,
        _SETTINGS.c.organisation_id,
        _SETTINGS.c.logo_asset_id,
        _SETTINGS.c.primary_color,
        _SETTINGS.c.gradient_color,
        _SETTINGS.c.text_color,
        _SETTINGS.c.banner_asset_id,
        _SETTINGS.c.banner_link,
        _SETTINGS.c.banner_message,
        _LOGO.c.sha256,
        _LOGO.c.mime,
        _BANNER.c.sha256,
        _BANNER.c.mime,
    )
    .outerjoin(_SETTINGS, _SETTINGS.c.organisation_id == _ORGS.c.id)
    .outerjoin(_LOGO, _LOGO.c.id == _SETTINGS.c.logo_asset_id)
    .outerjoin(_BANNER, _BANNER.c.id == _SETTINGS.c.banner_asset_id)
    .where(_ORGS.c.id.in_(bindparam("ids", expanding=True)))
)
assert tuple(FIELD_COLUMNS.values()) == (
    "logo_asset_id",
    "primary_color",
    "gradient_color",
    "text_color",
    "banner_asset_id",
    "banner_link",
    "banner_message",
), "the look query reads the settings in FIELDS order"


def link_view(session: Session, token: str) -> LinkView | None:
    """The invitation of a raw token with its user and client; None for an unknown token."""
    token = (token or "").strip()
    if not _TOKEN_SHAPE.match(token):
        return None
    row = session.connection().execute(_LINK_QUERY, {"token_hash": hash_token(token)}).first()
    if row is None:
        return None
    values = list(row)
    values[10] = values[10] or ""
    return LinkView(*values)


def open_link(session: Session, token: str) -> tuple[LinkView | None, str]:
    """The link if it still opens the form, else None and why (``invalid``, ``used``,
    ``expired``, ``superseded``, ``revoked``, ``bounced``), as ``inspect_token`` says."""
    link = link_view(session, token)
    if link is None:
        return None, "invalid"
    state = link.state()
    if state in OPEN_INVITATION_STATUSES:
        return link, "open"
    return None, {"accepted": "used"}.get(state, state)


def look_and_language(
    session: Session, organisation_id: int, ref: str, name: str, path: str
) -> tuple[Look, str]:
    """The client's look (colours, logo, name) and the nearest language up its tree, from
    one query over its organisation chain, their settings and their images."""
    ids = path_ids(path)
    rows = {row[0]: row for row in session.connection().execute(_LOOK_QUERY, {"ids": ids})}
    assets: dict[int, AssetRef] = {}
    levels = []
    for org_id in ids:
        row = rows.get(org_id)
        if row is None:
            continue
        own = tuple(row[4 : 4 + len(FIELDS)]) if row[3] is not None else None
        levels.append((org_id, row[1], own))
        for asset_id, sha, mime in ((row[4], row[11], row[12]), (row[8], row[13], row[14])):
            if asset_id is not None and sha is not None:
                assets[asset_id] = AssetRef(asset_id, sha, mime, 0, 0, 0)
    branding = finish(organisation_id, ref, resolve_levels(levels), assets)
    language = next(
        (rows[i][2] for i in reversed(ids) if i in rows and rows[i][2] in LANGUAGES), "fr"
    )
    logo_ref = branding.logo.value
    look = Look(
        theme=Theme.of(
            branding.primary_color.value, branding.gradient_color.value, branding.text_color.value
        ),
        logo_src=asset_path(logo_ref) if isinstance(logo_ref, AssetRef) else None,
        organisation_name=name,
    )
    return look, language
