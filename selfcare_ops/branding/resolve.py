"""Effective branding: each field from the nearest organisation that sets it, with its source.

Settings are stored per organisation, field by field (``NULL`` inherits). Resolving one
organisation reads the settings of the ids in its materialised ``path`` (root first) in one
query and walks them from the organisation up; :func:`merge_level` is the single rule, shared
with the whole-tree resolution of :mod:`selfcare_ops.branding.tree`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcare_ops.errors import NotFoundError
from selfcare_ops.store.models import Asset, BrandingSetting, Organisation

#: Branding fields in display order, and the column of ``branding_settings`` holding each.
FIELD_COLUMNS: dict[str, str] = {
    "logo": "logo_asset_id",
    "primary_color": "primary_color",
    "gradient_color": "gradient_color",
    "text_color": "text_color",
    "banner_image": "banner_asset_id",
    "banner_link": "banner_link",
    "banner_message": "banner_message",
}
FIELDS: tuple[str, ...] = tuple(FIELD_COLUMNS)
ASSET_FIELDS = ("logo", "banner_image")
COLOR_FIELDS = ("primary_color", "gradient_color", "text_color")

#: Built-in values used where no level of the tree sets a field (source ``None``). The demo
#: data stores the operator's defaults explicitly (:func:`seed_default_branding`).
BUILTIN_DEFAULTS: dict[str, Any] = {
    "logo": None,
    "primary_color": "#e2001a",
    "gradient_color": None,
    "text_color": "#ffffff",
    "banner_image": None,
    "banner_link": None,
    "banner_message": "Bienvenue sur votre Selfcare utilisateur",
}

#: Stored in ``gradient_color``: this level explicitly has no gradient (``NULL`` inherits).
NO_GRADIENT = ""


@dataclass(frozen=True)
class AssetRef:
    """An image's identity and shape, without its bytes (see :func:`asset_content`)."""

    id: int
    sha256: str
    mime: str
    width: int
    height: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "size": self.size,
        }


@dataclass(frozen=True)
class ResolvedField:
    """One effective value and where it comes from.

    ``source`` is the reference of the organisation that sets it, ``None`` for the built-in
    default. For ``gradient_color`` a ``None`` value with a source means "explicitly none".
    """

    value: Any
    source: str | None
    source_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        value = self.value.as_dict() if isinstance(self.value, AssetRef) else self.value
        return {"value": value, "source": self.source}


@dataclass(frozen=True)
class ResolvedBranding:
    """The effective personalisation of one organisation, every field with its provenance."""

    organisation_id: int
    organisation_ref: str
    logo: ResolvedField
    primary_color: ResolvedField
    gradient_color: ResolvedField
    text_color: ResolvedField
    banner_image: ResolvedField
    banner_link: ResolvedField
    banner_message: ResolvedField

    def field(self, name: str) -> ResolvedField:
        return getattr(self, name)

    def values(self) -> dict[str, Any]:
        """Field name -> effective value (assets as :class:`AssetRef`)."""
        return {name: getattr(self, name).value for name in FIELDS}

    def sources(self) -> dict[str, str | None]:
        return {name: getattr(self, name).source for name in FIELDS}

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready: one key per field, each ``{"value": ..., "source": ...}``."""
        return {f.name: getattr(self, f.name).as_dict() for f in fields(self) if f.name in FIELDS}


# --- the one inheritance rule ----------------------------------------------------------------

GRADIENT_INDEX = FIELDS.index("gradient_color")
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}


class Resolution(NamedTuple):
    """A resolution in progress, field by field in :data:`FIELDS` order.

    ``sources`` holds organisation refs (``None``: built-in default), ``ids`` their ids. Plain
    tuples so that a whole tree resolves fast and organisations without settings of their own
    share their parent's object.
    """

    values: tuple[Any, ...]
    sources: tuple[str | None, ...]
    ids: tuple[int | None, ...]

    def field(self, name: str) -> tuple[Any, str | None, int | None]:
        i = FIELD_INDEX[name]
        return self.values[i], self.sources[i], self.ids[i]


BUILTIN = Resolution(
    tuple(BUILTIN_DEFAULTS[name] for name in FIELDS), (None,) * len(FIELDS), (None,) * len(FIELDS)
)


def builtin_resolution() -> Resolution:
    return BUILTIN


def merge_level(parent: Resolution, own: Sequence[Any] | None, ref: str, org_id: int) -> Resolution:
    """``parent`` overridden by every field ``own`` sets: the nearest level wins.

    ``own`` is one organisation's stored values in :data:`FIELDS` order, ``None`` inheriting;
    ``''`` in the gradient means "explicitly no gradient here".
    """
    if own is None or own.count(None) == len(own):
        return parent
    values = [p if o is None else o for o, p in zip(own, parent.values, strict=True)]
    if values[GRADIENT_INDEX] == NO_GRADIENT:
        values[GRADIENT_INDEX] = None
    sources = [p if o is None else ref for o, p in zip(own, parent.sources, strict=True)]
    ids = [p if o is None else org_id for o, p in zip(own, parent.ids, strict=True)]
    return Resolution(tuple(values), tuple(sources), tuple(ids))


def level_from_row(row: Mapping[str, Any] | Any) -> tuple[Any, ...]:
    """A ``branding_settings`` row (mapping or object) as stored values in FIELDS order."""
    get = row.get if isinstance(row, Mapping) else lambda key: getattr(row, key)
    return tuple(get(column) for column in FIELD_COLUMNS.values())


def path_ids(path: str) -> list[int]:
    """``"/1/4/17/"`` -> ``[1, 4, 17]`` (root first)."""
    return [int(part) for part in path.strip("/").split("/") if part]


def load_asset_refs(session: Session, ids: Iterable[int | None]) -> dict[int, AssetRef]:
    """Metadata of the given assets (never their bytes), by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Asset.id, Asset.sha256, Asset.mime, Asset.width, Asset.height, Asset.size).where(
            Asset.id.in_(wanted)
        )
    )
    return {row.id: AssetRef(*row) for row in rows}


