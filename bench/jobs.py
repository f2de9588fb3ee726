"""Overhead of ``selfcare-ops jobs run`` over bare papermill, on the trivial ``ping`` job.

Both run the same notebook (the packaged ``ping.ipynb``) as separate processes, the way cron
would start them: ours adds the CLI, parameter validation, the database lock, the run record
before and after, and the kernel log. Ours also saves time where papermill does not: the kernel
boots while the run is recorded and papermill is imported, and papermill is imported without
jsonschema's optional rfc3987 grammar (about a second of CPU at every start; see
``selfcare_ops.jobs.runner._import_papermill``). Alternating repetitions after one warm-up of
each; the medians are compared. Must be <= 1.3. Last line: ``ratio=<ours/papermill>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selfcare_ops.jobs import get_job

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = get_job("ping").notebook_path()
BIN = Path(sys.executable).parent
REPETITIONS = int(os.environ.get("BENCH_JOBS_REPETITIONS", "7"))


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{completed.stdout}\n{completed.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="One repetition that only proves the benchmark runs."
    )
    repetitions = 1 if parser.parse_args().smoke else REPETITIONS
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        root = Path(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SELFCARE_OPS_")}
        env.update(
            SELFCARE_OPS_DATABASE_URL=f"sqlite:///{root / 'selfcare.db'}",
            SELFCARE_OPS_DATA_DIR=str(root / "data"),
            SELFCARE_OPS_RUNS_DIR=str(root / "runs"),
        )
        # A job acts as someone: the demo data bring the operator's system actor.
        subprocess.run(
            [str(BIN / "selfcare-ops"), "demo", "--no-jobs", "--quiet"],
            env=env,
            check=True,
            capture_output=True,
        )
        ours = [str(BIN / "selfcare-ops"), "jobs", "run", "ping"]
        baseline = [
            str(BIN / "papermill"),
            str(NOTEBOOK),
            str(root / "papermill-out.ipynb"),
            "-k",
            "python3",
            "--no-progress-bar",
            "--log-level",
            "WARNING",
        ]
        timed(ours, env), timed(baseline, env)  # warm-up: file cache, bytecode
        times: dict[str, list[float]] = {"ours": [], "papermill": []}
        for repetition in range(repetitions):
            pair = [("ours", ours), ("papermill", baseline)]
            for name, command in pair if repetition % 2 == 0 else pair[::-1]:
                times[name].append(timed(command, env))
        for name, values in times.items():
            shown = " ".join(f"{v:.2f}" for v in values)
            print(f"{name:>9}: median {statistics.median(values):.2f} s  ({shown})")
        ratio = statistics.median(times["ours"]) / statistics.median(times["papermill"])
        print(f"ours / papermill = {ratio:.3f} (must be <= 1.3)")
        print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
