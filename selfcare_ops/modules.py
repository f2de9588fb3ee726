"""Modules of the user Selfcare (seed 000, "Paramètres"): toggles that inherit down the tree.

Each organisation may switch a module on or off for itself and everything below it; no row in
``module_settings`` means "inherit", and the root's default is on. The effective state of a
module comes with the organisation that decided it. *Mise en avant offres mobiles* impacts
other sections (the dashboard and *Mes téléphones*, where mobile mentions are removed when it
is off): every change to it lists them. Changing many clients at once is a plan (a DataFrame,
one row per organisation, action and reason) that :func:`apply_module_plan` then applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import pandas as pd
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.orm import Session

from selfcare_ops import audit
from selfcare_ops.access import (
    Actor,
    can_see_organisation,
    organisation_scope,
    require_organisation,
    require_organisation_admin,
)
from selfcare_ops.errors import AccessDeniedError, NotFoundError, ValidationError
from selfcare_ops.i18n import _
from selfcare_ops.organisations import get_organisation
from selfcare_ops.store.bulk_sql import insert_rows
from selfcare_ops.store.models import MODULE_KEYS, ModuleSetting, Organisation, utcnow
from selfcare_ops.support.batching import chunks
from selfcare_ops.support.textnorm import fold


@dataclass(frozen=True)
class ModuleInfo:
    key: str
    label: str
    description: str
    #: Sections changed when this module is toggled (labels as the Selfcare shows them).
    impacts: tuple[str, ...] = ()


CATALOGUE: dict[str, ModuleInfo] = {
    m.key: m
    for m in (
        ModuleInfo("mes_telephones", "Mes téléphones", "The user's lines and devices."),
        ModuleInfo("documentations", "Documentations", "User guides and documents."),
        ModuleInfo("gestion_des_appels", "Gestion des appels", "Call forwarding and routing."),
        ModuleInfo("journaux_d_appels", "Journaux d'appels", "Call history."),
        ModuleInfo("messagerie_vocale", "Messagerie vocale", "Voicemail."),
        ModuleInfo("contacts", "Contacts", "The user's contacts."),
        ModuleInfo("com_unifiees", "Com. unifiées", "Unified communications."),
        ModuleInfo(
            "offres_mobiles",
            "Mise en avant offres mobiles",
            "Promotes the mobile offer to users who do not have it; when off, mobile mentions "
            "are removed from the impacted sections.",
            impacts=("Tableau de bord", "Mes téléphones"),
        ),
    )
}
assert tuple(CATALOGUE) == MODULE_KEYS, "the catalogue must follow models.MODULE_KEYS"

#: Effective state of a module where no level decides: on.
DEFAULT_ENABLED = True
STATE_WORDS = {"on": True, "off": False, "inherit": None}

MODULE_INDEX = {key: i for i, key in enumerate(MODULE_KEYS)}


class ModuleResolution(NamedTuple):
    """Effective toggles in :data:`MODULE_KEYS` order, each with its source ref and id.

    A source of ``None`` is the built-in default. Plain tuples: a whole tree resolves fast and
    organisations without toggles of their own share their parent's object.
    """

    enabled: tuple[bool, ...]
    sources: tuple[str | None, ...]
    ids: tuple[int | None, ...]

    def field(self, key: str) -> tuple[bool, str | None, int | None]:
        i = MODULE_INDEX[key]
        return self.enabled[i], self.sources[i], self.ids[i]


BUILTIN_MODULES = ModuleResolution(
    (DEFAULT_ENABLED,) * len(MODULE_KEYS), (None,) * len(MODULE_KEYS), (None,) * len(MODULE_KEYS)
)


@dataclass(frozen=True)
class ModuleState:
    key: str
    label: str
    enabled: bool
    source: str | None
    #: The organisation's own toggle: True/False, or None when it inherits.
    own: bool | None
    impacts: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "module": self.key,
            "label": self.label,
            "enabled": self.enabled,
            "source": self.source,
            "own": self.own,
            "impacts": list(self.impacts),
        }


def module_key(text: str) -> str:
    """A module named by key or French label (accents and case ignored)."""
    wanted = fold(text).replace("'", " ").replace("_", " ").replace(".", " ").split()
    for key, info in CATALOGUE.items():
        for name in (key, info.label):
            candidate = fold(name).replace("'", " ").replace("_", " ").replace(".", " ").split()
            if candidate == wanted:
                return key
    raise ValidationError(
        _("Unknown module {module}; the modules are {modules}.").format(
            module=repr(text), modules=", ".join(f"{k} ({i.label})" for k, i in CATALOGUE.items())
        ),
        field="module",
        actual=text,
    )


def parse_state(text: str | bool | None) -> bool | None:
    """'on' -> True, 'off' -> False, 'inherit' -> None (booleans and None pass through)."""
    if text is None or isinstance(text, bool):
        return text
    key = text.strip().lower()
    if key not in STATE_WORDS:
        raise ValidationError(
            _("A module state is on, off or inherit, not {state}.").format(state=repr(text)),
            field="state",
            actual=text,
        )
    return STATE_WORDS[key]


def builtin_modules() -> ModuleResolution:
    return BUILTIN_MODULES


def merge_modules(
    parent: ModuleResolution, own: Mapping[str, bool] | None, ref: str, org_id: int
) -> ModuleResolution:
    """``parent`` overridden by the organisation's own toggles (the nearest level wins)."""
    if not own:
        return parent
    enabled, sources, ids = list(parent.enabled), list(parent.sources), list(parent.ids)
    for key, state in own.items():
        i = MODULE_INDEX[key]
        enabled[i], sources[i], ids[i] = bool(state), ref, org_id
    return ModuleResolution(tuple(enabled), tuple(sources), tuple(ids))