def finish(
    org_id: int, org_ref: str, resolution: Resolution, assets: Mapping[int, AssetRef]
) -> ResolvedBranding:
    """A resolution as a :class:`ResolvedBranding`, asset ids replaced by their metadata."""
    out: dict[str, ResolvedField] = {}
    for name in FIELDS:
        value, source, source_id = resolution.field(name)
        if name in ASSET_FIELDS and value is not None:
            value = assets.get(value)
        out[name] = ResolvedField(value, source, source_id)
    return ResolvedBranding(organisation_id=org_id, organisation_ref=org_ref, **out)


def resolve_levels(levels: Sequence[tuple[int, str, Sequence[Any] | None]]) -> Resolution:
    """Fold levels given root first as ``(org id, ref, own stored values)``."""
    resolution = BUILTIN
    for org_id, ref, own in levels:
        resolution = merge_level(resolution, own, ref, org_id)
    return resolution


def resolve_branding(session: Session, organisation_id: int) -> ResolvedBranding:
    """The effective branding of one organisation: two small queries, no scope check.

    Callers that show it to a person check scope themselves (the CLI and services do); mail
    rendering calls it for the recipient's own client.
    """
    org = session.execute(
        select(Organisation.ref, Organisation.path).where(Organisation.id == organisation_id)
    ).one_or_none()
    if org is None:
        raise NotFoundError("organisation", str(organisation_id))
    ids = path_ids(org.path)
    rows = session.execute(
        select(Organisation.id, Organisation.ref, BrandingSetting)
        .outerjoin(BrandingSetting, BrandingSetting.organisation_id == Organisation.id)
        .where(Organisation.id.in_(ids))
    ).all()
    by_id = {
        row[0]: (row[1], level_from_row(row[2]) if row[2] is not None else None) for row in rows
    }
    levels = [(i, by_id[i][0], by_id[i][1]) for i in ids if i in by_id]
    resolution = resolve_levels(levels)
    assets = load_asset_refs(session, (resolution.field(name)[0] for name in ASSET_FIELDS))
    return finish(organisation_id, org.ref, resolution, assets)


def asset_content(session: Session, asset: AssetRef | int) -> bytes:
    """The stored (validated, re-encoded) bytes of an image."""
    asset_id = asset.id if isinstance(asset, AssetRef) else asset
    content = session.scalar(select(Asset.content).where(Asset.id == asset_id))
    if content is None:
        raise NotFoundError("image", str(asset_id))
    return content


def asset_data_uri(session: Session, asset: AssetRef) -> str:
    """The image as a ``data:`` URI, for self-contained HTML (previews, mails)."""
    encoded = base64.b64encode(asset_content(session, asset)).decode("ascii")
    return f"data:{asset.mime};base64,{encoded}"
