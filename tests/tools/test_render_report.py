"""tools/render: the dashboard is rendered from what the producers stored, light, and names bad files."""
from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.clock import format_ms
from engine.research import reports
from engine.research.reports import ClockReading, Curve
from engine.strategy.exits import ExitPlan
from engine.strategy.promoted import load_strategies, save_strategies
from tests.conftest import REPO_ROOT, subprocess_env
from tests.tools.sample_inputs import MISSING, PAIRS, STALE, TIMEFRAMES
from tools.render import cli, render, write_dashboard_urls
from tools.render import format as fmt
from tools.render.charts import MAX_CURVE_POINTS, downsample_curve
from tools.render.page import TABLE_METRICS
from tools.render.readers import LOG_TAIL_LINES, OPTIONAL_SECTIONS, RECENT_CANDLES, tail_lines
from tools.render.writer import plotly_filename


def _render(rt) -> str:
    return render(rt, strategies_path=rt.strategies_path, repo_root=rt.root).read_text(encoding="utf-8")


def _status(rt) -> reports.CycleStatus:
    return reports.read_status(rt.reports_dir / reports.STATUS_FILE)


def _strategy_pages(rt) -> str:
    """Every strategy page of the render, concatenated (s-<PAIR>_<TF>_<ENTRYSET>.html)."""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(rt.public_dir.glob("s-*.html")))


def _problems(html: str) -> str:
    if "Report problems" not in html:
        return ""
    return html.split("Report problems")[1].split("</section>")[0].replace("&gt;", ">").replace("&#39;", "'")


