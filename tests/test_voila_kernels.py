"""A closed tab leaves no kernel behind (issue 16): Voila serves the dashboard with the project's
``voila.json``, its cull timeout shortened on the command line (the same
``MappingKernelManager`` keys), and Debian's Chromium opens the page through Playwright.

The culler is what stops a closed tab's kernel. Voila's page does send a shutdown request on
``beforeunload``, but Voila 0.5 refuses it ("403 POST /voila/api/shutdown/<id>: '_xsrf'
argument missing from POST", voila-dashboards/voila#1458), and a killed browser or a lost
network sends nothing at all. With ``cull_connected`` false a kernel is culled once no page is
connected to it and it has been idle for ``cull_idle_timeout``, and never while its page is
open, however idle: both are checked here.

Kernels are counted twice: in Voila's kernel manager (``GET /api/kernels/<id>``, 404 once it is
gone) and as processes (Voila's ``ipykernel`` children). Chromium comes from the distribution;
without it the test skips outside CI and fails in CI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Voila,
    demo_database,
    require_browser,
    running_voila,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IDLE_TIMEOUT = 10  # s: longer than the gap between the notebook's run and the page's socket
CULL_INTERVAL = 1  # s
GONE_WITHIN = 60  # s: a bounded wait for the kernel to go (timeout + interval, with margin)
PAGE_WAIT_MS = 240_000  # kernel start and first render on a busy 2-core machine


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Voila]:
    require_browser()
    tmp_path = tmp_path_factory.mktemp("voila-kernels")
    url = demo_database(tmp_path)
    env = {"SELFCARE_OPS_DATABASE_URL": url, "SELFCARE_OPS_DATA_DIR": str(tmp_path / "data")}
    with running_voila(
        tmp_path,
        env,
        f"--MappingKernelManager.cull_idle_timeout={IDLE_TIMEOUT}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
    ) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def _open_dashboard(browser, voila: Voila) -> tuple[object, str, int]:
    """A new tab on the dashboard, once usable (the directory's first page is shown); returns
    the page, its kernel's id (Voila writes it into the page's configuration) and the kernel's
    process (the one new ``ipykernel`` child of Voila, the one that noted it was ready)."""
    from playwright.sync_api import expect

    before = voila.kernel_pids()
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(voila.url, wait_until="domcontentloaded", timeout=PAGE_WAIT_MS)
    directory = page.locator(".selfcare-directory")
    directory.wait_for(timeout=PAGE_WAIT_MS)
    expect(directory.locator(".widget-label", has_text="Page 1 /").first).to_be_visible(
        timeout=60_000
    )
    usable = time.time()
    (pid,) = voila.kernel_pids() - before
    ready = voila.kernels_ready()[pid]
    print(f"page usable {usable - ready:.1f} s after the kernel is ready")
    config = page.locator("#jupyter-config-data").text_content()
    match = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', config or "")
    assert match, config
    return page, match.group(1), pid


def _kernel(voila: Voila, kernel_id: str) -> dict | None:
    """Voila's kernel manager's record of the kernel (None: it has no such kernel)."""
    response = httpx.get(f"{voila.url}api/kernels/{kernel_id}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def _wait_gone(voila: Voila, kernel_id: str, pid: int) -> float:
    """Seconds until the kernel is out of the manager and its process has ended; fails after
    ``GONE_WITHIN`` s."""
    started = time.monotonic()
    while _kernel(voila, kernel_id) is not None or pid in voila.kernel_pids():
        if time.monotonic() - started > GONE_WITHIN:
            pytest.fail(
                f"kernel {kernel_id} (pid {pid}) still runs {GONE_WITHIN} s after its tab closed"
                f":\n{voila.log.read_text(errors='replace')}"
            )
        time.sleep(0.5)
    return time.monotonic() - started


def test_an_idle_open_tab_keeps_its_kernel_and_a_closed_one_is_culled(
    voila: Voila, browser
) -> None:
    from playwright.sync_api import expect

    page, kernel_id, pid = _open_dashboard(browser, voila)
    assert _kernel(voila, kernel_id)["connections"] == 1
    log = voila.log.read_text(errors="replace")  # the keys are spelled as Voila reads them
    assert (
        f"Culling kernels with idle durations > {IDLE_TIMEOUT} seconds at {CULL_INTERVAL} second"
        in log
    ), log
    assert "Culling kernels even with connected clients" not in log, log

    # open and idle beyond the timeout: the culler passes several times and keeps it
    time.sleep(IDLE_TIMEOUT + 3 * CULL_INTERVAL)
    assert _kernel(voila, kernel_id) is not None
    assert pid in voila.kernel_pids()
    search = page.get_by_placeholder("Nom ou référence")  # and the page still works
    search.fill("virginie telecom")
    search.press("Enter")
    expect(
        page.locator(".selfcare-directory .widget-label", has_text=re.compile(r"^1 client$"))
    ).to_be_visible(timeout=60_000)

    closed = time.monotonic()
    page.close(run_before_unload=True)  # as a person closes a tab (Voila's request is sent)
    _wait_gone(voila, kernel_id, pid)
    culled = re.search(rf"Culling '\w+' kernel '\w+' \({kernel_id}\)", voila.log.read_text())
    how = "culled" if culled else "shut down at the page's request"
    print(f"kernel {how} {time.monotonic() - closed:.1f} s after its tab closed")