def _path_ids(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def _states(resolution: ModuleResolution, own: Mapping[str, bool]) -> dict[str, ModuleState]:
    return {
        key: ModuleState(
            key=key,
            label=CATALOGUE[key].label,
            enabled=resolution.field(key)[0],
            source=resolution.field(key)[1],
            own=own.get(key),
            impacts=CATALOGUE[key].impacts,
        )
        for key in MODULE_KEYS
    }


def _resolve_many(
    session: Session, targets: list[tuple[int, str]], modules: Iterable[str] = MODULE_KEYS
) -> dict[int, tuple[ModuleResolution, dict[str, bool]]]:
    """Effective modules of many organisations given as (id, path): two queries in all."""
    wanted = tuple(modules)
    ids = {i for _, path in targets for i in _path_ids(path)}
    refs: dict[int, str] = {}
    own: dict[int, dict[str, bool]] = {}
    id_list = sorted(ids)
    for chunk in chunks(id_list, 5000):
        refs.update(
            session.execute(
                select(Organisation.id, Organisation.ref).where(Organisation.id.in_(chunk))
            ).all()
        )
        rows = session.execute(
            select(
                ModuleSetting.organisation_id, ModuleSetting.module, ModuleSetting.enabled
            ).where(ModuleSetting.organisation_id.in_(chunk), ModuleSetting.module.in_(wanted))
        )
        for org_id, module, enabled in rows:
            own.setdefault(org_id, {})[module] = bool(enabled)
    cache: dict[str, ModuleResolution] = {}
    out: dict[int, tuple[ModuleResolution, dict[str, bool]]] = {}
    for org_id, path in targets:
        resolution = builtin_modules()
        prefix = "/"
        for level in _path_ids(path):
            prefix = f"{prefix}{level}/"
            cached = cache.get(prefix)
            if cached is None:
                cached = merge_modules(resolution, own.get(level), refs.get(level, "?"), level)
                cache[prefix] = cached
            resolution = cached
        out[org_id] = (resolution, own.get(org_id, {}))
    return out


def resolve_modules(session: Session, organisation_id: int) -> dict[str, ModuleState]:
    """Every module's effective state for one organisation, with its source (no scope check)."""
    path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))
    if path is None:
        raise NotFoundError("organisation", str(organisation_id))
    resolution, own = _resolve_many(session, [(organisation_id, path)])[organisation_id]
    return _states(resolution, own)


def modules_frame(states: Mapping[str, ModuleState]) -> pd.DataFrame:
    """One row per module: key, label, enabled, source, own toggle, impacted sections."""
    rows = [{**s.as_dict(), "impacts": ", ".join(s.impacts)} for s in states.values()]
    return pd.DataFrame(rows, columns=["module", "label", "enabled", "source", "own", "impacts"])


def show_modules(session: Session, actor: Actor, organisation_ref: str) -> dict[str, ModuleState]:
    org = get_organisation(session, organisation_ref)
    require_organisation(actor, org, _("see the modules of"))
    return resolve_modules(session, org.id)


