"""CLI start-up: what a cron line or a shell loop pays for each ``selfcare-ops`` call.

* ``selfcare-ops --help`` against ``python -c "import click"`` (a click program that does
  nothing): commands load lazily, so the help imports click and the command list only.
* ``selfcare-ops users list C0001 --json`` on the demo database against a plain Python script
  doing the same query with the same libraries: SQLAlchemy runs the very statements the command
  ran (captured once here), pandas holds the rows, ``json`` prints them.

Each pair runs as separate processes, alternating, after one warm-up of each (which also
writes our modules' bytecode, as an installed wheel has it); the medians are compared. Must be
<= 1.5 each. The last line is ``ratio=<the worse of the two>``. Each line also gives the ratio
of the processes' CPU time (user + system), which a busy machine disturbs less than the
elapsed time the target is about.

    .venv/bin/python bench/cli.py [--repetitions 7] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from selfcare_ops import directory
from selfcare_ops.access import system_actor
from selfcare_ops.demo import load_demo
from selfcare_ops.store.db import make_engine, make_session_factory, upgrade

BIN = Path(sys.executable).parent
CLIENT = "C0001"

#: The plain script: the same statements through SQLAlchemy, rows in pandas, JSON out.
PLAIN = """
import json, pickle, sys
import pandas as pd
from sqlalchemy import create_engine

url, statements = pickle.load(open(sys.argv[1], "rb"))
engine = create_engine(url)
with engine.connect() as connection:
    frames = [
        pd.DataFrame(connection.exec_driver_sql(sql, params).mappings().all())
        for sql, params in statements
    ]
frame = pd.concat([f for f in frames if "login" in f], ignore_index=True)  # the users
print(json.dumps(frame.to_dict(orient="records"), ensure_ascii=False, indent=2, default=str))
"""


def demo_database(root: Path) -> str:
    url = f"sqlite:///{root / 'selfcare.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        load_demo(session)
    engine.dispose()
    return url


def listing_statements(url: str) -> list[tuple[str, Any]]:
    """The SELECTs ``users list CLIENT`` runs to list the users (not its checks of the actor
    and the schema, which the plain script does not do)."""
    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []
    factory = make_session_factory(engine)
    with factory() as session:
        actor = system_actor(session)

        @event.listens_for(engine, "before_cursor_execute")
        def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
            seen.append((statement, parameters))

        directory.iter_users(session, actor, CLIENT)
    engine.dispose()
    return seen


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(elapsed, CPU time of the process and its children) of one run, in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def compare(
    label: str, ours: list[str], reference: list[str], env: dict[str, str], repetitions: int
) -> float:
    timed(ours, env), timed(reference, env)  # warm the file cache for both
    mine, theirs = [], []
    for _ in range(repetitions):
        mine.append(timed(ours, env))
        theirs.append(timed(reference, env))
    elapsed_mine, elapsed_theirs = [e for e, _ in mine], [e for e, _ in theirs]
    ratio = statistics.median(elapsed_mine) / statistics.median(elapsed_theirs)
    cpu_mine = statistics.median(c for _, c in mine)
    cpu_theirs = statistics.median(c for _, c in theirs)
    print(
        f"{label}: ours median {statistics.median(elapsed_mine) * 1000:.0f} ms "
        f"(range {min(elapsed_mine) * 1000:.0f}-{max(elapsed_mine) * 1000:.0f}), reference "
        f"median {statistics.median(elapsed_theirs) * 1000:.0f} ms (range "
        f"{min(elapsed_theirs) * 1000:.0f}-{max(elapsed_theirs) * 1000:.0f}): ratio "
        f"{ratio:.2f} (target <= 1.5); CPU {cpu_mine * 1000:.0f} ms vs "
        f"{cpu_theirs * 1000:.0f} ms: ratio {cpu_mine / cpu_theirs:.2f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument(
        "--smoke", action="store_true", help="One repetition that only proves the benchmark runs."
    )
    args = parser.parse_args()
    repetitions = 1 if args.smoke else args.repetitions
    command = str(BIN / "selfcare-ops")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        root = Path(folder)
        url = demo_database(root)
        # Without PYTHONDONTWRITEBYTECODE: the first run compiles our modules once, as pip does
        # when it installs the wheel and as click's came compiled; else every run of ours would
        # compile them again while the reference imports click's bytecode.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SELFCARE_OPS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env.update(SELFCARE_OPS_DATABASE_URL=url, SELFCARE_OPS_DATA_DIR=str(root / "data"))
        statements = root / "statements.pickle"
        captured = listing_statements(url)
        statements.write_bytes(pickle.dumps((url, captured)))
        script = root / "plain.py"
        script.write_text(PLAIN)
        users = subprocess.run(
            [command, "users", "list", CLIENT, "--json"], env=env, capture_output=True, text=True
        )
        plain = subprocess.run(
            [python, str(script), str(statements)], env=env, capture_output=True, text=True
        )
        key = '"login"'
        if users.returncode or plain.returncode or key not in users.stdout:
            raise SystemExit(f"users list failed:\n{users.stderr}\n{plain.stderr}")
        print(
            f"users list {CLIENT} --json prints {users.stdout.count(key)} users, the plain "
            f"script {plain.stdout.count(key)} ({len(captured)} statement(s))"
        )
        worst = max(
            compare(
                "selfcare-ops --help vs python -c 'import click'",
                [command, "--help"],
                [python, "-c", "import click"],
                env,
                repetitions,
            ),
            compare(
                f"selfcare-ops users list {CLIENT} --json vs a plain script, same query",
                [command, "users", "list", CLIENT, "--json"],
                [python, str(script), str(statements)],
                env,
                repetitions,
            ),
        )
    print(f"ratio={worst:.2f}")


if __name__ == "__main__":
    main()
