"""The whole tree at once: effective branding and modules of every organisation in scope.

Four queries whatever the size of the tree (organisations, branding settings, module settings,
image metadata); resolution then runs in Python, parents before children, each organisation
reusing its parent's result (organisations without settings of their own share it as is). The
branding audit reads the same resolution and keeps the organisations with problems.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..access import Actor, organisation_scope
from ..models import MODULE_KEYS, Asset, BrandingSetting, ModuleSetting, Organisation
from ..modules import ModuleResolution, builtin_modules, merge_modules
from .issues import issues_for
from .resolve import (
    ASSET_FIELDS,
    FIELD_COLUMNS,
    FIELDS,
    Resolution,
    builtin_resolution,
    merge_level,
    path_ids,
)

_SETTING_COLUMNS = [getattr(BrandingSetting, column) for column in FIELD_COLUMNS.values()]


def _visible(actor: Actor):  # type: ignore[no-untyped-def]
    """Organisations in scope, plus the ancestors they inherit from (for resolution only)."""
    ancestors = path_ids(actor.organisation_path) if actor.organisation_path != "/" else []
    scope = organisation_scope(actor)
    return or_(scope, Organisation.id.in_(ancestors)) if ancestors else scope


def resolve_tree(
    session: Session, actor: Actor, *, with_modules: bool = True
) -> tuple[list[Any], dict[int, Resolution], dict[int, ModuleResolution], dict[int, str]]:
    """(organisations in scope, branding and module resolutions by id, asset sha256 by id)."""
    visible = _visible(actor)
    orgs = session.execute(
        select(
            Organisation.id,
            Organisation.parent_id,
            Organisation.ref,
            Organisation.name,
            Organisation.kind,
            Organisation.path,
        ).where(visible)
    ).all()
    own_branding = {
        row[0]: dict(zip(FIELDS, row[1:], strict=True))
        for row in session.execute(
            select(BrandingSetting.organisation_id, *_SETTING_COLUMNS)
            .join(Organisation, Organisation.id == BrandingSetting.organisation_id)
            .where(visible)
        )
    }
    own_modules: dict[int, dict[str, bool]] = {}
    if with_modules:
        for org_id, module, enabled in session.execute(
            select(ModuleSetting.organisation_id, ModuleSetting.module, ModuleSetting.enabled)
            .join(Organisation, Organisation.id == ModuleSetting.organisation_id)
            .where(visible)
        ):
            own_modules.setdefault(org_id, {})[module] = bool(enabled)
    asset_ids = {level[name] for level in own_branding.values() for name in ASSET_FIELDS} - {None}
    hashes: dict[int, str] = {}
    if asset_ids:
        hashes = dict(
            session.execute(select(Asset.id, Asset.sha256).where(Asset.id.in_(asset_ids))).all()
        )

    orgs.sort(key=lambda o: o.path.count("/"))
    branding: dict[int, Resolution] = {}
    modules: dict[int, ModuleResolution] = {}
    root_branding, root_modules = builtin_resolution(), builtin_modules()
    for org in orgs:
        parent_b = branding.get(org.parent_id, root_branding)
        branding[org.id] = merge_level(parent_b, own_branding.get(org.id), org.ref, org.id)
        if with_modules:
            parent_m = modules.get(org.parent_id, root_modules)
            modules[org.id] = merge_modules(parent_m, own_modules.get(org.id), org.ref, org.id)
    in_scope = [o for o in orgs if _in_scope(actor, o.id, o.path)]
    in_scope.sort(key=lambda o: o.ref)
    return in_scope, branding, modules, hashes


def _in_scope(actor: Actor, org_id: int, path: str) -> bool:
    if actor.is_client_side:
        return org_id == actor.organisation_id
    return path.startswith(actor.organisation_path)


def resolve_all(
    session: Session, actor: Actor, *, kinds: Iterable[str] = ("client",)
) -> pd.DataFrame:
    """Effective branding and modules of every organisation of ``kinds`` in the actor's scope.

    One row per organisation: ``organisation_id, organisation_ref, name, kind``, then for each
    branding field its value and ``<field>_source`` (images as sha256), then for each module
    ``module_<key>`` (bool) and ``module_<key>_source``. A source is the reference of the
    organisation that decided, empty for the built-in default.
    """
    wanted = set(kinds)
    orgs, branding, modules, hashes = resolve_tree(session, actor)
    columns: dict[str, list[Any]] = {
        name: [] for name in ("organisation_id", "organisation_ref", "name", "kind")
    }
    for name in FIELDS:
        columns[name] = []
        columns[f"{name}_source"] = []
    for key in MODULE_KEYS:
        columns[f"module_{key}"] = []
        columns[f"module_{key}_source"] = []
    field_lists = [(columns[n], columns[f"{n}_source"], n in ASSET_FIELDS) for n in FIELDS]
    module_lists = [(columns[f"module_{k}"], columns[f"module_{k}_source"], k) for k in MODULE_KEYS]
    for org in orgs:
        if org.kind not in wanted:
            continue
        columns["organisation_id"].append(org.id)
        columns["organisation_ref"].append(org.ref)
        columns["name"].append(org.name)
        columns["kind"].append(org.kind)
        resolution = branding[org.id]
        for (values, sources, is_asset), name in zip(field_lists, FIELDS, strict=True):
            value, source, _ = resolution[name]
            values.append(hashes.get(value) if is_asset and value is not None else value)
            sources.append(source)
        states = modules[org.id]
        for values, sources, key in module_lists:
            enabled, source, _ = states[key]
            values.append(enabled)
            sources.append(source)
    # object columns keep None as None (pandas would turn missing text into NaN)
    return pd.DataFrame(
        {
            name: pd.Series(
                values,
                dtype=bool
                if name.startswith("module_") and not name.endswith("_source")
                else object,
            )
            for name, values in columns.items()
        }
    )


AUDIT_COLUMNS = [
    "organisation_ref",
    "name",
    "kind",
    "primary_color",
    "gradient_color",
    "text_color",
    "colour_sources",
    "issues",
    "codes",
    "problems",
    "suggested_text_color",
]


def branding_audit(session: Session, actor: Actor) -> pd.DataFrame:
    """Every organisation in scope whose effective branding is unreadable or lacks an image."""
    orgs, branding, _, _ = resolve_tree(session, actor, with_modules=False)
    rows = []
    for org in orgs:
        resolution = branding[org.id]
        primary, gradient, text = (
            resolution[n][0] for n in ("primary_color", "gradient_color", "text_color")
        )
        found = issues_for(
            primary, gradient, text, resolution["logo"][0], resolution["banner_image"][0]
        )
        if not found:
            continue
        sources = {
            n: resolution[n][1] or "default"
            for n in ("primary_color", "gradient_color", "text_color")
        }
        suggestion = next((i.suggestion for i in found if i.suggestion), None)
        rows.append(
            {
                "organisation_ref": org.ref,
                "name": org.name,
                "kind": org.kind,
                "primary_color": primary,
                "gradient_color": gradient,
                "text_color": text,
                "colour_sources": ", ".join(f"{k}={v}" for k, v in sources.items()),
                "issues": len(found),
                "codes": ", ".join(dict.fromkeys(i.code for i in found)),
                "problems": " | ".join(i.message for i in found),
                "suggested_text_color": suggestion,
            }
        )
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_audit_csv(frame: pd.DataFrame, path: str | Path, *, sep: str = ";") -> Path:
    """The audit as CSV for Excel (UTF-8 with BOM, ``;``), formula-like cells neutralised."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    safe = frame.apply(lambda column: column.map(neutralise))
    safe.to_csv(target, sep=sep, index=False, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL)
    return target
