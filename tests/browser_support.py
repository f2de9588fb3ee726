"""What the real-browser tests share: Debian's Chromium, its flags, the viewport, a free port,
and a Voila server on the dashboard with the project's configuration.

Chromium comes from the distribution (``apt-get install chromium``, which ``.ci/run`` does),
never from Playwright's download; a missing browser skips the test, and fails it in CI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from smtp_support import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}


def require_browser() -> Path:
    """Chromium's path; skips (fails in CI) when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must install it.", pytrace=False)
        pytest.skip(reason)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Playwright for Python is not installed (test extra).", pytrace=False)
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    return CHROMIUM


def demo_database(folder: Path) -> str:
    """The URL of a migrated SQLite demo database with the operator's default branding (what
    ``make demo`` loads, without its jobs): the start of every browser scenario."""
    from selfcare_ops.branding import seed_default_branding
    from selfcare_ops.demo import load_demo
    from selfcare_ops.store.db import make_engine, make_session_factory, upgrade

    url = f"sqlite:///{folder / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine).begin() as session:
        load_demo(session)
        seed_default_branding(session)  # the operator's look, inherited by every client
    engine.dispose()
    return url


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started for a test: politely, then for good after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "dashboard.ipynb"

#: An IPython start-up file given to the dashboard's kernels (through ``IPYTHONDIR``). It runs
#: once ipykernel and IPython are loaded, just before the kernel answers Voila's first request,
#: and appends "<pid> <event> <time.time()>" lines to the file named in it: ``ready`` then, and
#: ``cell-start`` / ``cell-end`` around every cell run (Voila's own one-line cell first, then the
#: notebook's: the last pair is the dashboard's cell). ``ready`` is "the kernel is ready" in the
#: load figures: what follows it (importing the widgets, building the first tab, rendering it in
#: the page) is the dashboard's own cost.
_READY_STARTUP = """\
import os as _os, time as _time


def _note(event, _path={path!r}, _pid=_os.getpid(), _time=_time):
    with open(_path, "a", encoding="utf-8") as file:
        file.write(f"{{_pid}} {{event}} {{_time.time()}}\\n")


get_ipython().events.register("pre_run_cell", lambda *_: _note("cell-start"))
get_ipython().events.register("post_run_cell", lambda *_: _note("cell-end"))
_note("ready")
del _os, _time
"""


@dataclass
class Voila:
    """A Voila server started by :func:`running_voila` and what the tests read from it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    ready_file: Path

    def kernel_events(self) -> dict[int, dict[str, float]]:
        """Kernel pid -> {event: wall-clock time (``time.time()``)}, as noted by
        :data:`_READY_STARTUP` (``ready``, and the last cell's ``cell-start``, ``cell-end``)."""
        events: dict[int, dict[str, float]] = {}
        if self.ready_file.exists():
            for line in self.ready_file.read_text(encoding="utf-8").splitlines():
                pid, event, at = line.split()
                events.setdefault(int(pid), {})[event] = float(at)
        return events

    def kernels_ready(self) -> dict[int, float]:
        """Kernel pid -> the wall-clock time (``time.time()``) it was ready."""
        return {pid: events["ready"] for pid, events in self.kernel_events().items()}

    def kernel_pids(self) -> set[int]:
        """The kernel processes Voila runs now (its ``ipykernel`` children, read from /proc)."""
        pids = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")"
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            if parent == self.process.pid and b"ipykernel" in cmdline:
                pids.add(int(stat.parent.name))
        return pids


@contextmanager
def running_voila(tmp_path: Path, env: dict[str, str], *options: str) -> Iterator[Voila]:
    """Voila serving the dashboard on a free loopback port, as ``make voila`` does: run from
    the project folder, so the project's ``voila.json`` applies (``options``, e.g.
    ``--MappingKernelManager.cull_idle_timeout=10``, override it), with the project's template
    (nothing fetched from the internet). ``env`` is added to this process's environment."""
    port = free_port()
    ipython_dir = tmp_path / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    ready_file = tmp_path / "kernels-ready.txt"
    (startup / "00-ready.py").write_text(_READY_STARTUP.format(path=str(ready_file)))
    full_env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTER_PATH": str(ROOT / "share" / "jupyter"),
        "IPYTHONDIR": str(ipython_dir),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    full_env.pop("SELFCARE_OPS_ACTOR", None)
    log_path = tmp_path / "voila.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(NOTEBOOK),
                "--template=selfcare",
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                *options,
            ],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    voila = Voila(f"http://127.0.0.1:{port}/", process, log_path, ready_file)
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until the server answers (a readiness wait, not an assertion)
            if process.poll() is not None:
                pytest.fail(f"Voila exited early:\n{log_path.read_text(errors='replace')}")
            try:  # a bare TCP connection: a GET of the page would run the notebook
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Voila did not start:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.5)
        yield voila
    finally:
        stop_server(process)
        if os.environ.get("SELFCARE_OPS_SHOW_VOILA_LOG"):
            print(log_path.read_text(errors="replace"))