@dataclass(frozen=True)
class ModuleChange:
    organisation_ref: str
    module: str
    label: str
    own_before: bool | None
    own_after: bool | None
    enabled_before: bool
    enabled_after: bool
    source_after: str | None
    impacts: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.own_before != self.own_after

    def describe(self) -> str:
        """The change in one sentence of the current language."""
        word = {True: _("on"), False: _("off"), None: _("inherit")}
        text = _(
            "{label} ({module}) of {organisation}: {before} -> {after}; effective {state} (from "
            "{source})."
        ).format(
            label=self.label,
            module=self.module,
            organisation=self.organisation_ref,
            before=word[self.own_before],
            after=word[self.own_after],
            state=word[bool(self.enabled_after)],
            source=self.source_after or _("the built-in default"),
        )
        if self.impacts:
            text += " " + _("Impacted modules: {modules}.").format(modules=", ".join(self.impacts))
        return text


def _admin_only(actor: Actor, org: Organisation) -> None:
    """Scope, then "administrators only" (seed 002), both refusals naming the organisation:
    the access rule of :func:`~selfcare_ops.access.require_organisation_admin`, called."""
    require_organisation_admin(actor, org, _("change the modules of"))


def _write(session: Session, org_id: int, module: str, state: bool | None) -> None:
    exists = session.scalar(
        select(ModuleSetting.enabled).where(
            ModuleSetting.organisation_id == org_id, ModuleSetting.module == module
        )
    )
    if state is None:
        session.execute(
            delete(ModuleSetting).where(
                ModuleSetting.organisation_id == org_id, ModuleSetting.module == module
            )
        )
    elif exists is None:
        session.execute(
            insert(ModuleSetting).values(organisation_id=org_id, module=module, enabled=state)
        )
    else:
        session.execute(
            update(ModuleSetting)
            .where(ModuleSetting.organisation_id == org_id, ModuleSetting.module == module)
            .values(enabled=state, updated_at=utcnow())
        )


def set_module(
    session: Session, actor: Actor, organisation_ref: str, module: str, state: str | bool | None
) -> ModuleChange:
    """Switch one module on, off, or back to inherit for one organisation (audited)."""
    key = module_key(module)
    wanted = parse_state(state)
    org = get_organisation(session, organisation_ref)
    _admin_only(actor, org)
    before = resolve_modules(session, org.id)[key]
    if before.own != wanted:
        _write(session, org.id, key, wanted)
        session.flush()
        audit.record(
            session,
            actor,
            "module.set" if wanted is not None else "module.reset",
            "organisation",
            org.id,
            target_label=org.ref,
            organisation_id=org.id,
            before={"module": key, "own": before.own, "enabled": before.enabled},
            after={"module": key, "own": wanted, "impacts": list(CATALOGUE[key].impacts)},
        )
    after = resolve_modules(session, org.id)[key]
    return ModuleChange(
        organisation_ref=org.ref,
        module=key,
        label=CATALOGUE[key].label,
        own_before=before.own,
        own_after=after.own,
        enabled_before=before.enabled,
        enabled_after=after.enabled,
        source_after=after.source,
        impacts=CATALOGUE[key].impacts,
    )


# --- many organisations: plan, then apply ----------------------------------------------------


def _state_value(value: object) -> bool | None:
    """A plan cell back to True/False/None (plans may come back from a CSV file)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "on"):
            return True
        if lowered in ("false", "0", "off"):
            return False
        return parse_state(lowered or "inherit")
    return bool(value)


PLAN_COLUMNS = [
    "organisation_id",
    "organisation_ref",
    "name",
    "module",
    "own_before",
    "enabled_before",
    "source_before",
    "own_after",
    "action",
    "reason",
    "reason_code",
    "impacts",
]


def _impacts_of(modules: Iterable[object]) -> tuple[str, ...]:
    """The sections whose content changes with these modules (keys or labels, as a plan's
    rows name them), each once, in catalogue order."""
    named = {m for m in modules if isinstance(m, str)}
    return tuple(
        dict.fromkeys(
            impact
            for key, info in CATALOGUE.items()
            if key in named or info.label in named
            for impact in info.impacts
        )
    )


@dataclass(frozen=True, eq=False)
class ModulePlan:
    """One module change across many clients, before anything is written.

    ``frame`` has one row per client considered (:data:`PLAN_COLUMNS`; ``action`` is ``set``,
    ``reset`` or ``skip`` with the reason); it can be narrowed (:meth:`where`), exported, edited
    and read back: :func:`apply_module_plan` takes the plan or such a frame.
    """

    frame: pd.DataFrame
    module: str
    state: bool | None

    @property
    def to_change(self) -> int:
        """How many clients applying the plan would change."""
        return int((self.frame["action"] != "skip").sum())

    @property
    def impacts(self) -> tuple[str, ...]:
        """The other sections this module's state changes (always listed to the analyst)."""
        return CATALOGUE[self.module].impacts

    def where(self, mask: pd.Series) -> ModulePlan:
        """The same plan for the rows ``mask`` keeps."""
        return replace(self, frame=self.frame[mask])


