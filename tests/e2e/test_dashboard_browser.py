"""The dashboard in a real browser: ``tailor serve`` (uvicorn) in a subprocess over a generated,
built shop, driven by headless Chromium through Playwright. Every request outside the server is
blocked, so a chart drawn proves the plotly.js served by the server works offline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from tailor.cli import app as cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAST = '[build]\nrecommenders = ["popularity", "personal_frequency"]\n'
REVENUE_SQL = """
SELECT sum(coalesce(e.value, coalesce(e.quantity, 1) * i.price, 0))
FROM events e LEFT JOIN items i USING (item_id) WHERE e.event_type = 'purchase'
"""
TOP_CUSTOMER_SQL = """
SELECT customer_id FROM events WHERE event_type = 'purchase'
GROUP BY customer_id ORDER BY sum(value) DESC, customer_id LIMIT 1
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH (apt-get install chromium); browsers are not downloaded")


def tailor_json(*args: str | Path | int) -> dict:
    result = CliRunner().invoke(cli, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A generated shop, built, with a read key; its revenue and best customer from SQL."""
    folder = tmp_path_factory.mktemp("dashboard")
    (folder / "tailor.toml").write_text(FAST)
    db = folder / "shop.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_RECOMMENDERS"):
            mp.delenv(name, raising=False)
        mp.chdir(folder)
        tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 80,
                    "--days", 120)  # fmt: skip
        tailor_json("build", "--db", db)
        key = tailor_json("keys", "create", "--role", "read", "--db", db)["key"]
    with duckdb.connect(str(db), read_only=True) as con:
        revenue = con.execute(REVENUE_SQL).fetchone()[0]
        customer = con.execute(TOP_CUSTOMER_SQL).fetchone()[0]
    return {"folder": folder, "db": db, "key": key, "revenue": revenue, "customer": customer}


@pytest.fixture(scope="module")
def server(shop: dict) -> Iterator[str]:
    """``tailor serve`` on a free port; its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from tailor.cli import app; app()", "serve",
         "--db", str(shop["db"]), "--port", str(port)],
        cwd=shop["folder"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode())
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TAILOR_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_manager_signs_in_sees_the_overview_and_looks_a_customer_up(
    shop: dict, server: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    outside: list[str] = []
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--headless=new"]
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def offline(route) -> None:  # the machines are offline: so is this browser
                if route.request.url.startswith(server):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", offline)
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            # Not signed in: the login form.
            page.goto(server + "/")
            assert page.url.startswith(server + "/login")
            page.fill("#key", "tk_wrong_key")
            page.click("button:has-text('Sign in')")
            assert "unknown or revoked" in page.inner_text("#login-error")
            problems.clear()  # the browser logs the 401 of the wrong key: expected
            page.fill("#key", shop["key"])
            page.click("button:has-text('Sign in')")
            page.wait_for_url(server + "/")

            # The KPIs, as SQL on the warehouse computes them, and charts drawn by plotly.js.
            revenue = page.inner_text('[data-kpi="revenue"] .value')
            assert revenue == f"{shop['revenue']:,.2f}"
            assert page.inner_text('[data-kpi="customers"] .value') == "60"
            page.wait_for_selector("#weekly-chart svg.main-svg")
            page.wait_for_selector("#segments-chart svg.main-svg")
            assert page.locator("#weekly-chart .scatterlayer .trace").count() == 1
            overview = artifacts(tmp_path) / "dashboard-overview.png"
            page.screenshot(path=str(overview), full_page=True)

            # A customer, looked up through the form: the 360 card and recommendations.
            page.fill("#nav-customer", str(shop["customer"]))
            page.press("#nav-customer", "Enter")
            page.wait_for_url(f"{server}/customers/{shop['customer']}")
            assert "Customer 360" in page.inner_text("#customer-360")
            rows = page.locator("#recommendations tbody tr")
            assert rows.count() == 10
            reasons = page.locator("#recommendations td.reason").all_inner_texts()
            assert len(reasons) == 10 and all(r.strip() for r in reasons)
            customer = artifacts(tmp_path) / "dashboard-customer.png"
            page.screenshot(path=str(customer), full_page=True)

            # Signing out ends it.
            page.click("button:has-text('Sign out')")
            page.wait_for_url(server + "/login")
            page.goto(server + "/models")
            assert page.url.startswith(server + "/login")
        finally:
            browser.close()
    assert outside == [], outside
    assert problems == [], problems
    for shot in (overview, customer):
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
