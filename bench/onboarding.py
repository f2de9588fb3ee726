"""CSV onboarding benchmark: our validated, audited, idempotent import against the analyst's
unchecked pandas notebook writing the same rows, on SQLite and on PostgreSQL.

* NAIVE: a pandas notebook writing the same rows (users, invitations, outbox) with no check at
  all (:func:`naive_same_rows`): the comparison that counts (target: ours <= 1.2 x naive).
* OURS: a dry run (:func:`build_plan`) then :func:`apply_plan` with invitations queued, into a
  fresh demo database (migrate + ``load_demo``), on the same file.
* FLOOR: our own INSERTs replayed by raw sqlite3 into an identical database (the database's
  cost for the rows alone); on PostgreSQL, the same rows loaded with ``COPY`` by raw psycopg.
* BASELINE (for reference): ``read_csv`` + ``to_sql`` of the file into one empty table.

``--postgres URL`` (default: ``SELFCARE_OPS_TEST_POSTGRES_URL``) runs naive, ours and the copy
floor on that server too, each in a private schema dropped at the end; an unreachable server is
skipped with a sentence. ``--breakdown`` applies the same file again without invitations, to
split the cost between planning, writing users and queueing invitations. ``--million`` also
imports a generated 1,000,000-row multi-client file (50 clients, no invitations) with the
streaming :func:`import_users` in a child process and prints its rows per second and peak
memory (must stay under 1 GiB); it takes minutes, hence the flag (``--smoke`` runs it on a
tiny file). Ratios are wall-clock seconds (CPU ratios beside them on SQLite, where the
database runs in our process). The last lines are ``pg_ratio=<ours/naive on PostgreSQL>``
(when it ran) and ``ratio=<ours/naive on SQLite>``.

    .venv/bin/python bench/onboarding.py [--rows 100000] [--postgres URL] [--breakdown]
        [--million] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import JSON, TypeDecorator, cast, create_engine, event, text
from sqlalchemy.engine import make_url

from selfcare_ops.access import system_actor
from selfcare_ops.demo import load_demo
from selfcare_ops.onboarding import apply_plan, build_plan, import_users
from selfcare_ops.store import bulk_sql
from selfcare_ops.store.db import SQLITE_CACHE_KIB, make_engine, make_session_factory, upgrade

FIRST = (
    "Jean Marie Pierre Michel André Philippe René Louis Alain Jacques Bernard Marcel Daniel "
    "Roger Robert Paul Claude Christian Henri Georges Nicolas François Patrick Éric Stéphane "
    "Sébastien Julien Thomas Hélène Nathalie Isabelle Sylvie Catherine Françoise Monique "
    "Valérie Sandrine Céline Aurélie Émilie Chloé Léa Zoé Agnès Béatrice Cécile Gaëlle Noémie "
    "Anaïs Jérôme Loïc Mathéo Raphaël Anne Sophie Camille Manon Inès Océane Maëlle"
).split()
LAST = (
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel "
    "Lefèvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine "
    "Rousseau Vincent Müller Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier "
    "François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu "
    "Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun "
    "Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martínez Gérard Roche "
    "Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud "
    "Dumas Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq "
    "Guillaume Lecomte López Jean Dupuy Guillot Hubert Berger Carpentier Sanchez Dupuis Moulin "
    "Louis Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Paris Poirier "
    "Marty Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly "
    "Hervé Schneider Fernandez Le Gall Collet Léger Bouvier Julien Prévost Millet Perrot Daniel "
    "Le Roux Cousin Germain Breton Besson Langlois Rémy Le Goff Pelletier Lévêque Perrier "
    "Leblanc Barré Lebrun Marchal Weber Mallet Hamon Boulanger Jacob Monnier Michaud Rodriguez "
    "Guichard Gillet Étienne Grondin Poulain Tessier Chevallier Collin Chauvin Da Silva Bouchet "
    "Gay Lemaître Bénard Maréchal Humbert Reynaud Antoine Hoarau Perret Barthélemy Cordier Pichon"
).split()
FUNCTIONS = [
    "Comptable",
    "Responsable commercial",
    "Assistante de direction",
    "Technicien support",
    "Chargée de clientèle",
    "Directeur général",
    "",
]
DOMAINS = ["virginietelecom.example", "gmail.example", "orange.example", "entreprise.example"]
HEADER = (
    "Civilité;Nom;Prénom;Adresse e-mail;Téléphone;Mobile;Fonction;Sous-compte;Rôle;Langue;"
    "Gérer les droits;Passer commande;Voir les factures"
)


def _fold_ascii(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if c.isalnum() and c.isascii())


def generate(path: Path, rows: int, *, clients: list[str] | None = None, seed: int = 7) -> None:
    """A French-Excel-style file: ';', cp1252, CRLF, French headers (and a client column)."""
    rng = random.Random(seed)
    header = HEADER + (";Référence client" if clients else "")
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write(header + "\r\n")
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            civ = rng.choice(["M.", "Mme", "Monsieur", "Madame", ""])
            email = f"{_fold_ascii(first)}.{_fold_ascii(last)}{i}@{rng.choice(DOMAINS)}"
            pairs = " ".join(f"{rng.randrange(100):02d}" for _ in range(3))
            phone = f"0{rng.choice('1234')} {rng.randrange(10, 89)} {pairs}"
            mobile = f"+33 6 {rng.randrange(10, 30)} {pairs}"
            phone = phone if rng.random() < 0.6 else ""
            mobile = mobile if rng.random() < 0.7 else ""
            sub = rng.choice(["Commercial", "Agence Nantes", ""]) if not clients else ""
            role = rng.choice(["utilisateur", "Utilisateur", "user", ""])
            lang = rng.choice(["fr", "Français", "", "en"])
            rights = ";".join(rng.choice(["oui", "non", "x", "", "1", "0"]) for _ in range(3))
            cells = [
                civ,
                last,
                first,
                email,
                phone,
                mobile,
                rng.choice(FUNCTIONS),
                sub,
                role,
                lang,
                rights,
            ]
            if clients:
                cells.append(clients[i % len(clients)])
            out.write(";".join(cells) + "\r\n")


def fresh_demo(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        load_demo(session)
    engine.dispose()
    return url


class Clock:
    """Wall and CPU seconds of a block (the machine may be shared: CPU time is steadier)."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def baseline(csv_path: Path, db_path: Path) -> Clock:
    with Clock() as clock:
        frame = pd.read_csv(csv_path, sep=";", encoding="cp1252", dtype=str)
        engine = create_engine(f"sqlite:///{db_path}")
        frame.to_sql("users", engine, index=False)
        engine.dispose()
    return clock