# ---------------------------------------------------------------- full page on the producers' files
def test_page_is_under_300_kb_with_plotly_and_charts_as_separate_files(rendered_session):
    rt = rendered_session
    html = rt.html_path.read_text(encoding="utf-8")
    size = rt.html_path.stat().st_size
    assert size < 300_000, f"dashboard.html is {size} bytes"
    plotly_js = rt.public_dir / plotly_filename()
    # the vendored finance partial bundle, not the full plotly.js (4.8 MB)
    assert plotly_filename() == "plotly-finance-4.1.0.min.js" and 1_000_000 < plotly_js.stat().st_size < 1_500_000
    assert plotly_js.read_bytes() == (REPO_ROOT / "tools" / "vendor" / "plotly" / "plotly-finance.min.js").read_bytes()
    # the dashboard loads no chart library; each strategy page loads it after its first paint
    assert "<script src=" not in html and "data-plotly=" not in html and "cdn" not in html.lower()
    pages = sorted(rt.public_dir.glob("s-*.html"))
    assert len(pages) == len(rt.promoted)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert f'data-plotly="{plotly_js.name}"' in text and "<script src=" not in text and "Plotly.newPlot" in text
    assert len(list((rt.public_dir / "charts").glob("*.json"))) == len(rt.promoted)
    version = json.loads((rt.public_dir / "version.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{12}", version["version"]) and f'data-version="{version["version"]}"' in html
    # a hash per section, as the page carries them
    assert {"health", "changes", "strategies", "summary", "states", "data", "log"} <= set(version["sections"])
    for sid, h in version["sections"].items():
        assert f'<section id="{sid}" data-h="{h}"' in html
    # the public folder holds only what the pages need (the render lock lives beside it; health.json is the cycle's)
    assert {p.name for p in rt.public_dir.iterdir()} - {"health.json"} == {
        "dashboard.html", plotly_js.name, "version.json", "charts", "cycle_digest.json", *(p.name for p in pages)}


def test_page_shows_header_grid_cards_table_gaps_errors_and_log(rendered_session):
    rt = rendered_session
    html = rt.html_path.read_text(encoding="utf-8")
    status = _status(rt)
    assert '<span class="badge mode-offline" id="mode">offline sample</span>' in html
    clock_label = status.clock.label.removeprefix("replay clock").strip()  # the label says what it is once
    assert f'Replay clock&nbsp;<b id="clock">{clock_label}</b>' in html and clock_label.startswith("2021-05-03")
    assert f"<dd>{fmt.fmt_duration(status.duration_s)}</dd>" in html
    # state grid: 10 pairs × 3 TFs, every code of the legend, tap detail with the last candle
    grid = html.split('<table class="grid">')[1].split("</table>")[0]
    assert grid.count("<button") == len(PAIRS) * len(TIMEFRAMES)
    for code in ("OK", "DAT", "OLD", "MIS"):
        assert f"st-{code}" in grid
    assert f"{fmt.symbol(MISSING[0])} {MISSING[1]}: MIS · no candles stored" in grid
    assert f"{fmt.symbol(STALE[0])} {STALE[1]}: OLD · last candle 2021-05-01" in grid
    assert re.search(r"BTC/USDT 1m: OK · last candle 2021-05-02 23:59 UTC · \d+ rows", grid)
    # cards: one per promoted strategy with expiry, params, exit plan, OOS + IS metrics, chart slots
    strategies = load_strategies(rt.strategies_path)
    assert html.count('<article class="card strat') == len(strategies) == 6
    pages = _strategy_pages(rt)
    assert pages.count('data-kind="equity"') == pages.count('data-kind="candles"') == len(strategies)
    assert html.count('<figure class="spark">') == len(strategies)  # the cards' equity: inline SVG, no script
    assert html.count("expires in 23 h 00 min (replay clock)") == len(strategies)
    assert "data-expires=" not in html  # the replay clock does not tick on the page
    assert "Promoted 2021-05-02 23:00 UTC · aggressive · expires 2021-05-03 23:00 UTC" in html
    for s in strategies:
        assert f"<b>{s.entry_set}</b> · {fmt.fmt_params(s.params)}" in html
    assert "Exit: TP 0.9%×50 1.4%×30 2.1%×20 · SL -0.5% · breakeven · max hold 240 bars" in html
    # summary table: 150 rows, IS and OOS side by side, promoted rows marked
    body = html.split('<table class="sum" id="sum">')[1].split("</table>")[0].split("<tbody>")[1]
    assert body.count("<tr") == len(PAIRS) * len(TIMEFRAMES) * 5
    assert body.count('<tr class="pr"') == len(strategies)
    assert body.split("<tr")[1 + len(strategies)].startswith(" data-pair")  # promoted rows first
    assert body.count('<th scope="row" class="key">') == 150  # pair, timeframe and entry set frozen together
    assert body.count("<td") == 150 * (2 * len(TABLE_METRICS) + 2)  # + p vs random, params
    # gaps (the real exchange halts of the sample), errors, log tail
    assert "2021-04-20 02:00 UTC" in html  # the first Binance halt in the bundled sample
    assert f"ohlcv/{MISSING[0]}/{MISSING[1]}.csv: no such candle file" in html
    assert "research skipped: no candle file" in html  # last line of maintainer.log
    assert html.count("\n", html.index('<pre class="log"'), html.index("</pre>")) == LOG_TAIL_LINES - 1
    assert "Report problems" not in html


def test_table_shows_stored_metrics_without_recomputing(rendered_session):
    rt = rendered_session
    pair, tf, entry_set = rt.promoted[1]
    row = next(r for r in reports.read_summary(rt.reports_dir / reports.SUMMARY_FILE).rows
               if (r.pair, r.timeframe, r.entry_set) == (pair, tf, entry_set))
    html = rt.html_path.read_text(encoding="utf-8")
    # under the OOS Sharpe: the deflated Sharpe and the trials of the slot it counts
    assert row.judgement.n_trials_slot > row.n_configs_tried
    note = (f'<span class="note">DSR {fmt.fmt_num(row.deflated_sharpe, 2)} · '
            f'{row.judgement.n_trials_slot} trials</span>')
    cells = "".join(f'<td class="o">{fmt.fmt_num(row.out_of_sample.get(k), d)}{note if k == "sharpe" else ""}</td>'
                    f'<td class="i">{fmt.fmt_num(row.in_sample.get(k), d)}</td>' for k, _, d in TABLE_METRICS)
    p_cell = f'<td class="pv">{fmt.fmt_num(row.judgement.p_value_vs_random, 3)}</td>'
    assert (f'<tr class="pr" data-pair="{row.symbol}" data-tf="5" data-es="{entry_set}"><th scope="row" class="key">'
            f'<b>{row.symbol}</b><span>{tf} · {entry_set}</span></th>{cells}{p_cell}'
            f'<td class="params">{fmt.fmt_params(row.params)}</td></tr>') in html
    # its column sorts numerically, smallest first
    n = len(TABLE_METRICS)
    assert (f'<th data-col="{1 + 2 * n}" data-type="num" data-low="1" class="pv" scope="col">'
            f'<button type="button"><span>p vs random</span></button></th>') in html


def test_chart_files_hold_downsampled_curve_and_recent_candles_with_trades(rendered_session):
    rt = rendered_session
    pair, tf, entry_set = rt.promoted[0]
    d = json.loads(next((rt.public_dir / "charts").glob(f"{pair}_{tf}_{entry_set}.*.json")).read_text())
    curve = reports.read_curve(rt.reports_dir / reports.CURVES_DIR / reports.curve_name(pair, tf, entry_set))
    assert len(curve.equity_quote) > MAX_CURVE_POINTS  # the downsampling matters
    eq = d["equity"]
    assert len(eq["t"]) <= MAX_CURVE_POINTS and len(eq["t"]) == len(eq["e"]) == len(eq["d"])
    assert eq["t"][0] == curve.timestamps_ms[0] and eq["t"][-1] == curve.timestamps_ms[-1]
    assert eq["t"] == sorted(eq["t"])
    # extremes survive the downsampling; the stored (positive) drawdown is drawn below zero, deepest kept
    assert min(eq["e"]) == pytest.approx(min(curve.equity_quote), abs=0.01)
    assert max(eq["e"]) == pytest.approx(max(curve.equity_quote), abs=0.01)
    assert min(eq["d"]) == pytest.approx(-max(curve.drawdown_pct), abs=0.001)
    c = d["candles"]
    assert len(c["t"]) == RECENT_CANDLES
    csv_tail = (rt.data_dir / "ohlcv" / pair / f"{tf}.csv").read_text().splitlines()[-1].split(",")
    assert c["t"][-1] == int(csv_tail[0]) and c["c"][-1] == pytest.approx(float(csv_tail[4]))
    # entry/exit marks: exactly the stored trades inside the candle window
    inside = [t for t in curve.trades if c["t"][0] <= t.entry_ms <= c["t"][-1]]
    assert d["entries"]["t"] == [t.entry_ms for t in inside]
    assert d["n_trades_total"] == len(curve.trades)


def test_curve_drawdown_is_positive_and_the_page_draws_what_the_producer_wrote(dashboard_inputs):
    """Regression: two producers wrote opposite drawdown signs and the renderer hid it with abs()."""
    rt = dashboard_inputs
    # equity 100 → 110 → 99 → 121: 10 % below the 110 peak at the third bar, new high at the fourth
    index = pd.date_range("2021-05-02 20:00", periods=4, freq="1min", tz="UTC")
    equity = pd.Series([100.0, 110.0, 99.0, 121.0], index=index)
    no_trades = pd.DataFrame(columns=["entry_ms", "entry_price", "exit_ms", "exit_price", "exit_reasons", "pnl_quote"])
    curve = Curve.from_equity(equity, no_trades)
    assert curve.drawdown_pct == pytest.approx((0.0, 0.0, 10.0, 0.0))  # DESIGN: a positive percent
    pair, tf, entry_set = rt.promoted[0]
    reports.write_curve(rt.reports_dir / reports.CURVES_DIR / reports.curve_name(pair, tf, entry_set), curve)
    _render(rt)
    d = json.loads(next((rt.public_dir / "charts").glob(f"{pair}_{tf}_{entry_set}.*.json")).read_text())
    assert d["equity"]["e"] == [100.0, 110.0, 99.0, 121.0]
    assert d["equity"]["d"] == [-v for v in curve.drawdown_pct]  # drawn below zero, the stored values
    # and the research stage's curves agree with the metric the promotion judged
    for c in reports.read_candidates(rt.reports_dir / reports.CANDIDATES_FILE).candidates:
        dd = reports.read_curve(rt.reports_dir / c.curve).drawdown_pct
        assert min(dd) >= 0.0 and max(dd) <= c.metrics["max_drawdown_pct"] + 1e-9


# ---------------------------------------------------------------- missing and broken inputs
@pytest.mark.parametrize("missing", ["status.json", "summary.json", "watchlist.json", "strategies.yml",
                                     "maintainer.log", "curves", "ohlcv", "everything"])
def test_render_survives_a_missing_input(dashboard_inputs, missing):
    rt = dashboard_inputs
    import shutil

    targets = {"status.json": rt.reports_dir / "status.json", "summary.json": rt.reports_dir / "summary.json",
               "watchlist.json": rt.reports_dir / "watchlist.json", "strategies.yml": rt.strategies_path,
               "maintainer.log": rt.logs_dir / "maintainer.log", "curves": rt.reports_dir / "curves",
               "ohlcv": rt.data_dir / "ohlcv"}
    for p in (targets.values() if missing == "everything" else [targets[missing]]):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    html = _render(rt)
    n = len(rt.promoted)
    if missing in ("status.json", "everything"):
        assert "Not yet: the maintainer has not written status.json." in html
        assert "not yet: no status.json" in html and "waiting for the first cycle" in html
    if missing in ("summary.json", "everything"):
        assert "Not yet: no summary.json" in html
    if missing in ("watchlist.json", "everything"):
        assert 'id="watchlist"' not in html
    if missing in ("strategies.yml", "everything"):
        # promotion.json (not removed) decides which empty state shows: it promoted nothing → no strategy beat chance
        decisions = json.loads((rt.reports_dir / "promotion.json").read_text())["decisions"]
        empty = "None promoted yet." if any(d["promoted"] for d in decisions) else "No strategy beat chance this cycle."
        assert empty in html and not list((rt.public_dir / "charts").glob("*.json"))
    if missing in ("maintainer.log", "everything"):
        assert "Not yet: no maintainer.log." in html
    pages = _strategy_pages(rt)
    if missing == "curves":
        assert pages.count('data-kind="equity"') == 0 and pages.count('data-kind="candles"') == n
        assert "no equity curve stored yet" in html and '<figure class="spark">' not in html
    if missing == "ohlcv":
        assert pages.count('data-kind="candles"') == 0 and pages.count('data-kind="equity"') == n
        assert "no candle file" in pages and html.count('<figure class="spark">') == n
    assert "Report problems" not in html  # missing is normal early on, not a problem


def _breakers(rt) -> dict:
    pair, tf, entry_set = rt.promoted[0]
    curve = rt.reports_dir / reports.CURVES_DIR / reports.curve_name(pair, tf, entry_set)
    candles = rt.data_dir / "ohlcv" / pair / f"{tf}.csv"

    def negative_drawdown() -> None:
        doc = json.loads(curve.read_text())
        doc["drawdown_pct"][3] = -1.0  # the sign the old research stage wrote
        curve.write_text(json.dumps(doc))

    def bad_row() -> None:
        doc = json.loads((rt.reports_dir / "summary.json").read_text())
        doc["rows"][0]["bars"] = "x"
        (rt.reports_dir / "summary.json").write_text(json.dumps(doc))

    def bad_candle() -> None:
        lines = candles.read_text().splitlines()
        lines[-3] = lines[-3].split(",")[0] + ",abc,1,1,1,1"
        candles.write_text("\n".join(lines) + "\n")

    def bad_source() -> None:
        doc = json.loads((rt.reports_dir / "status.json").read_text())
        doc["data_source"] = "offline: stored binance candles kept, sample for the rest"  # the old free text
        (rt.reports_dir / "status.json").write_text(json.dumps(doc))

    return {
        "status.json": (lambda: (rt.reports_dir / "status.json").write_text("{not json"),
                        r"status.json line 1 column 2: not valid JSON"),
        "status source": (bad_source, r"status.json → data_source = 'offline: stored binance candles kept, sample "
                                      r"for the rest': expected one of exchange, sample, stored, local, unknown"),
        "summary.json": (lambda: (rt.reports_dir / "summary.json").write_text("[1, 2]"),
                         r"summary.json: expected a mapping, found a list"),
        "summary row": (bad_row, r"summary.json → rows\[0\].bars = 'x': expected an integer ≥ 0"),
        "strategies yaml": (lambda: rt.strategies_path.write_text("strategies: [pair: {"),
                            r"strategies.yml line \d+: not valid YAML"),
        "strategies list": (lambda: rt.strategies_path.write_text("strategies: 3"),
                            r"strategies.yml → strategies = 3: expected a list"),
        "strategy entry": (lambda: rt.strategies_path.write_text("strategies: [{pair: BTCUSDT}]"),
                           r"strategies.yml → strategies\[0\]: missing key 'timeframe'"),
        "curve": (negative_drawdown, rf"curves/{curve.name} → drawdown_pct\[3\] = -1.0: expected a number ≥ 0"),
        "candles": (bad_candle, rf"ohlcv/{pair}/{tf}.csv row \d+ of the last {RECENT_CANDLES}: open 'abc'"),
    }


@pytest.mark.parametrize("case", ["status.json", "status source", "summary.json", "summary row", "strategies yaml",
                                  "strategies list", "strategy entry", "curve", "candles"])
def test_render_names_a_bad_file_in_the_problems_list(dashboard_inputs, case, caplog):
    rt = dashboard_inputs
    breaker, problem = _breakers(rt)[case]
    breaker()
    html = _render(rt)
    assert re.search(problem, _problems(html)), _problems(html)[:800]
    assert any("dashboard input:" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "</html>" in html and "Maintainer log" in html


def test_odd_shapes_everywhere_are_listed_file_by_file(dashboard_inputs):
    rt = dashboard_inputs
    (rt.reports_dir / "status.json").write_text(json.dumps({"pairs": 5, "states": {"a": 1}, "cycle": []}))
    (rt.reports_dir / "summary.json").write_text(json.dumps({"rows": {"x": 1}, "clock": 3}))
    (rt.reports_dir / "watchlist.json").write_text(json.dumps({"pairs": [1, None, "x"]}))
    rt.strategies_path.write_text("strategies: [1, x, {pair: 3, timeframe: []}]")
    html = _render(rt)
    listed = _problems(html)
    for name in ("status.json", "summary.json", "watchlist.json", "strategies.yml"):
        assert f"{name}" in listed, name
    decisions = json.loads((rt.reports_dir / "promotion.json").read_text())["decisions"]
    empty = "None promoted yet." if any(d["promoted"] for d in decisions) else "No strategy beat chance this cycle."
    assert "Not yet: the maintainer has not written status.json." in html and empty in html


def test_names_are_escaped_and_unreported_states_shown(dashboard_inputs):
    rt = dashboard_inputs
    path = rt.reports_dir / reports.SUMMARY_FILE
    summary = reports.read_summary(path)
    rows = (dataclasses.replace(summary.rows[0], entry_set="<script>alert(1)</script>"),) + summary.rows[1:]
    reports.write_summary(path, dataclasses.replace(summary, rows=rows))
    status = _status(rt)
    extra = dataclasses.replace(status.states[0], pair="NEWUSDT", timeframe="4h", state="DAT")
    reports.write_status(rt.reports_dir / reports.STATUS_FILE,
                         dataclasses.replace(status, states=status.states + (extra,)))
    html = _render(rt)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "NEW/USDT 4h: DAT" in html and "st-UNK" in html  # the other pairs have no 4h state


def test_expiry_is_measured_against_the_cycle_clock(dashboard_inputs):
    rt = dashboard_inputs
    now = int(time.time() * 1000)
    strategies = load_strategies(rt.strategies_path)[:2]
    # 5 h left and 2 h past, rounded to whole seconds (the file keeps ISO seconds)
    strategies = [dataclasses.replace(s, expires_at_ms=(now + hours * 3_600_000 + 120_000) // 1000 * 1000)
                  for s, hours in zip(strategies, (5, -2))]
    save_strategies(rt.strategies_path, strategies, now)
    status = _status(rt)
    reports.write_status(rt.reports_dir / reports.STATUS_FILE,
                         dataclasses.replace(status, clock=ClockReading("wall", now, "wall clock")))
    html = _render(rt)
    assert "expires in 5 h 0" in html and "expired 1 h 5" in html and "(replay clock)" not in html
    assert html.count("data-expires=") == 2 and html.count('class="card strat expired"') == 1


def test_later_stage_sections_appear_only_when_their_files_exist(dashboard_inputs):
    rt = dashboard_inputs
    html = _render(rt)
    for _, title in OPTIONAL_SECTIONS:
        assert f">{title} <small>" not in html
    (rt.reports_dir / "dryrun_plans.json").write_text(json.dumps(
        {"generated_at_ms": 1_620_000_000_000, "total_notional_quote": 12.5,
         "rows": [{"pair": "BTCUSDT", "notional_quote": 12.5, "legs": 3}]}))
    html = _render(rt)
    assert ">Dry-run plans <small>dryrun_plans.json</small>" in html and "12.50" in html
    assert "2021-05-03 00:00 UTC" in html and 'href="#dryrun_plans"' in html


def test_paper_section_shows_each_book_and_names_a_broken_file(dashboard_inputs):
    rt = dashboard_inputs
    (rt.reports_dir / "paper.json").unlink(missing_ok=True)
    html = _render(rt)
    assert 'id="paper"' not in html and 'href="#paper"' not in html  # the section appears only with its data
    book = {"name": "BTCUSDT_5m_ema_cross", "pair": "BTCUSDT", "timeframe": "5m", "entry_set": "ema_cross",
            "promoted_at_ms": 1_619_654_400_000, "bars_since_promotion": 1152, "n_intents": 44, "n_blocked": 3,
            "blocked": {"ONE_POSITION_ONLY": 3}, "realised_pnl_quote": -0.8612, "unrealised_pnl_quote": 0.125,
            "n_paper_trades": 2, "open_position": {"entry_ms": 1_619_990_000_000, "entry_price": 57_000.5,
                                                   "qty_base": 0.000175, "mark_price": 57_100.0,
                                                   "unrealised_pnl_quote": 0.125},
            "trades": [{"entry_ms": 1_619_700_000_000, "entry_price": 55_000.0, "qty_base": 0.00018,
                        "exit_ms": 1_619_703_000_000, "exit_price": 54_725.0, "exit_reasons": "sl",
                        "pnl_quote": -0.0512, "return_pct": -0.51}],
            "paper": {"n_trades": 2, "pnl_quote": -0.8612, "win_rate_pct": 0.0, "mean_return_pct": -0.4},
            "backtest": {"n_trades": 3, "pnl_quote": -0.9, "win_rate_pct": 0.0, "mean_return_pct": -0.3,
                         "same_as_paper": False},
            "research": {"n_trades": 40, "win_rate_pct": 55.0, "expectancy_pct": 0.12}}
    (rt.reports_dir / "paper.json").write_text(json.dumps({
        "generated_at_ms": 1_620_000_000_000, "account": {"initial_cash_quote": 50.0, "stake_quote": 10.0},
        "strategies": [book], "skipped": ["ETHUSDT_5m_sma_cross: no such candle file"]}))
    html = _render(rt)
    assert 'id="paper_BTCUSDT_5m_ema_cross"' in html and "position open" in html
    assert "-0.8612" in html and "+0.1250" in html and "ONE_POSITION_ONLY 3" in html
    assert "the guards blocked what the backtest took" in html and "ETHUSDT_5m_sma_cross: no such candle file" in html
    assert "each strategy: 50.00 quote, 10.00 quote per entry" in html
    (rt.reports_dir / "paper.json").write_text(json.dumps({"generated_at_ms": 1, "account": {}, "strategies": [{"name": 3}]}))
    html = _render(rt)
    assert "paper.json → strategies[0].name = 3: expected" in html


# ---------------------------------------------------------------- versions, rewrites, url file
def test_version_changes_only_when_the_page_changes(dashboard_inputs):
    rt = dashboard_inputs
    _render(rt)
    v1 = json.loads((rt.public_dir / "version.json").read_text())["version"]
    plotly_js = rt.public_dir / plotly_filename()
    mtime = plotly_js.stat().st_mtime_ns
    _render(rt)
    assert json.loads((rt.public_dir / "version.json").read_text())["version"] == v1
    assert plotly_js.stat().st_mtime_ns == mtime  # plotly.js is written once
    status = _status(rt)
    reports.write_status(rt.reports_dir / reports.STATUS_FILE,
                         dataclasses.replace(status, finished_at_ms=status.started_at_ms + 61_000))
    _render(rt)
    assert json.loads((rt.public_dir / "version.json").read_text())["version"] != v1


def test_stale_chart_files_are_removed_after_ten_minutes(dashboard_inputs):
    rt = dashboard_inputs
    _render(rt)
    charts = rt.public_dir / "charts"
    old, recent = charts / "GONEUSDT_1m_x.0123456789.json", charts / "GONEUSDT_5m_x.0123456789.json"
    old.write_text("{}")
    recent.write_text("{}")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    _render(rt)
    assert not old.exists() and recent.exists()
    assert len(list(charts.glob("*.json"))) == len(rt.promoted) + 1


def test_write_dashboard_urls(tmp_path):
    p = write_dashboard_urls(tmp_path, "http://127.0.0.1:8888/tok/dashboard.html",
                             "https://abc.ngrok-free.app/tok/dashboard.html")
    assert p == tmp_path / "dashboard_url.txt"
    assert p.read_text() == ("local: http://127.0.0.1:8888/tok/dashboard.html\n"
                             "ngrok: https://abc.ngrok-free.app/tok/dashboard.html\n")
    assert write_dashboard_urls(tmp_path, "http://x/t/dashboard.html").read_text() == "local: http://x/t/dashboard.html\n"
    assert write_dashboard_urls(tmp_path, None).read_text() == "local: not serving yet\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashboard_url.txt"]  # no lock or temporary file left


def test_render_with_urls_writes_dashboard_url_txt(dashboard_inputs):
    rt = dashboard_inputs
    render(rt, strategies_path=rt.strategies_path, repo_root=rt.root, urls={"local": "http://l/t/dashboard.html"})
    assert (rt.urls_dir / "dashboard_url.txt").read_text() == "local: http://l/t/dashboard.html\n"


# ---------------------------------------------------------------- helpers
def test_tail_lines(tmp_path):
    p = tmp_path / "maintainer.log"
    rows = [f"line {i}" for i in range(5000)]
    p.write_text("\n".join(rows) + "\n")
    assert tail_lines(p, 3) == rows[-3:]
    assert tail_lines(p, 80, max_bytes=100)[-1] == "line 4999" and len(tail_lines(p, 80, max_bytes=100)) < 80
    with pytest.raises(FileNotFoundError):
        tail_lines(tmp_path / "nope.log")


def test_formatters():
    assert fmt.fmt_num(None) == fmt.fmt_num(float("nan")) == fmt.fmt_num("x") == "—"
    assert fmt.fmt_num(1.23456, 2) == "1.23" and fmt.fmt_num(40, 0) == "40"
    assert fmt.fmt_ms(1_620_000_000_000) == format_ms(1_620_000_000_000) == "2021-05-03 00:00 UTC"
    assert fmt.fmt_short(1_620_000_000_000, 1_620_000_000_000 + 3_600_000) == "00:00 UTC"
    assert fmt.fmt_duration(55.2) == "55 s" and fmt.fmt_duration(200) == "3 min 20 s" and fmt.fmt_duration(None) == "—"
    assert fmt.fmt_relative(10 * 60_000, 0) == "in 10 min" and fmt.fmt_relative(0, 3_600_000) == "1 h 00 min ago"
    assert fmt.fmt_params({"fast": 9, "n_std": 2.0}) == "fast 9 · n_std 2" and fmt.fmt_params({}) == "—"
    assert fmt.fmt_exit_plan(ExitPlan()) == "TP 0.9%×50 1.4%×30 2.1%×20 · SL -0.5% · breakeven · max hold 240 bars"
    assert fmt.fmt_exit_plan(ExitPlan.only()) == "signal exit only"
    assert fmt.cell_text("generated_at_ms", 1_620_000_000_000) == "2021-05-03 00:00 UTC"
    assert fmt.cell_text("count_ms", "soon") == "soon"  # only integers are times: no guessing


def test_downsample_keeps_short_curves_whole_and_extremes_of_long_ones():
    t, e, d = downsample_curve([1, 2, 3], [10.0, 9.0, 12.0], [0.0, 10.0, 0.0])
    assert t == [1, 2, 3] and e == [10.0, 9.0, 12.0] and d == [0.0, -10.0, 0.0]
    import math

    n = 5000
    e_in = [100 + math.sin(i / 50) * 10 for i in range(n)]
    t, e, d = downsample_curve(list(range(1_600_000_000_000, 1_600_000_000_000 + n)), e_in, None, max_points=100)
    assert len(t) <= 100 and d is None and max(e) == pytest.approx(max(e_in), abs=0.01)


# ---------------------------------------------------------------- CLI
def _point_env_at(monkeypatch, rt) -> None:
    for key, value in {"DATA_DIR": rt.data_dir, "REPORTS_DIR": rt.reports_dir, "LOGS_DIR": rt.logs_dir,
                       "PUBLIC_DIR": rt.public_dir, "STRATEGIES_FILE": rt.strategies_path, "URLS_DIR": rt.root}.items():
        monkeypatch.setenv(f"SCALP_{key}", str(value))


def test_main_renders_from_the_runtime_config(dashboard_inputs, monkeypatch, capsys):
    rt = dashboard_inputs
    _point_env_at(monkeypatch, rt)
    (rt.root / "dashboard_url.txt").write_text("local: old\nngrok: https://t.ngrok-free.app/x/dashboard.html\n")
    assert cli.main([]) == 0
    assert str(rt.public_dir / "dashboard.html") in capsys.readouterr().out
    token = (rt.reports_dir.parent / ".dashboard_token").read_text().strip()
    assert re.fullmatch(rf"local: http://127\.0\.0\.1:\d+/{re.escape(token)}/dashboard\.html\n"
                        r"ngrok: https://t\.ngrok-free\.app/x/dashboard\.html\n",
                        (rt.root / "dashboard_url.txt").read_text())
    # the port the server really serves (a fallback when the configured one was taken) is kept
    served = f"http://127.0.0.1:65001/{token}/dashboard.html"
    (rt.root / "dashboard_url.txt").write_text(f"local: {served}\n")
    assert cli.main(["-q"]) == 0
    assert (rt.root / "dashboard_url.txt").read_text() == f"local: {served}\n"


def test_main_json_prints_what_it_wrote(dashboard_inputs, monkeypatch, capsys):
    rt = dashboard_inputs
    _point_env_at(monkeypatch, rt)
    assert cli.main(["--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dashboard"] == str(rt.public_dir / "dashboard.html") and out["n_cards"] == len(rt.promoted)
    assert out["n_rows"] == 150 and out["problems"] == [] and out["urls_file"] == str(rt.root / "dashboard_url.txt")
    assert {Path(f).name for f in out["files"]} == {p.name for p in rt.public_dir.iterdir() if p.is_file()} - {
        "health.json"} | {p.name for p in (rt.public_dir / "charts").iterdir()}  # health.json is the cycle's
    assert json.loads((rt.public_dir / "version.json").read_text())["version"] == out["version"]


def test_main_bad_config_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("SCALP_HTML_PORT", "not-a-port")
    assert cli.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SCALP_HTML_PORT" in err[0] and "Traceback" not in err[0]


def test_help_answers_in_under_a_second_without_loading_the_engine(tmp_path):
    script = REPO_ROOT / "tools" / "render_report.py"
    code = (f"import runpy, sys, time\n"
            f"t = time.perf_counter()\n"
            f"sys.argv = ['render_report.py', '--help']\n"
            f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"print('elapsed', time.perf_counter() - t, file=sys.stderr)\n"
            f"print('heavy', [m for m in ('pandas', 'numba', 'jinja2', 'engine.config') if m in sys.modules],"
            f" file=sys.stderr)\n")
    env = subprocess_env({"SCALP_NO_AUTOINSTALL": "1"})
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert "usage: render_report.py" in out.stdout, out.stderr[-2000:]
    assert "heavy []" in out.stderr  # the engine loads after the arguments are parsed
    assert float(re.search(r"elapsed (\S+)", out.stderr).group(1)) < 1.0, out.stderr


def test_gzip_of_page_is_small(rendered_session):
    assert len(gzip.compress(rendered_session.html_path.read_bytes())) < 60_000


def test_rendered_dashboard_is_served_with_every_file_it_references(rendered_session, tmp_path):
    """render → serve_public → every URL the page uses answers 200 under the token, gzip-compressed
    when it is worth it."""
    import http.client

    from engine.publish.server import load_or_create_token, serve_public

    rt = rendered_session
    token = load_or_create_token(tmp_path / ".dashboard_token")
    server = serve_public(rt.public_dir, "127.0.0.1", 0, token=token)
    try:
        html = rt.html_path.read_text(encoding="utf-8")
        pages = sorted(set(re.findall(r'href="(s-[^"]+\.html)"', html)))
        strategy = "".join((rt.public_dir / p).read_text(encoding="utf-8") for p in pages)
        refs = ["dashboard.html", "version.json", "health.json", *pages,
                *sorted(set(re.findall(r'data-plotly="([^"]+)"', strategy)))]
        refs += sorted(set(re.findall(r'data-src="([^"]+)"', strategy)))
        assert len(refs) == 4 + 2 * len(rt.promoted)
        for ref in refs:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            conn.request("GET", f"/{token}/{ref}", headers={"Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 200, ref
            raw = (rt.public_dir / ref).read_bytes()
            if len(raw) >= 512:  # tiny files (version.json) are not worth compressing
                assert resp.getheader("Content-Encoding") == "gzip", ref
                body = gzip.decompress(body)
            assert body == raw
    finally:
        server.shutdown()


# ---------------------------------------------------------------- regression: the header of an offline cycle
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_offline_kept_exchange_candles_header_says_offline(scalp_env, tmp_path, monkeypatch):
    """Regression: an offline cycle that kept stored binance candles rendered "live data · offline: …"
    with the live styling, because the renderer matched free text."""
    from engine import cycle
    from engine import data as datastore
    from engine.config import load_settings
    from engine.data import plan as data_plan
    from engine.data import universe
    from engine.exchange import make_exchange

    monkeypatch.setenv("SCALP_DATA_SOURCE", "auto")
    monkeypatch.setenv("SCALP_TOPN", "1")
    monkeypatch.setenv("SCALP_TF_LIST", "15m")
    # the real ccxt client, sent to a local port where nothing listens: the exchange is unreachable
    monkeypatch.setattr(data_plan, "make_exchange", functools.partial(make_exchange,
                                                                      urls=f"http://127.0.0.1:{_closed_port()}"))
    top = universe.sample_watchlist(1)[0]
    path = datastore.candle_path(tmp_path / "data", top, "15m")
    datastore.write_candles(path, datastore.load_sample(top, "15m").iloc[-600:], timeframe="15m", source="binance")
    settings = load_settings()
    cycle.run_once(settings, render=render)
    status = _status(settings.runtime)
    assert (status.data_source.value, status.exchanges) == ("stored", ("binance",))
    html = (settings.runtime.public_dir / "dashboard.html").read_text(encoding="utf-8")
    badge = re.search(r'<span class="badge ([^"]+)" id="mode">([^<]+)</span>', html)
    assert badge.groups() == ("mode-offline", "offline: stored binance candles kept, sample for the rest")
    assert "live data" not in html and 'class="badge mode-live"' not in html
