"""The dashboard as a person sees it: real headless Chromium (Debian's ``chromium``) via Playwright.

At 390 × 844 (phone) and 1280 × 800 (desktop): no console errors, no horizontal page overflow, the
table sorts on a tap with promoted rows pinned, and filters; a strategy page draws its charts with
trade marks and every time in UTC; the health line says "running" during a cycle and never "late" in
a healthy loop (the test drives the page's clock); a section update keeps scroll (both axes), focus
and open sections. Screenshots of each section at both sizes are kept in ``$SCALP_ARTIFACTS_DIR``
(default ``test-artifacts/``, ignored by git). Skipped with a reason where Chromium or Playwright is
missing, except when ``CI=true`` (then missing means failure). Accessibility and tap targets:
test_browser_a11y.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.publish.health import HEALTH_FILE, mark_cycle_finished, mark_cycle_started
from engine.publish.server import load_or_create_token, serve_public
from engine.research import reports
from tests.tools.sample_inputs import PAIRS
from tools.render.health import health_words

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SCALP_ARTIFACTS_DIR") or REPO_ROOT / "test-artifacts")
CHROMIUM = os.environ.get("SCALP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800},
             "phone-dark": {"width": 390, "height": 844}, "desktop-dark": {"width": 1280, "height": 800}}


def _missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    return None


def artifact(name: str) -> str:
    """Return the path of a screenshot kept as a test artifact (the folder is created and printed once)."""
    if not ARTIFACTS.is_dir():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        print(f"browser screenshots: {ARTIFACTS}")
    return str(ARTIFACTS / name)


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
    rt.base = server.url.rsplit("/", 1)[0]
    yield rt
    server.shutdown()


def open_page(browser, url: str, size: str, **context):
    """Open `url` in a new context of `size` (phone: touch, DSF 2); return (context, page, problems)."""
    phone = size.startswith("phone")
    ctx = browser.new_context(viewport=VIEWPORTS[size], device_scale_factor=2 if phone else 1, is_mobile=phone,
                              has_touch=phone, color_scheme="dark" if "dark" in size else "light", **context)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.goto(url, wait_until="load")
    return ctx, page, problems


def _tap(page, locator, size: str) -> None:
    locator.tap() if size.startswith("phone") else locator.click()


def _column(page, col: int, promoted: bool | None = None) -> list[str]:
    sel = "#sum tbody tr:not([hidden])" + {True: ".pr", False: ":not(.pr)", None: ""}[promoted]
    return page.eval_on_selector_all(sel, f"rows => rows.map(r => r.cells[{col}].firstChild.textContent.trim())")


def _no_overflow(page) -> None:
    sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sw <= iw, f"page is {sw}px wide in a {iw}px viewport"


def _sections(page, size: str, prefix: str) -> None:
    for sid in page.eval_on_selector_all("section[id]", "s => s.map(x => x.id)"):
        page.locator(f"#{sid}").scroll_into_view_if_needed()
        page.locator(f"#{sid}").screenshot(path=artifact(f"{prefix}-{size}-{sid}.png"))


@pytest.mark.parametrize("size", ["phone", "desktop", "phone-dark"])
def test_dashboard_in_chromium(browser, served, size):
    ctx, page, problems = open_page(browser, served.server.url, size)
    try:
        page.screenshot(path=artifact(f"dashboard-{size}-top.png"))
        # the health line comes first, the results right after it
        assert page.locator("#hl-state").bounding_box()["y"] < 200
        assert page.eval_on_selector_all("section[id]", "s => s.map(x => x.id)")[:3] == ["health", "changes", "strategies"]
        assert page.locator("article.card.strat").count() == len(served.promoted)
        # the state grid answers a tap with the last candle time
        cell = page.locator(".grid .st").first
        _tap(page, cell, size)
        assert "last candle 2021-05-02" in page.locator("#state-detail").inner_text()
        # the full table: opt-in on phones, open on wide screens
        table_open = page.locator("#table-open")
        assert table_open.evaluate("d => d.open") is (not size.startswith("phone"))
        if size.startswith("phone"):
            _tap(page, page.locator("#table-open > summary"), size)
        # sorting keeps promoted rows on top: OOS return, best first, then reversed
        header = page.locator('#sum th[data-col="1"] button')
        _tap(page, header, size)
        assert len(_column(page, 1, promoted=True)) == len(served.promoted)
        assert page.eval_on_selector_all("#sum tbody tr", "r => r.slice(0, 6).every(x => x.classList.contains('pr'))")
        values = [float(v) for v in _column(page, 1, promoted=False) if v != "—"]
        assert len(values) > 100 and values == sorted(values, reverse=True)
        assert page.get_attribute('#sum th[data-col="1"]', "aria-sort") == "descending"
        _tap(page, header, size)
        values = [float(v) for v in _column(page, 1, promoted=False) if v != "—"]
        assert values == sorted(values)
        dd_header = page.locator('#sum th[data-col="7"] button')  # Max DD OOS: lower is better
        _tap(page, dd_header, size)
        values = [float(v) for v in _column(page, 7, promoted=False) if v != "—"]
        assert values == sorted(values) and page.get_attribute('#sum th[data-col="7"]', "aria-sort") == "ascending"
        _tap(page, page.locator('#sum button[data-key="pair"]'), size)
        pairs = page.eval_on_selector_all("#sum tbody tr:not(.pr)", "r => r.map(x => x.dataset.pair.toLowerCase())")
        assert pairs == sorted(pairs)
        # the header sticks while the table scrolls, and the key column while it is swiped
        wrap = page.locator("#sum-wrap")
        wrap.evaluate("w => { w.scrollTop = 600; w.scrollLeft = 300; }")
        head_top = page.locator('#sum th[data-col="1"]').bounding_box()["y"]
        assert abs(head_top - wrap.bounding_box()["y"]) < 3
        key_x = page.locator("#sum tbody tr:nth-child(20) .key").bounding_box()["x"]
        assert abs(key_x - wrap.bounding_box()["x"]) < 3
        page.screenshot(path=artifact(f"dashboard-{size}-table-swiped.png"))
        wrap.evaluate("w => { w.scrollTop = 0; w.scrollLeft = 0; }")
        # ... and filters
        page.fill("#q", "eth donchian")
        rows = page.eval_on_selector_all("#sum tbody tr:not([hidden])", "r => r.map(x => [x.dataset.pair, x.dataset.es])")
        assert rows == [["ETH/USDT", "donchian_breakout"]] * 3 and page.inner_text("#row-count") == "3 of 150 rows"
        page.fill("#q", "")
        _tap(page, page.locator('.fchip[data-tf="15m"]'), size)
        assert page.locator("#sum tbody tr:not([hidden])").count() == len(PAIRS) * 5
        _tap(page, page.locator('.fchip[data-tf=""]'), size)
        _no_overflow(page)
        # readable without zoom: body text at least 14 px, table text at least 12 px
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 14
        assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('#sum td')).fontSize)") >= 12
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifact(f"dashboard-{size}-full.png"), full_page=True)
        _sections(page, size, "dashboard")
        assert problems == []
    finally:
        ctx.close()


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_strategy_page_shows_trade_marks_and_utc_times(browser, served, size):
    pair, tf, entry_set = served.promoted[0]  # BTCUSDT 1m: many trades in the last day
    name = f"s-{pair}_{tf}_{entry_set}.html"
    ctx, page, problems = open_page(browser, f"{served.base}/{name}", size, timezone_id="America/New_York")
    try:
        for kind in ("eq", "cd"):
            page.locator(f"#{kind}-{pair}_{tf}_{entry_set} .main-svg").first.wait_for(state="attached", timeout=20_000)
        cd = page.locator(f"#cd-{pair}_{tf}_{entry_set}")
        src = cd.get_attribute("data-src")
        data = json.loads((served.public_dir / src).read_text())
        # every time on the chart is UTC and labelled so, whatever the phone's zone (New York here)
        x0, title, hover = cd.evaluate("d => [d.data[0].x[0], d.layout.xaxis.title.text, d.layout.xaxis.hoverformat]")
        assert x0 == _utc(data["candles"]["t"][0]) and title == "Time (UTC)" and hover.endswith(" UTC")
        eq_title = page.locator(f"#eq-{pair}_{tf}_{entry_set}").evaluate("d => d.layout.xaxis.title.text")
        assert eq_title == "Time (UTC)"
        # trade marks: entries and exits drawn, inside the range the chart opens on
        marks = cd.evaluate("d => d.data.filter(t => t.name === 'Entry' || t.name === 'Exit').map(t => t.x.length)")
        assert len(marks) == 2 and min(marks) > 0
        assert page.locator(f"#cd-{pair}_{tf}_{entry_set} .scatterlayer .point").count() > 0
        rng = cd.evaluate("d => d.layout.xaxis.range")
        assert rng == [_utc(data["fit"][0]), _utc(data["fit"][1])]
        assert _utc(data["entries"]["t"][-1]) <= rng[1] and _utc(data["entries"]["t"][-1]) >= rng[0]
        # zoom buttons work; the hover label is opaque
        _tap(page, page.locator('[data-range="all"]'), size)
        page.wait_for_function("([id, x]) => document.getElementById(id).layout.xaxis.range[0] === x",
                               arg=[f"cd-{pair}_{tf}_{entry_set}", _utc(data["candles"]["t"][0])])
        assert cd.evaluate("d => d.layout.hoverlabel.bgcolor") not in ("", "rgba(0,0,0,0)", "transparent")
        _tap(page, page.locator('[data-range="fit"]'), size)
        page.screenshot(path=artifact(f"strategy-{size}-top.png"))
        # the trade list and the promotion reasons
        assert page.locator("#trades tbody tr").count() > 10 and "aggressive rules" in page.inner_text("#why")
        _no_overflow(page)
        _sections(page, size, "strategy")
        # local time by choice, labelled with its offset
        _tap(page, page.locator("#tz-toggle"), size)
        page.wait_for_function("id => document.getElementById(id).layout.xaxis.title.text.startsWith('Time (local, UTC-0')",
                               arg=f"cd-{pair}_{tf}_{entry_set}")
        assert problems == []
    finally:
        ctx.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_health_line_says_running_during_a_cycle_and_never_late_in_a_healthy_loop(browser, served, size):
    """The review's loop: 60 s interval, cycles of 42–97 s; the test drives the page's clock."""
    public = served.public_dir
    kept = (public / HEALTH_FILE).read_bytes()
    t0 = (int(time.time() * 1000) // 60_000 + 1440) * 60_000 + 40_000  # tomorrow: after the sample's cycle
    ctx = browser.new_context(viewport=VIEWPORTS[size])
    page = ctx.new_page()
    page.clock.install(time=dt.datetime.fromtimestamp(t0 / 1000, dt.UTC))
    page.goto(served.server.url, wait_until="load")

    def at(ms: int) -> tuple[str, str]:
        page.clock.set_fixed_time(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))
        state, text = page.evaluate("window.scalp.pollHealth()")
        assert page.get_attribute("#hl-state", "data-state") == state and page.inner_text("#hl-state") == text
        return state, text

    try:
        start, seen = t0, []
        for duration_s in (97, 42, 80, 10, 61):
            next_run = (start // 60_000 + 1) * 60_000
            mark_cycle_started(public, start, next_run_ms=next_run, interval_s=60)
            for t in (start + 1_000, start + duration_s * 500, start + duration_s * 1000 - 500):
                state, text = at(t)
                assert state == "running" and text.startswith("Running now · for "), text
            page.screenshot(path=artifact(f"health-{size}-running.png")) if duration_s == 97 else None
            finished = start + duration_s * 1000
            mark_cycle_finished(public, start, finished, next_run_ms=next_run, interval_s=60)
            next_start = max(next_run, finished) + 400
            for t in [*range(finished + 100, next_start, 5_000), next_start]:  # until the next cycle starts
                seen.append(at(t))
            start = next_start
        states = {s for s, _ in seen}
        assert "late" not in states and states == {"idle", "due"}, seen
        idle = next(text for s, text in seen if s == "idle")
        assert idle.startswith("Idle until ") and idle.endswith(" UTC")
        # the same words as the renderer's at the same moment
        from engine.publish.health import read_health

        record = read_health(public / HEALTH_FILE)
        for t in (finished + 1_000, finished + 600_000):
            assert list(at(t)) == list(health_words(record, t))
        # the loop stopped: ten minutes after the due time the line says late, in red
        state, text = at(max(next_run, finished) + 600_000)
        assert state == "late" and text.startswith("Late: the next cycle was due ")
        colour = page.eval_on_selector("#hl-state", "e => getComputedStyle(e).color")
        assert colour != page.eval_on_selector("body", "e => getComputedStyle(e).color")
        page.screenshot(path=artifact(f"health-{size}-late.png"))
    finally:
        (public / HEALTH_FILE).write_bytes(kept)
        ctx.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_a_section_update_keeps_scroll_focus_and_open_sections(browser, served, size):
    from tools.render import render

    ctx, page, problems = open_page(browser, served.server.url + "?poll=1", size)
    try:
        page.evaluate("window.__notReloaded = true")
        old = page.get_attribute("html", "data-version")
        for details in ("#table-open", "#gaps-list"):  # open both (the table is open already on a desktop)
            if not page.locator(details).evaluate("d => d.open"):
                page.locator(f"{details} > summary").scroll_into_view_if_needed()
                _tap(page, page.locator(f"{details} > summary"), size)
        wrap = page.locator("#sum-wrap")
        wrap.scroll_into_view_if_needed()
        page.locator("#q").focus()
        page.keyboard.type("usdt")  # every row matches: the table keeps its height
        wrap.evaluate("w => { w.scrollLeft = 240; w.scrollTop = 400; }")
        scrolled = wrap.evaluate("w => [w.scrollLeft, w.scrollTop]")  # (a desktop's table is less wide)
        assert scrolled[0] > 100 and scrolled[1] == 400
        y = page.evaluate("window.scrollY")
        assert y > 1000
        # the next cycle: it took 99 s (101 s), and the research stage wrote a new summary
        path = served.reports_dir / reports.STATUS_FILE
        status = reports.read_status(path)
        took_s = {"phone": 99, "desktop": 101}[size]  # another cycle for each size (the served folder is shared)
        reports.write_status(path, dataclasses.replace(status, finished_at_ms=status.started_at_ms + took_s * 1000))
        spath = served.reports_dir / reports.SUMMARY_FILE
        summary = reports.read_summary(spath)
        reports.write_summary(spath, dataclasses.replace(summary, generated_at_ms=summary.generated_at_ms + 60_000))
        render(served, strategies_path=served.strategies_path, repo_root=served.root)
        page.wait_for_function("v => document.documentElement.dataset.version !== v", arg=old, timeout=15_000)
        updated = page.inner_text("#updated")
        assert updated.startswith("updated ") and "summary" in updated and "health" in updated
        assert page.evaluate("window.__notReloaded") is True  # swapped in place, not reloaded
        assert f"1 min {took_s - 60} s" in page.inner_text("header")
        # scroll positions on both axes, and the open sections
        assert wrap.evaluate("w => [w.scrollLeft, w.scrollTop]") == scrolled
        assert abs(page.evaluate("window.scrollY") - y) < 40
        assert page.locator("#table-open").evaluate("d => d.open") and page.locator("#gaps-list").evaluate("d => d.open")
        # focus and what was typed survive (the phone's keyboard stays open), and typing goes on
        assert page.evaluate("document.activeElement.id") == "q" and page.input_value("#q") == "usdt"
        page.keyboard.type(" eth donchian")
        assert page.inner_text("#row-count") == "3 of 150 rows"
        page.screenshot(path=artifact(f"dashboard-{size}-after-update.png"))
        assert problems == []
    finally:
        ctx.close()
