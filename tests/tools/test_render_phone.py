"""tools/render, the phone-first pieces: health line, what changed, later-stage cards, section hashes,
strategy pages. Inputs come from one real offline cycle (tests/tools/sample_inputs.py)."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from engine.publish.health import CycleHealth, mark_cycle_finished, mark_cycle_started
from engine.research import reports
from engine.strategy.promoted import load_strategies, save_strategies
from tools.render import render
from tools.render.health import health_words, paper_pnl_today
from tools.render.sections import hash_sections
from tools.render.stages import stage_section

T0 = 1_700_000_040_000


def _render(rt) -> str:
    return render(rt, strategies_path=rt.strategies_path, repo_root=rt.root).read_text(encoding="utf-8")


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}"')
    return html[start:html.index("</section>", start)]


def test_health_words_say_running_idle_due_and_late():
    run = CycleHealth(True, T0, None, T0 + 20_000, 60, 80.0)
    assert health_words(run, T0 + 42_000) == ("running", "Running now · for 42 s")
    assert health_words(run, T0 + 1_000_000) == ("late", "Late: the cycle has been running for 16 min 40 s "
                                                         "(usually 1 min 20 s)")
    done = CycleHealth(False, T0, T0 + 30_000, T0 + 80_000, 60, 30.0)  # 2023-11-14 22:14:00 UTC + 80 s
    assert health_words(done, T0 + 40_000) == ("idle", "Idle until 22:15 UTC")
    assert health_words(done, T0 + 90_000) == ("due", "Next cycle due now (22:15 UTC)")
    assert health_words(done, T0 + 80_000 + 300_000) == ("late", "Late: the next cycle was due 22:15 UTC, 5 min 00 s ago")
    assert health_words(CycleHealth(False, T0, T0 + 1), T0 + 10**9) == ("idle", "Idle · single run, no loop")
    assert health_words(None, T0) == ("unknown", "No cycle has run yet")


def test_health_line_reads_health_json_and_counts_errors_and_warnings(dashboard_inputs):
    rt = dashboard_inputs
    status = reports.read_status(rt.reports_dir / reports.STATUS_FILE)
    mark_cycle_finished(rt.public_dir, status.started_at_ms, status.finished_at_ms,
                        next_run_ms=status.finished_at_ms + 3_600_000, interval_s=3600)
    health = _section(_render(rt), "health")
    assert re.search(r'data-state="idle"[^>]*>Idle until \d\d:\d\d UTC</p>', health)
    assert f'href="#errors" id="hl-errors">{len(status.errors)} error' in health and "hl-chip bad" in health
    # warnings: the MIS and OLD pairs of the sample
    assert 'href="#warnings" id="hl-warnings">2 warnings</a>' in health and "hl-chip attn" in health
    # a cycle running now (health.json newer than status.json)
    mark_cycle_started(rt.public_dir, status.started_at_ms + 3_600_000, next_run_ms=None)
    assert 'data-state="running"' in _section(_render(rt), "health")


def test_paper_pnl_today_sums_the_trades_closed_on_the_clock_day():
    day = 1_620_000_000_000 // 86_400_000 * 86_400_000
    paper = {"generated_at_ms": day + 3_600_000, "strategies": [
        {"trades": [{"exit_ms": day + 60_000, "pnl_quote": 1.25}, {"exit_ms": day - 60_000, "pnl_quote": 9.0}]},
        {"trades": [{"exit_ms": day + 120_000, "pnl_quote": -0.5}, {"exit_ms": None, "pnl_quote": None}]}]}
    assert paper_pnl_today(paper) == "+0.75 (2 trades)" and paper_pnl_today(None) is None


def test_what_changed_lists_demoted_old_data_and_new_errors_until_the_next_cycle(dashboard_inputs):
    rt = dashboard_inputs
    html = _render(rt)
    assert "First cycle this dashboard has seen" in _section(html, "changes")
    # the next cycle: one strategy dropped, a pair's data went OLD, a new error
    kept = load_strategies(rt.strategies_path)
    save_strategies(rt.strategies_path, kept[1:], rt.now_ms)
    path = rt.reports_dir / reports.STATUS_FILE
    status = reports.read_status(path)
    states = tuple(dataclasses.replace(s, state="OLD") if (s.pair, s.timeframe) == ("BTCUSDT", "5m") else s
                   for s in status.states)
    error = dataclasses.replace(status.errors[0], stage="research", message="ETHUSDT 1m: something broke")
    reports.write_status(path, dataclasses.replace(status, started_at_ms=status.started_at_ms + 60_000,
                                                   states=states, errors=status.errors + (error,)))
    changes = _section(_render(rt), "changes")
    items = re.findall(r'<li class="ch-(\w+)">([^<]+)</li>', changes)
    assert ("demoted", f"{kept[0].symbol} {kept[0].timeframe} {kept[0].entry_set}: no longer promoted") in items
    assert ("old", "BTC/USDT 5m: data went OLD") in items
    assert any(kind == "error" and "something broke" in text for kind, text in items)
    # a re-render of the same cycle shows the same list; the next cycle compares with this one
    assert _section(_render(rt), "changes") == changes
    reports.write_status(path, dataclasses.replace(reports.read_status(path),
                                                   started_at_ms=status.started_at_ms + 120_000))
    assert "Nothing changed since the previous cycle" in _section(_render(rt), "changes")


def test_dryrun_plans_are_cards_that_keep_the_spread_source_visible():
    doc = {"generated_at_ms": 1_620_000_000_000, "source": "offline", "pairs_ranked": 3, "measured": 1,
           "estimated": 2, "filtered": 0, "orders_sent": 0, "rows": [
               {"rank": 1, "pair": "BTCUSDT", "spread_pct": 0.0123, "spread_source": "measured", "entry_limit": 57000.5,
                "take_profits": "0.0001 @ 57500", "stop_loss": 56700.0, "guards": "allowed",
                "payloads": "3 validate-only"},
               {"rank": 2, "pair": "ETHUSDT", "spread_pct": 0.031, "spread_source": "estimate (Corwin-Schultz)",
                "entry_limit": 3400.0, "guards": "allowed", "payloads": "3 validate-only"}]}
    s = stage_section("dryrun_plans.json", "Dry-run plans", doc)
    assert s["id"] == "dryrun_plans" and ("orders sent", "0") in s["facts"]
    assert [c["title"] for c in s["cards"]] == ["BTC/USDT", "ETH/USDT"] and s["cards"][0]["rank"] == 1
    assert s["cards"][1]["spread"] == "0.0310 % · estimate (Corwin-Schultz)" and s["cards"][1]["estimate"]
    assert ("entry limit", "57000.50") in s["cards"][0]["fields"]
    budget = {"day": "2021-05-03", "as_of": "2021-05-03T00:00:00Z", "used": {"notional_quote": 30.0, "n_trades": 3},
              "left": {"notional_quote": 970.0, "n_trades": 97}, "runs": [{"profile": "quick_smoke", "n_trades": 3}]}
    b = stage_section("testnet_budget.json", "Testnet budget", budget)
    assert ("left · notional [quote]", "970.00") in b["facts"] and b["cards"][0]["title"] == "quick_smoke"


def test_later_stage_cards_render(dashboard_inputs):
    rt = dashboard_inputs
    (rt.reports_dir / "testnet_budget.json").write_text(json.dumps({
        "day": "2021-05-03", "used": {"notional_quote": 30.0, "n_trades": 3, "n_runs": 1},
        "left": {"notional_quote": 970.0, "n_trades": 97}, "runs": [{"profile": "quick_smoke", "symbol": "BTC/USDT"}]}))
    section = _section(_render(rt), "testnet_budget")
    assert "<h3>BTC/USDT</h3>" in section and "<dd>quick_smoke</dd>" in section and "970.00" in section and 'href="#testnet_budget"' in _render(rt)


def test_section_hashes_change_only_with_their_section():
    a, ha = hash_sections('<main><section id="x">1</section><section id="y">2</section></main>')
    b, hb = hash_sections('<main><section id="x">1</section><section id="y">3</section></main>')
    assert ha["x"] == hb["x"] and ha["y"] != hb["y"] and f'<section id="x" data-h="{ha["x"]}">' in a
    with pytest.raises(ValueError, match="appears twice"):
        hash_sections('<section id="x"></section><section id="x"></section>')
    with pytest.raises(ValueError, match="starts inside"):
        hash_sections('<section id="x"><section id="y"></section></section>')


def test_a_strategy_page_per_promoted_strategy_with_trades_folds_and_reasons(rendered_session):
    rt = rendered_session
    pair, tf, entry_set = rt.promoted[2]
    html = (rt.public_dir / f"s-{pair}_{tf}_{entry_set}.html").read_text(encoding="utf-8")
    curve = reports.read_curve(rt.reports_dir / reports.CURVES_DIR / reports.curve_name(pair, tf, entry_set))
    assert html.count("<tr><td>2021-") == len(curve.trades)  # every trade, newest first
    newest = max(curve.trades, key=lambda t: t.entry_ms)
    assert html.index(f"{newest.entry_price:.7g}") < html.index("</tbody>", html.index('id="trades"'))
    assert "The aggressive rules" in html and "min_deflated_sharpe" in html and '<table class="plain folds">' in html
    assert 'href="dashboard.html"' in html and "Time (UTC)" not in html  # axis titles are drawn by the script
    dashboard = rt.html_path.read_text(encoding="utf-8")
    assert f'href="s-{pair}_{tf}_{entry_set}.html"' in dashboard
