"""Branding benchmark: effective branding and modules of every client of a 10,000-client tree.

Builds a database (SQLite file by default, or ``--url``) holding an operator, 40 partners with
4 sub-partners each (200 partners in all) and 10,000 clients spread under them, then stores
settings the way a real tree has them: the operator's defaults (logo, banner, colours,
message), a look of their own for every partner and for one client in four, and module
toggles on one partner in two and one client in five.

- OURS: ``branding.resolve_all(session, system actor)``: one call giving, for every client, the
  seven branding fields and the eight modules, each with the organisation it comes from, as a
  pandas DataFrame (four queries, resolution in Python).
- RAW: one hand-written SELECT on the DBAPI connection reading the settings tables joined to the
  tree they hang on (organisations LEFT JOIN branding_settings LEFT JOIN module_settings),
  rows fetched as tuples and nothing else done with them. The bare settings tables alone
  (no tree) are timed and printed too.

Each round times OURS, then RAW right after it (so both see the same load from the rest of the
machine), and the ratio is the median of the per-round ratios; best and median times of each
side are printed too. The last line is ``ratio=<ours/raw>`` (must be <= 5).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from selfcare_ops.access import system_actor
from selfcare_ops.branding import resolve_all, seed_default_branding
from selfcare_ops.organisations import create_operator
from selfcare_ops.store.db import make_engine, make_session_factory, upgrade
from selfcare_ops.store.models import MODULE_KEYS, BrandingSetting, ModuleSetting, Organisation

RAW_SQL = (
    "SELECT o.id, o.parent_id, o.ref, o.kind, o.path, b.logo_asset_id, b.primary_color, "
    "b.gradient_color, b.text_color, b.banner_asset_id, b.banner_link, b.banner_message, "
    "m.module, m.enabled FROM organisations o "
    "LEFT JOIN branding_settings b ON b.organisation_id = o.id "
    "LEFT JOIN module_settings m ON m.organisation_id = o.id"
)
BARE_SQL = (
    "SELECT organisation_id, logo_asset_id, primary_color, gradient_color, text_color, "
    "banner_asset_id, banner_link, banner_message, NULL, NULL FROM branding_settings "
    "UNION ALL SELECT organisation_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, module, "
    "enabled FROM module_settings"
)


def colour(rng: random.Random) -> str:
    return f"#{rng.randrange(0, 0x1000000):06x}"


def build(url: str, clients: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        operator, _ = create_operator(session, "OP", "Opérateur", login_domain="op.example")
        seed_default_branding(session)
        op_id, op_path = operator.id, operator.path
    orgs, branding, modules = [], [], []
    next_id = op_id + 1
    partners: list[tuple[int, str]] = []
    for p in range(40):
        pid, ppath = next_id, f"{op_path}{next_id}/"
        next_id += 1
        orgs.append(("partner", op_id, f"P{p:03d}", ppath, pid))
        partners.append((pid, ppath))
        for s in range(4):
            sid = next_id
            next_id += 1
            orgs.append(("partner", pid, f"P{p:03d}-{s}", f"{ppath}{sid}/", sid))
            partners.append((sid, f"{ppath}{sid}/"))
    client_rows = []
    for c in range(clients):
        parent_id, parent_path = partners[rng.randrange(len(partners))]
        cid = next_id
        next_id += 1
        orgs.append(("client", parent_id, f"C{c:05d}", f"{parent_path}{cid}/", cid))
        client_rows.append(cid)
    for pid, _ in partners:
        branding.append(
            {
                "organisation_id": pid,
                "primary_color": colour(rng),
                "gradient_color": rng.choice([None, "", colour(rng)]),
                "text_color": "#ffffff",
            }
        )
        if rng.random() < 0.5:
            for key in rng.sample(MODULE_KEYS, 2):
                modules.append(
                    {"organisation_id": pid, "module": key, "enabled": rng.random() < 0.5}
                )
    for cid in client_rows:
        if rng.random() < 0.25:
            branding.append(
                {
                    "organisation_id": cid,
                    "primary_color": colour(rng),
                    "banner_message": f"Bienvenue chez le client {cid}",
                    "banner_link": f"https://client{cid}.example/offres",
                }
            )
        if rng.random() < 0.2:
            for key in rng.sample(MODULE_KEYS, rng.randint(1, 3)):
                modules.append(
                    {"organisation_id": cid, "module": key, "enabled": rng.random() < 0.5}
                )
    with factory.begin() as session:
        session.execute(
            insert(Organisation),
            [
                {
                    "id": oid,
                    "kind": kind,
                    "parent_id": parent,
                    "ref": ref,
                    "name": f"Org {ref}",
                    "name_folded": f"org {ref.lower()}",
                    "path": path,
                }
                for kind, parent, ref, path, oid in orgs
            ],
        )
        session.execute(insert(BrandingSetting), branding)
        session.execute(insert(ModuleSetting), modules)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('organisations', 'id'), "
                "(SELECT max(id) FROM organisations))"
            )
        else:
            connection.exec_driver_sql("ANALYZE")
    print(
        f"tree: {len(orgs) + 1} organisations ({clients} clients), {len(branding) + 1} branding "
        f"rows, {len(modules)} module rows",
        flush=True,
    )
    engine.dispose()


@contextmanager
def private_database(url: str | None, tmp: Path) -> Iterator[str]:
    """A fresh SQLite file, or a private schema on the PostgreSQL server named by ``url``."""
    if not url:
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--url must name a PostgreSQL server (SQLite runs in a temporary file)")
    schema = f"bench_branding_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        help="a PostgreSQL server URL (a private schema is used, then dropped); "
        "default: a temporary SQLite file",
    )
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--smoke", action="store_true", help="A tiny size that only proves the benchmark runs (CI)."
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.rounds = 200, 2
    with tempfile.TemporaryDirectory() as tmp, private_database(args.url, Path(tmp)) as url:
        build(url, args.clients)
        engine = make_engine(url)
        backend = engine.dialect.name
        factory = make_session_factory(engine)
        ours, raw, bare = [], [], []
        rows = raw_rows = 0
        with factory() as session:  # warm-up, untimed: statement caches, page cache
            resolve_all(session, system_actor(session))
        for _ in range(args.rounds):
            with factory() as session:
                actor = system_actor(session)
                start = time.perf_counter()
                frame = resolve_all(session, actor)
                ours.append(time.perf_counter() - start)
                rows = len(frame)
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                start = time.perf_counter()
                cursor.execute(RAW_SQL)
                raw_rows = len(cursor.fetchall())
                raw.append(time.perf_counter() - start)
                start = time.perf_counter()
                cursor.execute(BARE_SQL)
                cursor.fetchall()
                bare.append(time.perf_counter() - start)
                cursor.close()
            finally:
                connection.close()
        engine.dispose()
    assert rows == args.clients, (rows, args.clients)
    t_ours, t_raw, t_bare = (min(x) for x in (ours, raw, bare))
    m_ours, m_raw = statistics.median(ours), statistics.median(raw)
    print(f"backend: {backend}")
    print(
        f"OURS resolve_all: {rows} clients x (7 fields + 8 modules, with sources) as a "
        f"DataFrame: best {t_ours * 1000:.1f} ms, median {m_ours * 1000:.1f} ms "
        f"({args.rounds} rounds)"
    )
    print(
        f"RAW one SELECT of the settings tables joined to the tree: {raw_rows} rows fetched: "
        f"best {t_raw * 1000:.1f} ms, median {m_raw * 1000:.1f} ms"
    )
    print(
        f"(bare settings tables without the tree: best {t_bare * 1000:.1f} ms; "
        f"best ours/raw={t_ours / t_raw:.2f}; ours/bare={t_ours / t_bare:.2f})"
    )
    ratio = statistics.median(o / r for o, r in zip(ours, raw, strict=True))
    print(f"ours/raw={ratio:.2f}, median of the per-round ratios (must be <= 5)")
    print(f"ratio={ratio:.2f}")
    return 0 if ratio <= 5 or args.smoke else 1  # a smoke size measures nothing


if __name__ == "__main__":
    sys.exit(main())