#: The generated file's headers -> users columns (the naive import knows its one file).
NAIVE_COLUMNS = {
    "Civilité": "civility",
    "Nom": "last_name",
    "Prénom": "first_name",
    "Adresse e-mail": "email",
    "Téléphone": "phone",
    "Mobile": "mobile",
    "Fonction": "function",
}


def _ascii_folded(series: pd.Series) -> pd.Series:
    return (
        series.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii").str.lower()
    )


class _JsonText(TypeDecorator[str]):
    """JSON text the notebook made itself, sent as ``json`` (PostgreSQL will not cast text)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        return None

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast(bindvalue, JSON)


JSON_TEXT = _JsonText()


def naive_same_rows(csv_path: Path, url: str) -> Clock:
    """What an analyst's pandas notebook does to write the same rows, checking nothing.

    ``read_csv``, logins and the derived columns with vectorised string methods, then
    ``to_sql`` of the users (into the real table, with its indexes), their invitations
    (tokens hashed) and one outbox row each pointing at a stored template. No validation,
    no duplicate or conflict checks, no audit, no batches, no report.
    """
    engine = make_engine(url)
    with Clock() as clock:
        frame = pd.read_csv(csv_path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
        users = frame[list(NAIVE_COLUMNS)].rename(columns=NAIVE_COLUMNS)
        with engine.connect() as connection:
            client_id, domain = connection.exec_driver_sql(
                "SELECT id, login_domain FROM organisations WHERE ref = 'C0001'"
            ).one()
        last = _ascii_folded(users["last_name"]).str.replace(r"[^a-z0-9]", "", regex=True)
        first = _ascii_folded(users["first_name"]).str.replace(r"[^a-z0-9]", "", regex=True)
        suffix = f"@{(domain or '').lower()}"
        taken = set(
            pd.read_sql(
                text("SELECT login FROM users WHERE login LIKE :pattern"),
                engine,
                params={"pattern": f"%{suffix}"},
            )["login"]
        )
        logins, next_number = [], {}
        for stem in (first.str[:1] + last).tolist():  # the loop every notebook ends up with
            number = next_number.get(stem, 1)
            while (login := f"{stem}{number if number > 1 else ''}{suffix}") in taken:
                number += 1
            taken.add(login)
            next_number[stem] = number
            logins.append(login)
        users["login"] = logins
        users["civility"] = users["civility"].map(
            {"M.": "M.", "Monsieur": "M.", "Mme": "Mme", "Madame": "Mme"}
        )
        users = users.replace({"": None})
        stamp = pd.Timestamp.now(tz="UTC")
        now_text = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
        # SQLite stores timestamps as this text; PostgreSQL's timestamptz wants a timestamp.
        sqlite = engine.dialect.name == "sqlite"
        now = now_text if sqlite else stamp
        users["sort_name"] = last + " " + first
        users["search_text"] = first + " " + last + " " + users["login"] + " " + users["email"]
        users["email_folded"] = users["email"].str.lower()
        users = users.assign(
            client_id=client_id,
            role="user",
            status="invited",
            right_manage_rights=False,
            right_place_orders=False,
            right_view_invoices=False,
            status_changed_at=now,
            invited_at=now,
            created_at=now,
            updated_at=now,
        )
        users = users[users["email"].notna()]
        users.to_sql("users", engine, if_exists="append", index=False)
        ids = pd.read_sql(f"SELECT id, login FROM users WHERE client_id = {int(client_id)}", engine)
        users = users.merge(ids, on="login")
        tokens = [secrets.token_urlsafe(32) for _ in range(len(users))]
        with engine.begin() as connection:
            template_id = connection.exec_driver_sql(
                "INSERT INTO mail_templates (sha256, kind, language, subject, body_text, "
                "created_at) VALUES ('naive', 'invitation_user', 'fr', 'Votre accès', "
                f"'Bonjour \x1efull_name\x1e', '{now_text}') RETURNING id"
            ).scalar()
        keys = [f"naive-{user_id}" for user_id in users["id"]]
        pd.DataFrame(
            {
                "message_key": keys,
                "kind": "invitation",
                "recipient": users["email"].to_numpy(),
                "template_id": template_id,
                "person": [
                    json.dumps(
                        {
                            "full_name": f"{f} {la}",
                            "login": lo,
                            "link": f"https://portal.example/invitation/{t}",
                        }
                    )
                    for f, la, lo, t in zip(
                        users["first_name"], users["last_name"], users["login"], tokens, strict=True
                    )
                ],
                "language": "fr",
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        ).to_sql(
            "outbound_messages",
            engine,
            if_exists="append",
            index=False,
            dtype=None if sqlite else {"person": JSON_TEXT},
        )
        messages = pd.read_sql(
            text(
                "SELECT id AS message_id, message_key FROM outbound_messages "
                "WHERE message_key LIKE 'naive-%'"
            ),
            engine,
        )
        pd.DataFrame(
            {
                "kind": "user",
                "user_id": users["id"].to_numpy(),
                "organisation_id": client_id,
                "email": users["email"].to_numpy(),
                "token_hash": [hashlib.sha256(t.encode()).hexdigest() for t in tokens],
                "status": "pending",
                "created_at": now,
                "expires_at": now,
                "created_by": "naive",
                "message_key": keys,
            }
        ).merge(messages, on="message_key").drop(columns="message_key").to_sql(
            "invitations", engine, if_exists="append", index=False
        )
    engine.dispose()
    return clock


def ours(
    csv_path: Path,
    url: str,
    *,
    invite: bool = True,
    captured: list[tuple[str, Any]] | None = None,
    copied: list[tuple[str, str, Any]] | None = None,
) -> tuple[Clock, Clock, dict[str, int]]:
    """Our import; ``captured`` collects its INSERT statements (SQLite floor), ``copied``
    every write in order, bulk rows included (PostgreSQL's COPY floor)."""
    engine = make_engine(url)
    in_bulk = False
    if captured is not None or copied is not None:

        @event.listens_for(engine, "before_cursor_execute")
        def capture(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT"):
                rows = parameters if executemany else [parameters]
                if captured is not None:
                    captured.append((statement, rows))
                if copied is not None and not in_bulk:
                    copied.append(("sql", statement, rows))

    original = bulk_sql._driver_insert
    if copied is not None:

        def recording(connection, table, columns, records):  # type: ignore[no-untyped-def]
            nonlocal in_bulk
            preparer = connection.dialect.identifier_preparer
            names = ", ".join(preparer.format_column(column) for column in columns)
            copied.append(
                ("copy", f"COPY {preparer.format_table(table)} ({names}) FROM STDIN", records)
            )
            in_bulk = True
            try:
                original(connection, table, columns, records)
            finally:
                in_bulk = False

        bulk_sql._driver_insert = recording
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            actor = system_actor(session)
            with Clock() as planned:
                plan = build_plan(session, actor, csv_path, client_ref="C0001", invite=invite)
        with Clock() as applied:
            report = apply_plan(factory, actor, plan)
    finally:
        bulk_sql._driver_insert = original
    engine.dispose()
    return planned, applied, report.counts


def floor(db_path: Path, captured: list[tuple[str, Any]]) -> tuple[Clock, dict[str, float]]:
    """Our own INSERTs replayed by raw sqlite3 into an identical fresh database.

    The same statements with the same ready-made parameters, the same pragmas, one
    transaction: what the database alone costs for the rows an import must write (users with
    their indexes, invitations, mails), without any Python work. A lower bound for ours.
    """
    connection = sqlite3.connect(db_path, isolation_level=None)
    for pragma in (
        "journal_mode = WAL",
        "synchronous = NORMAL",
        "foreign_keys = ON",
        f"cache_size = -{SQLITE_CACHE_KIB}",
        "temp_store = MEMORY",
    ):
        connection.execute(f"PRAGMA {pragma}")
    by_table: dict[str, float] = {}
    with Clock() as clock:
        connection.execute("BEGIN IMMEDIATE")
        for statement, parameters in captured:
            table = statement.split()[2].strip('"')  # INSERT INTO <table> ...
            start = time.perf_counter()
            if len(parameters) == 1:
                connection.execute(statement, parameters[0]).fetchall()
            else:
                connection.executemany(statement, parameters)
            by_table[table] = by_table.get(table, 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        connection.execute("COMMIT")
        by_table["(commit)"] = time.perf_counter() - start
    connection.close()
    return clock, by_table


def copy_floor(url: str, copied: list[tuple[str, str, Any]]) -> Clock:
    """Our writes replayed by raw psycopg into an identical database, the bulk rows by COPY.

    What PostgreSQL alone costs for the rows an import writes, loaded the fastest way it
    offers, in one transaction: a lower bound for ours (and for any notebook).
    """
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection, Clock() as clock:
        with connection.cursor() as cursor:
            for kind, statement, rows in copied:
                if kind == "copy":
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
                elif len(rows) == 1:
                    cursor.execute(statement, rows[0])
                else:
                    cursor.executemany(statement, rows)
        connection.commit()
    return clock


class PostgresSchemas:
    """Private schemas on the server, each a fresh demo database; dropped on exit."""

    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        self.engine = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def reachable(self) -> str | None:
        """None when the server answers, else the sentence saying why it is skipped."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception as error:  # any failure means: skip, saying why
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            return f"PostgreSQL at {self.base.render_as_string()} is unreachable ({first})"
        return None

    def fresh(self, role: str, *, demo: bool = True) -> str:
        name = f"bench_{role}_{os.getpid()}_{secrets.token_hex(3)}"
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.names.append(name)
        url = self.base.update_query_dict({"options": f"-csearch_path={name}"})
        text = url.render_as_string(hide_password=False)
        if demo:
            engine = make_engine(text)
            upgrade(engine)
            with make_session_factory(engine).begin() as session:
                load_demo(session)
            engine.dispose()
        return text

    def close(self) -> None:
        with self.engine.connect() as connection:
            for name in self.names:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.engine.dispose()


def postgres_run(csv_path: Path, url: str, naive_sqlite: Clock) -> float | None:
    """Naive, ours and the COPY floor on PostgreSQL; returns ours / naive (None: skipped)."""
    schemas = PostgresSchemas(url)
    reason = schemas.reachable()
    if reason:
        print(f"PostgreSQL: skipped: {reason}.")
        schemas.engine.dispose()
        return None
    try:
        naive = naive_same_rows(csv_path, schemas.fresh("naive"))
        copied: list[tuple[str, str, Any]] = []
        floor_url = schemas.fresh("floor")
        plan_t, apply_t, counts = ours(csv_path, schemas.fresh("ours"), copied=copied)
        lower = copy_floor(floor_url, copied)
    finally:
        schemas.close()
    wall = plan_t.wall + apply_t.wall
    print(
        f"PostgreSQL: naive pandas to_sql of the same rows {naive.wall:.2f} s "
        f"({naive.wall / naive_sqlite.wall:.2f}x the same notebook on SQLite); ours: plan "
        f"{plan_t.wall:.2f} s + apply {apply_t.wall:.2f} s = {wall:.2f} s; COPY floor (our "
        f"rows by raw psycopg) {lower.wall:.2f} s"
    )
    print(f"PostgreSQL ours counts: {counts}")
    print(
        f"PostgreSQL: ours / naive = {wall / naive.wall:.2f} (target <= 1.2); "
        f"ours / copy floor = {wall / lower.wall:.2f}"
    )
    return wall / naive.wall


def million_child(csv_path: str, url: str, report_path: str) -> None:
    """Runs in its own process so that its peak memory is the import's alone."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        actor = system_actor(session)
    start = time.perf_counter()
    report = import_users(
        factory, actor, csv_path, report_path=report_path, keep_rows=False, chunk_size=20000
    )
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.1f} {peak_mib:.0f} {report.counts['create']} {report.counts['reject']}")


def million_run(work: Path, rows: int) -> None:
    """The streamed import of a big multi-client file in a child process: speed and memory."""
    big = work / "million.csv"
    clients = [f"C{n:04d}" for n in range(1, 51)]
    generate(big, rows, clients=clients, seed=11)
    url = fresh_demo(work / "million.db")
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(big), url, str(work / "report.csv")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    elapsed, peak, created, rejected = out[-4:]
    print(
        f"{rows:,}-row multi-client file ({len(clients)} clients), streamed: {elapsed} s = "
        f"{rows / max(float(elapsed), 1e-9):,.0f} rows/s, {created} created, {rejected} "
        f"rejected, peak memory {peak} MiB (limit {MILLION_LIMIT_MIB} MiB)"
    )
    if float(peak) > MILLION_LIMIT_MIB:
        raise SystemExit(f"The streamed import's peak memory {peak} MiB is over the limit.")


#: The streamed import's peak memory limit (the 1,000,000-row file took 789 MiB).
MILLION_LIMIT_MIB = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("SELFCARE_OPS_TEST_POSTGRES_URL"),
        help="Also run on this PostgreSQL server (default: SELFCARE_OPS_TEST_POSTGRES_URL).",
    )
    parser.add_argument("--million", action="store_true", help="Also run the 1,000,000-row file.")
    parser.add_argument("--million-rows", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--breakdown", action="store_true", help="Also apply without invitations, to split costs."
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke", action="store_true", help="A tiny size that only proves the benchmark runs (CI)."
    )
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.million, args.million_rows = 2_000, True, 3_000
    if args.child:
        million_child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-onboarding-") as tmp:
        work = Path(tmp)
        csv_path = work / "users.csv"
        generate(csv_path, args.rows)
        size_mib = csv_path.stat().st_size / 2**20
        print(f"file: {args.rows} rows, {size_mib:.1f} MiB, ';' cp1252 CRLF, French headers")
        base = baseline(csv_path, work / "baseline.db")
        print(
            f"baseline read_csv + to_sql into one empty table (no validation): {base.wall:.2f} s "
            f"(cpu {base.cpu:.2f} s)"
        )
        naive = naive_same_rows(csv_path, fresh_demo(work / "naive.db"))
        print(
            f"naive pandas notebook writing the same rows (no checks, no audit, no batches): "
            f"{naive.wall:.2f} s (cpu {naive.cpu:.2f} s)"
        )
        url = fresh_demo(work / "ours.db")
        shutil.copy(work / "ours.db", work / "floor.db")
        captured: list[tuple[str, Any]] = []
        plan_t, apply_t, counts = ours(csv_path, url, captured=captured)
        wall, cpu = plan_t.wall + apply_t.wall, plan_t.cpu + apply_t.cpu
        print(
            f"ours dry run (plan): {plan_t.wall:.2f} s (cpu {plan_t.cpu:.2f} s); apply with "
            f"invitations queued: {apply_t.wall:.2f} s (cpu {apply_t.cpu:.2f} s); "
            f"total {wall:.2f} s (cpu {cpu:.2f} s)"
        )
        print(f"ours counts: {counts}")
        lower, by_table = floor(work / "floor.db", captured)
        rows_written = sum(len(parameters) for _, parameters in captured)
        print(
            f"floor: our {len(captured)} INSERT statements ({rows_written} rows) replayed by raw "
            f"sqlite3, no Python work: {lower.wall:.2f} s (cpu {lower.cpu:.2f} s)"
        )
        shares = sorted(by_table.items(), key=lambda item: -item[1])
        print(
            "  floor by table: "
            + ", ".join(f"{table} {seconds / lower.wall:.0%}" for table, seconds in shares)
        )
        ratio = wall / naive.wall
        print(
            f"ours / naive = {ratio:.2f} wall, {cpu / naive.cpu:.2f} cpu (target <= 1.2, "
            f"aim <= 1.0); ours / floor = {wall / lower.wall:.2f} wall, {cpu / lower.cpu:.2f} "
            f"cpu (aim <= 1.5); ours / baseline = {wall / base.wall:.2f} wall"
        )
        if args.breakdown:
            _, bare, _ = ours(csv_path, fresh_demo(work / "bare.db"), invite=False)
            queued = Clock()
            queued.wall, queued.cpu = apply_t.wall - bare.wall, apply_t.cpu - bare.cpu
            for label, part in (
                ("plan", plan_t),
                ("apply without invitations", bare),
                ("invitations (difference)", queued),
            ):
                print(
                    f"  {label}: {part.wall / naive.wall:.2f}x naive wall, "
                    f"{part.cpu / naive.cpu:.2f}x cpu"
                )
        pg_ratio = postgres_run(csv_path, args.postgres, naive) if args.postgres else None
        if not args.postgres:
            print("PostgreSQL: skipped: no --postgres URL and no SELFCARE_OPS_TEST_POSTGRES_URL.")
        if args.million:
            million_run(work, args.million_rows)
        if pg_ratio is not None:
            print(f"pg_ratio={pg_ratio:.2f}")
        print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
