"""What both real-browser tests share: Debian's Chromium, its flags, the viewport, a free port.

Chromium comes from the distribution (``apt-get install chromium``, which ``.ci/run`` does),
never from Playwright's download; a missing browser skips the test, and fails it in CI.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
