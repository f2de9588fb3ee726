"""Directory benchmark: the cost of a page must follow the page size, not the database size.

Builds two SQLite databases with the same tree shape (1 operator, 32 partners, 700 clients with
skewed sizes) holding 10,000 and 1,000,000 users, then times on each (median of many runs):
(a) a client search, (b) the first and the tenth page of the largest client's users following
the keyset cursors the API gives, (c) the client list page with its per-status counts, and
(d) the same rows fetched by hand-written SQL on the raw DBAPI connection: the same filters and
the same total of matching clients (the "Page 1 / 33" label), turned into the same DataFrame
since that is what the API returns (the bare fetch is printed too).
Prints large/small ratios and listing/raw ratios; the last line is ``ratio=<worst large/small>``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from selfcare_ops import directory
from selfcare_ops.access import system_actor
from selfcare_ops.accounts.logins import login_stem
from selfcare_ops.organisations import create_operator
from selfcare_ops.store.db import make_engine, make_session_factory, upgrade
from selfcare_ops.store.models import ACCOUNT_STATUSES, recount_users
from selfcare_ops.support.textnorm import fold

FIRST = [
    "Jean",
    "Marie",
    "Cédric",
    "Véronique",
    "Hélène",
    "Loïc",
    "Zoé",
    "Noël",
    "Anaïs",
    "Jérôme",
    "Élodie",
    "François",
    "Gaëlle",
    "Maël",
    "Agnès",
    "Raphaël",
    "Inès",
    "Benoît",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Lefèvre",
    "Moreau",
    "Simon",
    "Laurent",
    "Michel",
    "Garcia",
    "Bubu",
    "Pichon",
    "Duduche",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
]
PAGE_SIZE = 20


def client_sizes(users: int, clients: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 8) ** 0.9 for rank in range(clients)]
    rng.shuffle(weights)
    total = sum(weights)
    sizes = [max(1, int(users * w / total)) for w in weights]
    sizes[weights.index(max(weights))] += users - sum(sizes)
    return sizes


def build(path: Path, users: int, clients: int = 700, partners: int = 32) -> None:
    """A migrated SQLite database with the tree and ``users`` users (bulk inserted)."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        create_operator(session, "OP", "Opérateur")
    rng = random.Random(11)
    now = datetime(2026, 1, 1, tzinfo=UTC).isoformat(" ")
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("BEGIN")
    orgs = []
    for number in range(1, partners + 1):
        orgs.append(
            (
                number + 1,
                "partner",
                1,
                f"P{number:03d}",
                f"Partenaire {number}",
                f"partenaire {number}",
                f"/1/{number + 1}/",
            )
        )
    for number in range(1, clients + 1):
        oid = partners + 1 + number
        parent = 2 + (number % partners)
        name = f"Client {number:04d}" + (" Télécom" if number % 9 == 0 else " Services")
        orgs.append(
            (oid, "client", parent, f"C{number:04d}", name, fold(name), f"/1/{parent}/{oid}/")
        )
    cursor.executemany(
        "INSERT INTO organisations (id, kind, parent_id, ref, name, name_folded, path, "
        f"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, '{now}', '{now}')",
        orgs,
    )
    statuses = list(ACCOUNT_STATUSES)
    batch: list[tuple] = []
    login_number = 0
    for index, size in enumerate(client_sizes(users, clients)):
        client_id = partners + 2 + index
        for _ in range(size):
            login_number += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            login = f"{login_stem(first, last)}{login_number}@c{client_id}.example"
            status = rng.choices(statuses, (40, 22, 33, 5))[0]
            dated = now if status != "not_invited" else None
            batch.append(
                (
                    client_id,
                    login,
                    first,
                    last,
                    fold(f"{last} {first}"),
                    fold(f"{first} {last} {login}"),
                    status,
                    dated,
                    dated if status in ("active", "deactivated") else None,
                    dated if status == "deactivated" else None,
                )
            )
            if len(batch) >= 50_000:
                _insert_users(cursor, batch, now)
                batch.clear()
    _insert_users(cursor, batch, now)
    cursor.execute("COMMIT")
    raw.close()
    # Raw INSERTs do not count themselves (their writer must): rebuild the per-client counts.
    with engine.begin() as connection:
        recount_users(connection)
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def _insert_users(cursor, rows: list[tuple], now: str) -> None:  # type: ignore[no-untyped-def]
    cursor.executemany(
        "INSERT INTO users (client_id, login, first_name, last_name, sort_name, search_text, "
        "status, invited_at, activated_at, deactivated_at, role, right_manage_rights, "
        "right_place_orders, right_view_invoices, status_changed_at, created_at, updated_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'user', 0, 0, 0, '{now}', '{now}', '{now}')",
        rows,
    )


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm caches (SQLAlchemy's statement cache, SQLite's page cache)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


