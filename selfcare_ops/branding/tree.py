"""The whole tree at once: effective branding and modules of every organisation in scope.

Four queries whatever the size of the tree (organisations, branding settings, module settings,
image hashes); resolution then runs in Python, parents before children, each organisation
reusing its parent's result (organisations without settings of their own share it as is). The
branding audit reads the same resolution. (Joining the settings to the organisations in one
query was measured slower: it widens 10,000 rows for the few that have settings.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from selfcare_ops.access import Actor, organisation_scope
from selfcare_ops.branding.issues import issues_for
from selfcare_ops.branding.resolve import (
    ASSET_FIELDS,
    BUILTIN,
    FIELD_COLUMNS,
    FIELDS,
    Resolution,
    merge_level,
    path_ids,
)
from selfcare_ops.modules import BUILTIN_MODULES, ModuleResolution, merge_modules
from selfcare_ops.store.models import (
    MODULE_KEYS,
    Asset,
    BrandingSetting,
    ModuleSetting,
    Organisation,
)
from selfcare_ops.support.exports import write_csv

_ASSET_INDEXES = tuple(FIELDS.index(name) for name in ASSET_FIELDS)
_SETTING_COLUMNS = [getattr(BrandingSetting, column) for column in FIELD_COLUMNS.values()]


def _visible(actor: Actor):  # type: ignore[no-untyped-def]
    """Organisations in scope, plus the ancestors they inherit from (for resolution only)."""
    ancestors = path_ids(actor.organisation_path) if actor.organisation_path != "/" else []
    scope = organisation_scope(actor)
    return or_(scope, Organisation.id.in_(ancestors)) if ancestors else scope


def fetch_tuples(connection: Connection, statement: Select[Any]) -> list[tuple[Any, ...]]:
    """All rows of a Core SELECT as plain tuples, straight from the DBAPI cursor.

    For the organisation list (one row per organisation of the tree) the per-row result
    wrapping costs as much as the query; the statement is still built and compiled by
    SQLAlchemy (bound parameters, no text pasted into SQL). Only for columns that need no
    result conversion (integers, text).
    """
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())  # tuples with both drivers (sqlite3, psycopg)
    finally:
        cursor.close()


@dataclass(frozen=True)
class TreeResolution:
    """Every visible organisation (in reference order) and its effective branding and modules.

    Columns are parallel tuples, one item per organisation. Resolutions are stored once in
    ``branding``/``modules``; ``branding_index``/``modules_index`` give each organisation's
    position there (organisations without settings of their own share their parent's).
    ``in_scope`` lists the positions the actor may see (ancestors are loaded only to inherit).
    """

    ids: tuple[int, ...]
    refs: tuple[str, ...]
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    in_scope: list[int]
    branding: list[Resolution]
    branding_index: list[int]
    modules: list[ModuleResolution]
    modules_index: list[int]
    hashes: dict[int, str]

    def positions(self, kinds: Iterable[str] | None = None) -> list[int]:
        if kinds is None:
            return self.in_scope
        wanted = set(kinds)
        return [p for p in self.in_scope if self.kinds[p] in wanted]

    def branding_at(self, position: int) -> Resolution:
        return self.branding[self.branding_index[position]]

    def modules_at(self, position: int) -> ModuleResolution:
        return self.modules[self.modules_index[position]]


def _child_index(store: list[Any], parent: int, own: Any, ref: str, org_id: int, merge) -> int:  # type: ignore[no-untyped-def]
    """Index in ``store`` of the resolution of an organisation whose parent's is ``parent``."""
    if own is None:
        return parent
    merged = merge(store[parent], own, ref, org_id)
    if merged is store[parent]:
        return parent
    store.append(merged)
    return len(store) - 1


def resolve_tree(session: Session, actor: Actor, *, with_modules: bool = True) -> TreeResolution:
    """Four queries, then the inheritance rule, in Python and in bulk.

    Organisations with children (the operator and the partners: few) are resolved one by one,
    parents first. Every other organisation takes its parent's resolution in one list
    comprehension, and only those with settings of their own are merged one by one.
    """
    visible = _visible(actor)
    connection = session.connection()
    rows = fetch_tuples(
        connection,
        select(
            Organisation.id,
            func.coalesce(Organisation.parent_id, 0),
            Organisation.ref,
            Organisation.name,
            Organisation.kind,
            Organisation.path,
        )
        .where(visible)
        .order_by(Organisation.ref),
    )
    own_branding = {
        row[0]: row[1:]
        for row in fetch_tuples(
            connection,
            select(BrandingSetting.organisation_id, *_SETTING_COLUMNS)
            .join(Organisation, Organisation.id == BrandingSetting.organisation_id)
            .where(visible),
        )
    }
    own_modules: dict[int, dict[str, bool]] = {}
    if with_modules:
        for org_id, module, enabled in fetch_tuples(
            connection,
            select(ModuleSetting.organisation_id, ModuleSetting.module, ModuleSetting.enabled)
            .join(Organisation, Organisation.id == ModuleSetting.organisation_id)
            .where(visible),
        ):
            own_modules.setdefault(org_id, {})[module] = bool(enabled)
    asset_ids = {own[i] for own in own_branding.values() for i in _ASSET_INDEXES} - {None}
    hashes: dict[int, str] = {}
    if asset_ids:
        hashes = dict(
            fetch_tuples(connection, select(Asset.id, Asset.sha256).where(Asset.id.in_(asset_ids)))
        )

    ids, parents, refs, names, kinds, paths = (
        tuple(zip(*rows, strict=True)) if rows else ((), (), (), (), (), ())
    )
    parent_ids = set(parents)
    position = dict(zip(ids, range(len(ids)), strict=True))
    b_list: list[Resolution] = [BUILTIN]
    m_list: list[ModuleResolution] = [BUILTIN_MODULES]
    b_of, m_of = {0: 0}, {0: 0}  # 0: the root's parent
    # organisations with children, parents first (a parent's path is a prefix of its child's)
    inner = sorted((p for p, i in enumerate(ids) if i in parent_ids), key=lambda p: len(paths[p]))
    for p in inner:
        org_id, parent = ids[p], parents[p]
        b_of[org_id] = _child_index(
            b_list, b_of[parent], own_branding.get(org_id), refs[p], org_id, merge_level
        )
        m_of[org_id] = _child_index(
            m_list, m_of[parent], own_modules.get(org_id), refs[p], org_id, merge_modules
        )
    # everyone else: the parent's resolution, then their own settings where they have some
    b_index = [b_of[parent] for parent in parents]
    m_index = [m_of[parent] for parent in parents]
    for p in inner:
        b_index[p], m_index[p] = b_of[ids[p]], m_of[ids[p]]
    for org_id, own in own_branding.items():
        if org_id not in parent_ids:
            p = position[org_id]
            b_index[p] = _child_index(b_list, b_index[p], own, refs[p], org_id, merge_level)
    for org_id, own_m in own_modules.items():
        if org_id not in parent_ids:
            p = position[org_id]
            m_index[p] = _child_index(m_list, m_index[p], own_m, refs[p], org_id, merge_modules)
    if actor.is_client_side:
        in_scope = [position[actor.organisation_id]] if actor.organisation_id in position else []
    else:
        prefix = actor.organisation_path
        in_scope = [p for p, path in enumerate(paths) if path.startswith(prefix)]
    return TreeResolution(
        ids, refs, names, kinds, in_scope, b_list, b_index, m_list, m_index, hashes
    )


def _table(rows: list[tuple[Any, ...]], width: int) -> np.ndarray:
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows
    return table


def resolve_all(
    session: Session, actor: Actor, *, kinds: Iterable[str] = ("client",)
) -> pd.DataFrame:
    """Effective branding and modules of every organisation of ``kinds`` in the actor's scope.

    One row per organisation, by reference: ``organisation_id, organisation_ref, name, kind``,
    then for each branding field its value and ``<field>_source`` (images as sha256), then for
    each module ``module_<key>`` (bool) and ``module_<key>_source``. A source is the reference
    of the organisation that decided, ``None`` for the built-in default.

    Organisations without settings of their own share their parent's resolution object, so the
    distinct resolutions are few; each is laid out once and numpy repeats it per organisation.
    """
    tree = resolve_tree(session, actor)
    positions = np.asarray(tree.positions(kinds), dtype=np.intp)
    b_picks = np.asarray(tree.branding_index, dtype=np.intp)[positions]
    m_picks = np.asarray(tree.modules_index, dtype=np.intp)[positions]
    b_values = _table([r.values for r in tree.branding], len(FIELDS))
    for i in _ASSET_INDEXES:  # images by content hash, not by database id
        b_values[:, i] = [None if v is None else tree.hashes.get(v) for v in b_values[:, i]]
    b_sources = _table([r.sources for r in tree.branding], len(FIELDS))
    m_values = _table([r.enabled for r in tree.modules], len(MODULE_KEYS))
    m_sources = _table([r.sources for r in tree.modules], len(MODULE_KEYS))

    def text(column: np.ndarray) -> pd.Series:
        # object columns keep None as None (pandas would turn missing text into NaN)
        return pd.Series(column, dtype=object, copy=False)

    def pick(column: tuple[Any, ...], dtype: Any = object) -> np.ndarray:
        return np.asarray(column, dtype=dtype)[positions] if column else np.empty(0, dtype)

    data: dict[str, Any] = {
        "organisation_id": pick(tree.ids, np.int64),
        "organisation_ref": text(pick(tree.refs)),
        "name": text(pick(tree.names)),
        "kind": text(pick(tree.kinds)),
    }
    for i, name in enumerate(FIELDS):
        data[name] = text(b_values[:, i].take(b_picks))
        data[f"{name}_source"] = text(b_sources[:, i].take(b_picks))
    for i, key in enumerate(MODULE_KEYS):
        data[f"module_{key}"] = m_values[:, i].take(m_picks).astype(bool)
        data[f"module_{key}_source"] = text(m_sources[:, i].take(m_picks))
    return pd.DataFrame(data)


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
    tree = resolve_tree(session, actor, with_modules=False)
    rows = []
    for position in tree.positions():
        resolution = tree.branding_at(position)
        primary, gradient, text = (
            resolution.field(n)[0] for n in ("primary_color", "gradient_color", "text_color")
        )
        found = issues_for(
            primary,
            gradient,
            text,
            resolution.field("logo")[0],
            resolution.field("banner_image")[0],
        )
        if not found:
            continue
        sources = {
            n: resolution.field(n)[1] or "default"
            for n in ("primary_color", "gradient_color", "text_color")
        }
        suggestion = next((i.suggestion for i in found if i.suggestion), None)
        rows.append(
            {
                "organisation_ref": tree.refs[position],
                "name": tree.names[position],
                "kind": tree.kinds[position],
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


def write_safe_csv(frame: pd.DataFrame, path: str | Path, *, sep: str = ";") -> Path:
    """A frame as CSV for Excel (UTF-8 with BOM, ``;``), through the one export writer."""
    return write_csv(frame, path, sep=sep)


#: The branding audit's CSV writer (any frame works).
write_audit_csv = write_safe_csv
