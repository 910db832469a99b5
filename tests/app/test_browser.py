"""The web app in a real browser: `csfsim app` serves it, Chromium (the system's, driven by Playwright) opens it,
changes a capacity, runs the comparison and sees the results table and a figure. A screenshot is kept as a test
artifact ($CSFSIM_TEST_ARTIFACTS, else results/test-artifacts). Skipped, with the reason, where no browser is
installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = Path(os.environ.get("CSFSIM_TEST_ARTIFACTS") or ROOT / "results" / "test-artifacts")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    port = _free_port()
    env = {**os.environ, "CSFSIM_APP_HOME": str(tmp_path / "app")}
    server = subprocess.Popen([sys.executable, "-m", "sim", "app", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, "csfsim app exited"
            assert time.monotonic() < deadline, "csfsim app did not answer within 60 s"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_planner_changes_a_capacity_runs_and_reads_the_results(app_url):
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by make setup")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        try:
            page.goto(app_url)
            page.get_by_role("heading", name="Build a scenario").wait_for(timeout=60_000)
            # The specialist's myelography capacity: the third resource of the capacity tab.
            capacity = page.get_by_label("capacity (count) · grade L", exact=True).nth(2)
            capacity.fill("2")
            capacity.press("Enter")
            page.get_by_text("(changed)").wait_for(timeout=30_000)
            page.get_by_role("link", name="Run and compare").click()
            page.get_by_role("heading", name="Run and compare").wait_for(timeout=30_000)
            reps = page.get_by_label("Replications", exact=True)
            reps.fill("2")
            reps.press("Enter")
            page.get_by_role("button", name="Run the comparison").click()
            page.get_by_role("heading", name="Headline findings").wait_for(timeout=300_000)
            table = page.locator(".csf table").first
            table.wait_for(timeout=30_000)
            assert "Your scenario" not in table.inner_text()  # the scenarios' own names head the columns
            assert "Regional network (edited)" in table.inner_text()  # the edited copy is told apart
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            page.set_viewport_size({"width": 1366, "height": 3000})
            time.sleep(1.0)
            page.screenshot(path=str(ARTIFACTS / "app_compare.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "app_compare.png").stat().st_size > 10_000