@dataclass(frozen=True, eq=False)
class ModuleOutcome:
    """What applying a module plan did: ``frame`` is the plan with ``outcome`` ('applied',
    'unchanged', 'skipped') and ``detail``."""

    frame: pd.DataFrame

    def _count(self, outcome: str) -> int:
        return int((self.frame["outcome"] == outcome).sum())

    @property
    def applied(self) -> int:
        """How many clients changed."""
        return self._count("applied")

    @property
    def unchanged(self) -> int:
        """How many clients were already in the wanted state when applying."""
        return self._count("unchanged")

    @property
    def skipped(self) -> int:
        """How many rows were not applied (out of scope, unknown client, planned as skip)."""
        return self._count("skipped")

    @property
    def impacts(self) -> tuple[str, ...]:
        """The other sections the applied modules change."""
        return _impacts_of(self.frame["module"].unique())


def plan_reason(code: str) -> str:
    """Why a client is left out of a module change, in the current language ('' for none);
    the plan's ``reason_code`` keeps ``code``."""
    reasons = {
        "out_of_scope": _("outside your scope"),
        "administrators_only": _("only administrators may change modules"),
        "already_inherits": _("already inherits"),
        "already_on": _("already on"),
        "already_off": _("already off"),
        "unknown_client": _("no such client"),
    }
    return reasons.get(code, code)


def plan_module_change(
    session: Session,
    actor: Actor,
    module: str,
    state: str | bool | None,
    *,
    refs: Iterable[str] | None = None,
    under: str | None = None,
) -> ModulePlan:
    """One row per client considered: 'set', 'reset' or 'skip' (with the reason).

    Targets are the clients named by ``refs``, else every client under ``under``, else every
    client in the actor's scope. Nothing is written; ``plan.to_change`` counts the rows that
    :func:`apply_module_plan` would change.
    """
    key = module_key(module)
    wanted = parse_state(state)
    query = select(Organisation.id, Organisation.ref, Organisation.name, Organisation.path).where(
        Organisation.kind == "client"
    )
    missing: list[str] = []
    if refs is not None:
        names = list(dict.fromkeys(r.strip() for r in refs if r and r.strip()))
        found = []
        for chunk in chunks(names, 5000):
            found += session.execute(query.where(Organisation.ref.in_(chunk))).all()
        known = {row.ref for row in found}
        missing = [r for r in names if r not in known]
        rows = found
    else:
        if under is not None:
            parent = get_organisation(session, under)
            require_organisation(actor, parent, _("plan module changes under"))
            query = query.where(Organisation.path.startswith(parent.path, autoescape=True))
        rows = session.execute(query.where(organisation_scope(actor))).all()
    resolved = _resolve_many(session, [(r.id, r.path) for r in rows], (key,))
    out = []
    for row in sorted(rows, key=lambda r: r.ref):
        resolution, own = resolved[row.id]
        own_before = own.get(key)
        enabled, source, _level = resolution.field(key)
        if not can_see_organisation(actor, row):
            action, code = "skip", "out_of_scope"
        elif actor.kind == "manager":
            action, code = "skip", "administrators_only"
        elif own_before == wanted:
            action = "skip"
            code = "already_inherits" if wanted is None else f"already_{'on' if wanted else 'off'}"
        else:
            action, code = ("reset" if wanted is None else "set"), ""
        out.append(
            {
                "organisation_id": row.id,
                "organisation_ref": row.ref,
                "name": row.name,
                "module": key,
                "own_before": own_before,
                "enabled_before": enabled,
                "source_before": source,
                "own_after": wanted,
                "action": action,
                "reason": plan_reason(code),
                "reason_code": code,
                "impacts": ", ".join(CATALOGUE[key].impacts),
            }
        )
    for ref in missing:
        out.append(
            {
                "organisation_id": None,
                "organisation_ref": ref,
                "name": None,
                "module": key,
                "own_before": None,
                "enabled_before": None,
                "source_before": None,
                "own_after": wanted,
                "action": "skip",
                "reason": plan_reason("unknown_client"),
                "reason_code": "unknown_client",
                "impacts": ", ".join(CATALOGUE[key].impacts),
            }
        )
    frame = pd.DataFrame(out, columns=PLAN_COLUMNS).astype({"organisation_id": "Int64"})
    return ModulePlan(frame=frame, module=key, state=wanted)


