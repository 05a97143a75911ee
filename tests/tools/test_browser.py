"""The dashboard as a person sees it: real headless Chromium (Debian's ``chromium``) via Playwright.

At 390 × 844 (phone) and 1280 × 800 (desktop): screenshots kept in test-artifacts/, no console
errors, every chart drawn (plotly's ``.main-svg`` in each chart div), the table sorts on a tap, no
horizontal page overflow. Skipped with a reason where Chromium or Playwright is missing, except
when ``CI=true`` (then missing means failure).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from engine.publish.server import load_or_create_token, serve_public
from engine.research import reports
from tests.tools.sample_inputs import PAIRS

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = os.environ.get("SCALP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800},
             "phone-dark": {"width": 390, "height": 844}}


def _missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(sample_inputs, tmp_path_factory):
    """Render the producers' inputs once and serve them on a free loopback port."""
    from types import SimpleNamespace

    from tools.render import render

    root = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(sample_inputs.root, root)
    rt = SimpleNamespace(data_dir=root / "data", reports_dir=root / "reports", logs_dir=root / "logs",
                         public_dir=root / "public", quote="USDT", strategies_path=root / "strategies.yml", root=root,
                         promoted=sample_inputs.promoted)
    render(rt, strategies_path=rt.strategies_path, repo_root=root)
    token = load_or_create_token(root / ".dashboard_token")
    server = serve_public(rt.public_dir, "127.0.0.1", 0, token=token)
    rt.server = server
    yield rt
    server.shutdown()


def _open(browser, url: str, size: str):
    phone = size.startswith("phone")
    ctx = browser.new_context(viewport=VIEWPORTS[size], device_scale_factor=2 if phone else 1,
                              is_mobile=phone, has_touch=phone, color_scheme="dark" if "dark" in size else "light")
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.goto(url, wait_until="load")
    return ctx, page, problems


def _draw_every_chart(page) -> int:
    charts = page.locator(".chart[data-src]")
    n = charts.count()
    for i in range(n):
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=15_000)
    return n


def _column(page, col: int) -> list[str]:
    return page.eval_on_selector_all(
        "#sum tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{col}].textContent.trim())")


@pytest.mark.parametrize("size", ["phone", "desktop", "phone-dark"])
def test_dashboard_in_chromium(browser, served, size):
    ctx, page, problems = _open(browser, served.server.url, size)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{size}-top.png"))
        # every chart draws (lazy: each is scrolled into view)
        n = _draw_every_chart(page)
        assert n == 2 * len(served.promoted)
        assert page.eval_on_selector_all(".chart", "cs => cs.filter(c => c.querySelector('.main-svg')).length") == n
        assert page.eval_on_selector_all(".chart", "cs => cs.filter(c => c.dataset.state !== 'drawn').length") == 0
        # charts fit their card: no chart wider than the viewport
        widths = page.eval_on_selector_all(".chart .main-svg", "s => s.map(x => x.getBoundingClientRect().right)")
        assert max(widths) <= VIEWPORTS[size]["width"] + 0.5
        # the state grid answers a tap with the last candle time
        cell = page.locator(".grid .st").first
        cell.tap() if size.startswith("phone") else cell.click()
        assert "last candle 2021-05-02" in page.locator("#state-detail").inner_text()
        # the summary table sorts on a tap: OOS return, best first, then reversed
        header = page.locator('#sum th[data-col="3"] button')
        header.scroll_into_view_if_needed()
        header.tap() if size.startswith("phone") else header.click()
        values = [float(v) for v in _column(page, 3) if v != "—"]
        assert len(values) > 100 and values == sorted(values, reverse=True)
        assert page.get_attribute('#sum th[data-col="3"]', "aria-sort") == "descending"
        header.tap() if size.startswith("phone") else header.click()
        values = [float(v) for v in _column(page, 3) if v != "—"]
        assert values == sorted(values)
        dd_header = page.locator('#sum th[data-col="9"] button')  # Max DD OOS: lower is better
        dd_header.tap() if size.startswith("phone") else dd_header.click()
        values = [float(v) for v in _column(page, 9) if v != "—"]
        assert values == sorted(values) and page.get_attribute('#sum th[data-col="9"]', "aria-sort") == "ascending"
        pair_header = page.locator('#sum th[data-col="0"] button')
        pair_header.tap() if size.startswith("phone") else pair_header.click()
        assert _column(page, 0) == sorted(_column(page, 0), key=lambda s: s.replace("★", "").strip().lower())
        # ... and filters
        page.fill("#q", "eth donchian")
        assert _column(page, 0) == ["ETH/USDT"] * 3 and set(_column(page, 2)) == {"donchian_breakout"}
        assert page.inner_text("#row-count") == "3 of 150 rows"
        page.fill("#q", "")
        page.locator('.fchip[data-tf="15m"]').click()
        assert set(_column(page, 1)) == {"15m"} and len(_column(page, 1)) == len(PAIRS) * 5
        page.locator('.fchip[data-tf=""]').click()
        # no horizontal scrolling of the page (wide tables scroll inside their own box)
        sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sw <= iw, f"page is {sw}px wide in a {iw}px viewport"
        # readable without zoom: body text at least 14 px, table text at least 12 px
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 14
        assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('#sum td')).fontSize)") >= 12
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{size}-full.png"), full_page=True)
        for section in ("strategies", "summary", "data"):
            page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{size}-{section}.png"))
        assert problems == []
    finally:
        ctx.close()


def test_open_page_reloads_onto_a_new_render_keeping_scroll(browser, served):
    from tools.render import render

    ctx, page, problems = _open(browser, served.server.url + "?poll=1", "phone")
    try:
        old = page.get_attribute("html", "data-version")
        page.evaluate("document.getElementById('summary').scrollIntoView()")
        page.fill("#q", "btc")
        y = page.evaluate("window.scrollY")
        assert y > 1000
        path = served.reports_dir / reports.STATUS_FILE  # the next cycle took 99 s
        status = reports.read_status(path)
        reports.write_status(path, dataclasses.replace(status, finished_at_ms=status.started_at_ms + 99_000))
        with page.expect_navigation(timeout=15_000):
            render(served, strategies_path=served.strategies_path, repo_root=served.root)
        page.wait_for_load_state("load")
        assert page.get_attribute("html", "data-version") != old
        assert "1 min 39 s" in page.inner_text("header")
        page.wait_for_function(f"Math.abs(window.scrollY - {y}) < 40", timeout=5_000)
        assert page.input_value("#q") == "btc" and set(_column(page, 0)) == {"BTC/USDT"}
        assert problems == []
    finally:
        ctx.close()