RAW_CLIENT_PAGE = """
SELECT c.ref, c.name, p.ref, p.name,
       COALESCE(SUM(CASE WHEN n.status = 'not_invited' THEN n.users END), 0),
       COALESCE(SUM(CASE WHEN n.status = 'invited' THEN n.users END), 0),
       COALESCE(SUM(CASE WHEN n.status = 'active' THEN n.users END), 0),
       COALESCE(SUM(CASE WHEN n.status = 'deactivated' THEN n.users END), 0), page.total
FROM (SELECT id, name_folded, count(*) OVER () AS total FROM organisations
      WHERE kind = 'client' {where} ORDER BY name_folded, id LIMIT {limit}) page
JOIN organisations c ON c.id = page.id JOIN organisations p ON p.id = c.parent_id
LEFT JOIN client_user_counts n ON n.client_id = c.id
GROUP BY page.name_folded, c.id ORDER BY page.name_folded, c.id
"""
RAW_USER_PAGE = """
SELECT u.login, u.civility, u.first_name, u.last_name, u.email, u.phone, u.mobile, u.status,
       u.status_changed_at, u.invited_at, u.activated_at, u.deactivated_at, s.name, u.role,
       u.right_manage_rights, u.right_place_orders, u.right_view_invoices, u.services,
       u.function, u.language, u.draft, i.status, i.sent_at, i.expires_at, i.status_reason,
       u.id, u.sort_name
FROM users u LEFT JOIN sub_accounts s ON s.id = u.sub_account_id
LEFT JOIN invitations i ON i.id = (
    SELECT max(id) FROM invitations WHERE user_id = u.id AND kind = 'user')
WHERE u.client_id = ? AND (u.sort_name, u.id) > (?, ?)
ORDER BY u.sort_name, u.id LIMIT ?
"""