def apply_module_plan(
    session: Session, actor: Actor, plan: ModulePlan | pd.DataFrame, *, batch_size: int = 2000
) -> ModuleOutcome:
    """Apply the 'set'/'reset' rows of a plan; rows already in the wanted state are 'unchanged'.

    ``plan`` is a :class:`ModulePlan` or its frame read back from a file: each row names its
    module and wanted state. Scope is checked again for every row (a plan is a file an analyst
    may have edited), and the current state is re-read, so applying the same plan twice changes
    nothing the second time.
    """
    result = (plan.frame if isinstance(plan, ModulePlan) else plan).copy()
    result["outcome"] = "skipped"
    result["detail"] = [
        "" if reason is None or (not isinstance(reason, str) and pd.isna(reason)) else str(reason)
        for reason in result["reason"]
    ]
    todo = result[result["action"].isin(["set", "reset"])]
    if todo.empty:
        return ModuleOutcome(frame=result)
    wanted_of = todo["own_after"].map(_state_value)
    for (module, wanted), group in todo.groupby(
        [todo["module"], wanted_of.astype("string")], dropna=False
    ):
        key = module_key(str(module))
        state = _state_value(None if pd.isna(wanted) else wanted)
        ids = [int(i) for i in group["organisation_id"]]
        for chunk in chunks(ids, batch_size):
            _apply_chunk(session, actor, key, state, list(chunk), result)
    return ModuleOutcome(frame=result)


def _apply_chunk(
    session: Session,
    actor: Actor,
    key: str,
    wanted: bool | None,
    ids: list[int],
    result: pd.DataFrame,
) -> None:
    orgs = {
        row.id: row
        for row in session.execute(
            select(
                Organisation.id,
                Organisation.ref,
                Organisation.name,
                Organisation.path,
                Organisation.kind,
            ).where(Organisation.id.in_(ids))
        )
    }
    current = dict(
        session.execute(
            select(ModuleSetting.organisation_id, ModuleSetting.enabled).where(
                ModuleSetting.organisation_id.in_(ids), ModuleSetting.module == key
            )
        ).all()
    )
    to_insert, to_update, to_delete, events = [], [], [], []
    index_of = {int(i): idx for idx, i in result["organisation_id"].items() if pd.notna(i)}
    for org_id in ids:
        idx = index_of[org_id]
        row = orgs.get(org_id)
        if row is None:
            result.loc[idx, ["outcome", "detail"]] = ["skipped", _("no such organisation")]
            continue
        org = Organisation(id=row.id, ref=row.ref, name=row.name, path=row.path, kind=row.kind)
        try:
            _admin_only(actor, org)
        except AccessDeniedError as error:  # reported on the row, the others go on
            result.loc[idx, ["outcome", "detail"]] = ["skipped", str(error)]
            continue
        own = current.get(org_id)
        own = None if own is None else bool(own)
        if own == wanted:
            result.loc[idx, ["outcome", "detail"]] = [
                "unchanged",
                _("already in the wanted state"),
            ]
            continue
        if wanted is None:
            to_delete.append(org_id)
        elif own is None:
            to_insert.append({"organisation_id": org_id, "module": key, "enabled": wanted})
        else:
            to_update.append(org_id)
        events.append(
            audit.event_row(
                actor,
                "module.set" if wanted is not None else "module.reset",
                "organisation",
                org_id,
                target_label=row.ref,
                organisation_id=org_id,
                before={"module": key, "own": own},
                after={"module": key, "own": wanted, "impacts": list(CATALOGUE[key].impacts)},
            )
        )
        result.loc[idx, ["outcome", "detail"]] = ["applied", ""]
    if to_delete:
        session.execute(
            delete(ModuleSetting).where(
                ModuleSetting.organisation_id.in_(to_delete), ModuleSetting.module == key
            )
        )
    if to_update:
        session.execute(
            update(ModuleSetting)
            .where(and_(ModuleSetting.organisation_id.in_(to_update), ModuleSetting.module == key))
            .values(enabled=wanted, updated_at=utcnow())
        )
    if to_insert:
        insert_rows(session, ModuleSetting.__table__, to_insert)
    audit.record_many(session, events)
    session.flush()


def change_many(
    session: Session,
    actor: Actor,
    module: str,
    state: str | bool | None,
    *,
    refs: Iterable[str] | None = None,
    under: str | None = None,
    apply: bool = False,
) -> ModulePlan | ModuleOutcome:
    """Plan (and with ``apply``, apply) one module change across many clients."""
    plan = plan_module_change(session, actor, module, state, refs=refs, under=under)
    return apply_module_plan(session, actor, plan) if apply else plan