def measure(path: Path, repeat: int) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    results: dict[str, float] = {}
    with sessions() as session:
        actor = system_actor(session)
        biggest = session.execute(
            directory.select_biggest_client()
            if hasattr(directory, "select_biggest_client")
            else _biggest_client_query()
        ).scalar_one()
        client_id = session.execute(_client_id_query(biggest)).scalar_one()
        cursor = None
        for _ in range(9):
            cursor = directory.list_users(
                session, actor, biggest, page_size=PAGE_SIZE, cursor=cursor, with_total=False
            ).next_cursor
        page10_cursor = cursor
        results["client search"] = median_seconds(
            lambda: directory.search_clients(session, actor, "telecom", page_size=PAGE_SIZE), repeat
        )
        results["users page 1"] = median_seconds(
            lambda: directory.list_users(session, actor, biggest, page_size=PAGE_SIZE), repeat
        )
        results["users page 10"] = median_seconds(
            lambda: directory.list_users(
                session, actor, biggest, page_size=PAGE_SIZE, cursor=page10_cursor
            ),
            repeat,
        )
        results["client list page"] = median_seconds(
            lambda: directory.search_clients(session, actor, page_size=PAGE_SIZE), repeat
        )

    raw = engine.raw_connection()
    after_name, after_id = directory._decode_cursor(page10_cursor)

    def raw_users(name: str, user_id: int, frame: bool):  # type: ignore[no-untyped-def]
        rows = raw.execute(RAW_USER_PAGE, (client_id, name, user_id, PAGE_SIZE + 1)).fetchall()
        return pd.DataFrame.from_records(rows[:PAGE_SIZE]) if frame else rows

    def raw_clients(where: str, frame: bool):  # type: ignore[no-untyped-def]
        sql = RAW_CLIENT_PAGE.format(where=where, limit=PAGE_SIZE)
        rows = raw.execute(sql).fetchall()
        return pd.DataFrame.from_records(rows) if frame else rows

    search = "AND (name_folded LIKE '%telecom%' OR lower(ref) LIKE '%telecom%')"
    for frame in (True, False):
        suffix = "" if frame else " (bare fetch)"
        results["raw client search" + suffix] = median_seconds(
            lambda f=frame: raw_clients(search, f), repeat
        )
        results["raw users page 1" + suffix] = median_seconds(
            lambda f=frame: raw_users("", 0, f), repeat
        )
        results["raw users page 10" + suffix] = median_seconds(
            lambda f=frame: raw_users(after_name, after_id, f), repeat
        )
        results["raw client list page" + suffix] = median_seconds(
            lambda f=frame: raw_clients("", f), repeat
        )
    raw.close()
    engine.dispose()
    return results


def _biggest_client_query():  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from selfcare_ops.store.models import ClientUserCount, Organisation

    return (
        select(Organisation.ref)
        .join(ClientUserCount, ClientUserCount.client_id == Organisation.id)
        .group_by(Organisation.ref)
        .order_by(func.sum(ClientUserCount.users).desc())
        .limit(1)
    )


def _client_id_query(ref: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from selfcare_ops.store.models import Organisation

    return select(Organisation.id).where(Organisation.ref == ref)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument(
        "--smoke", action="store_true", help="A tiny size that only proves the benchmark runs (CI)."
    )
    args = parser.parse_args()
    if args.smoke:
        args.small, args.large, args.repeat = 2_000, 20_000, 5  # page 10 must exist
    with tempfile.TemporaryDirectory(prefix="selfcare-bench-") as folder:
        timings = {}
        for label, size in (("small", args.small), ("large", args.large)):
            path = Path(folder) / f"{label}.db"
            start = time.perf_counter()
            build(path, size)
            print(
                f"built {label} database: {size:,} users in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
            timings[label] = measure(path, args.repeat)
    small, large = timings["small"], timings["large"]
    print(f"\n{'operation':38} {'10k users':>11} {'1M users':>11} {'large/small':>12}")
    worst = 0.0
    for name in small:
        ratio = large[name] / small[name]
        if not name.startswith("raw"):
            worst = max(worst, ratio)
        print(f"{name:38} {small[name] * 1e3:9.3f}ms {large[name] * 1e3:9.3f}ms {ratio:11.2f}x")
    print("\nlisting / raw SQL on 1M users (same DataFrame; bare fetch in brackets):")
    worst_raw = 0.0
    for name in ("client search", "users page 1", "users page 10", "client list page"):
        ratio = large[name] / large[f"raw {name}"]
        bare = large[name] / large[f"raw {name} (bare fetch)"]
        worst_raw = max(worst_raw, ratio)
        print(f"  {name:24} {ratio:5.2f}x  ({bare:.2f}x)")
    verdict = "ok" if worst <= 1.5 and worst_raw <= 3.0 else "ABOVE TARGET"
    print(
        f"\nworst large/small {worst:.2f} (target <= 1.5), worst listing/raw {worst_raw:.2f} "
        f"(target <= 3): {verdict}"
    )
    print(f"ratio={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
