"""tools/render_report.py: the dashboard is rendered from stored files, light, and never crashes."""
from __future__ import annotations

import gzip
import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from tests.tools.sample_inputs import PAIRS, PROMOTED
from tools import render_report as rr


def _render(rt) -> str:
    out = rr.render(rt, strategies_path=rt.strategies_path, repo_root=rt.root)
    return out.read_text(encoding="utf-8")


# ---------------------------------------------------------------- full page on realistic inputs
def test_page_is_under_300_kb_with_plotly_and_charts_as_separate_files(rendered_session):
    rt = rendered_session
    html = rt.html_path.read_text(encoding="utf-8")
    size = rt.html_path.stat().st_size
    assert size < 300_000, f"dashboard.html is {size} bytes"
    plotly_js = rt.public_dir / rr.plotly_filename()
    assert plotly_js.stat().st_size > 1_000_000
    assert f'<script src="{plotly_js.name}" defer>' in html
    assert "Plotly.newPlot" in html and "cdn" not in html.lower()  # offline: no CDN reference
    charts = sorted((rt.public_dir / "charts").glob("*.json"))
    assert len(charts) == len(PROMOTED)
    version = json.loads((rt.public_dir / "version.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{12}", version["version"])
    assert f'data-version="{version["version"]}"' in html
    # the public folder holds only what the page needs
    assert {p.name for p in rt.public_dir.iterdir()} == {"dashboard.html", plotly_js.name, "version.json", "charts"}


def test_page_shows_header_grid_cards_table_gaps_errors_and_log(rendered_session):
    html = rendered_session.html_path.read_text(encoding="utf-8")
    assert "offline sample" in html
    assert "Replay clock" in html and "replay · 2021-05-03 00:00 UTC" in html
    assert "Cycle duration" in html and "<dd>55 s</dd>" in html
    # state grid: 10 pairs × 3 TFs, every code of the legend, tap detail with the last candle
    grid = html.split('<table class="grid">')[1].split("</table>")[0]
    assert grid.count("<button") == 30
    for code in ("OK", "DAT", "OLD", "MIS"):
        assert f"st-{code}" in grid
    assert "LINK/USDT 15m: MIS · no candles stored" in grid
    assert re.search(r"BTC/USDT 1m: OK · last candle 2021-05-02 23:59 UTC · \d+ rows", grid)
    # cards: one per promoted strategy with expiry, params, OOS + IS metrics, chart slots
    assert html.count('<article class="card strat') == len(PROMOTED)
    assert html.count('data-kind="equity"') == len(PROMOTED)
    assert html.count('data-kind="candles"') == len(PROMOTED)
    assert "expires in 23 h 00 min (replay clock)" in html and "fast 9 · slow 21" in html
    assert "data-expires=" not in html  # the replay clock does not tick on the page
    assert "Promoted 2021-05-02 23:00 UTC · aggressive · expires 2021-05-03 23:00 UTC" in html
    assert "TP 0.9%×50 1.4%×30 2.1%×20 · SL -0.5% · breakeven · max hold 240 bars" in html
    # summary table: 150 rows, IS and OOS side by side, promoted rows marked
    body = html.split('<table class="sum" id="sum">')[1].split("</table>")[0].split("<tbody>")[1]
    assert body.count("<tr") == len(PAIRS) * 3 * 5
    assert body.count('<tr class="pr">') == len(PROMOTED)
    assert body.count("<td>") == 150 * (3 + 2 * len(rr.TABLE_METRICS) + 1)
    # gaps (real exchange halts of the sample), errors, log tail
    assert "Data gaps &amp; errors" in html
    assert "2021-04-20 02:00 UTC" in html  # the first Binance halt in the bundled sample
    assert "no candle file. Re-run the backfill for LINKUSDT 15m." in html
    assert "LINKUSDT 15m skipped: no candle file" in html  # last line of maintainer.log
    assert html.count("\n", html.index('<pre class="log">'), html.index("</pre>")) == rr.LOG_TAIL_LINES - 1


def test_table_shows_stored_metrics_without_recomputing(rendered_session):
    rt = rendered_session
    summary = json.loads((rt.reports_dir / "summary.json").read_text())
    html = rt.html_path.read_text(encoding="utf-8")
    row = next(r for r in summary["rows"] if (r["pair"], r["timeframe"], r["entry_set"]) == ("ETHUSDT", "5m", "donchian"))
    oos, ins = row["out_of_sample"], row["in_sample"]
    note = f'<span class="note">DSR {rr.fmt_num(row.get("deflated_sharpe"), 2)} · {row["n_configs_tried"]} tried</span>'
    expected = "".join(f"<td>{rr.fmt_num(oos[k], d)}{note if k == 'sharpe' else ''}</td><td>{rr.fmt_num(ins[k], d)}</td>"
                       for k, _, d in rr.TABLE_METRICS)
    assert f"<td>ETH/USDT</td><td>5m</td><td>donchian</td>{expected}" in html


def test_chart_files_hold_downsampled_curve_and_recent_candles_with_trades(rendered_session):
    rt = rendered_session
    f = next((rt.public_dir / "charts").glob("BTCUSDT_1m_ema_cross.*.json"))
    d = json.loads(f.read_text())
    curve = json.loads((rt.reports_dir / "curves" / "BTCUSDT_1m_ema_cross.json").read_text())
    assert len(curve["equity_quote"]) > 10_000  # 1m out-of-sample: the downsampling matters
    eq = d["equity"]
    assert len(eq["t"]) <= rr.MAX_CURVE_POINTS and len(eq["t"]) == len(eq["e"]) == len(eq["d"])
    assert eq["t"][0] == curve["timestamps_ms"][0] and eq["t"][-1] == curve["timestamps_ms"][-1]
    assert eq["t"] == sorted(eq["t"])
    # extremes survive the downsampling; drawdown is drawn as a negative area, deepest kept
    assert min(eq["e"]) == pytest.approx(min(curve["equity_quote"]), abs=0.01)
    assert max(eq["e"]) == pytest.approx(max(curve["equity_quote"]), abs=0.01)
    assert min(eq["d"]) == pytest.approx(-max(curve["drawdown_pct"]), abs=0.001)
    c = d["candles"]
    assert len(c["t"]) == rr.RECENT_CANDLES
    csv_tail = (rt.data_dir / "ohlcv" / "BTCUSDT" / "1m.csv").read_text().splitlines()[-1].split(",")
    assert c["t"][-1] == int(csv_tail[0]) and c["c"][-1] == pytest.approx(float(csv_tail[4]))
    # entry/exit marks: exactly the stored trades inside the candle window
    inside = [t for t in curve["trades"] if c["t"][0] <= t["entry_ms"] <= c["t"][-1]]
    assert d["entries"]["t"] == [t["entry_ms"] for t in inside]
    assert d["n_trades_total"] == len(curve["trades"])


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
    chosen = targets.values() if missing == "everything" else [targets[missing]]
    for p in chosen:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    html = _render(rt)
    if missing in ("status.json", "everything"):
        assert "Not yet: the maintainer has not written status.json." in html
        assert "not yet: no status.json" in html
    if missing in ("summary.json", "everything"):
        assert "Not yet: no summary.json" in html
    if missing in ("watchlist.json", "everything"):
        assert 'id="watchlist"' not in html
    if missing in ("strategies.yml", "everything"):
        assert "None promoted yet." in html and not list((rt.public_dir / "charts").glob("*.json"))
    if missing in ("maintainer.log", "everything"):
        assert "Not yet: no maintainer.log." in html
    if missing == "curves":
        assert html.count('data-kind="equity"') == 0 and html.count('data-kind="candles"') == len(PROMOTED)
        assert "no equity curve stored yet" in html
    if missing == "ohlcv":
        assert html.count('data-kind="candles"') == 0 and html.count('data-kind="equity"') == len(PROMOTED)
        assert "no candle file" in html
    assert "Report problems" not in html  # missing is normal early on, not a problem


@pytest.mark.parametrize("name, content, problem", [
    ("status.json", "{not json", r"status.json: not valid JSON \(line 1"),
    ("summary.json", "[1, 2]", r"summary.json: expected a JSON dict, found list"),
    ("strategies.yml", "strategies: [pair: {", r"strategies.yml: not valid YAML"),
    ("strategies.yml", "strategies: 3", r"strategies.yml → strategies: expected a list, found int"),
    ("strategies.yml", "strategies: [{pair: BTCUSDT}]", r"strategies.yml → strategies\[0\]: expected a mapping"),
])
def test_render_lists_a_broken_input_as_a_problem(dashboard_inputs, name, content, problem, caplog):
    rt = dashboard_inputs
    path = rt.strategies_path if name == "strategies.yml" else rt.reports_dir / name
    path.write_text(content)
    html = _render(rt)
    assert "Report problems" in html
    assert re.search(problem, html.replace("&gt;", ">")), html[html.index("Report problems"):][:600]
    assert any("dashboard input:" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_render_survives_odd_values_inside_files(dashboard_inputs):
    rt = dashboard_inputs
    status = json.loads((rt.reports_dir / "status.json").read_text())
    status["states"] += [None, {"pair": "NEWUSDT", "timeframe": "4h", "state": "weird", "last_candle_ms": "x"}]
    status["cycle"] = {"duration_s": None, "next_run_ms": "soon"}
    status["errors"].append("not a mapping")
    (rt.reports_dir / "status.json").write_text(json.dumps(status))
    summary = json.loads((rt.reports_dir / "summary.json").read_text())
    summary["rows"][0]["out_of_sample"] = None
    summary["rows"][1]["entry_set"] = "<script>alert(1)</script>"
    summary["rows"].append("junk")
    (rt.reports_dir / "summary.json").write_text(json.dumps(summary))
    strategies = yaml.safe_load(rt.strategies_path.read_text())
    strategies["strategies"][0]["expires_at"] = "not a date"
    strategies["strategies"][0].pop("expires_at_ms")
    strategies["strategies"][1]["exit_plan"] = {"tp_ladder": "garbage"}
    rt.strategies_path.write_text(yaml.safe_dump(strategies))
    curve = rt.reports_dir / "curves" / "ETHUSDT_5m_rsi_revert.json"
    c = json.loads(curve.read_text())
    c["equity_quote"][5] = None
    c["trades"].append({"entry_ms": None})
    curve.write_text(json.dumps(c))
    html = _render(rt)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "NEW/USDT" in html and "st-UNK" in html
    assert "no expiry" in html


@pytest.mark.parametrize("status, summary, watchlist, strategies", [
    ({"pairs": 5, "timeframes": "1m", "states": {"a": 1}, "cycle": [], "clock": "x", "errors": 3, "gaps": "no"},
     {"rows": {"x": 1}, "clock": 3}, {"pairs": [1, None, "x"]}, "strategies: [1, x, {pair: 3, timeframe: []}]"),
    ({"states": [{"pair": None, "timeframe": None, "state": None}], "data_source": 7, "clock": {"now_ms": "x"}},
     {"rows": [{"pair": 1, "params": [1, 2], "in_sample": [], "out_of_sample": "x"}]},
     {"pairs": [{"pair": None, "quote_volume_24h": "big"}]},
     "strategies: [{pair: BTCUSDT, timeframe: 1m, metrics: 5, params: x, exit_plan: [], curve: 7}]"),
    ([], [], [], "[]"),
])
def test_render_never_crashes_on_odd_shapes(dashboard_inputs, status, summary, watchlist, strategies):
    rt = dashboard_inputs
    (rt.reports_dir / "status.json").write_text(json.dumps(status))
    (rt.reports_dir / "summary.json").write_text(json.dumps(summary))
    (rt.reports_dir / "watchlist.json").write_text(json.dumps(watchlist))
    rt.strategies_path.write_text(strategies)
    html = _render(rt)
    assert "</html>" in html and "Maintainer log" in html


def test_expiry_is_measured_against_the_cycle_clock(dashboard_inputs):
    rt = dashboard_inputs
    strategies = yaml.safe_load(rt.strategies_path.read_text())
    now = int(time.time() * 1000)
    for s, hours in zip(strategies["strategies"], (5, -2)):
        s.pop("expires_at_ms")
        s["expires_at"] = rr.fmt_ms(now + hours * 3_600_000 + 120_000).replace(" UTC", "Z").replace(" ", "T")
    strategies["strategies"] = strategies["strategies"][:2]
    rt.strategies_path.write_text(yaml.safe_dump(strategies))
    status = json.loads((rt.reports_dir / "status.json").read_text())
    status["clock"] = {"kind": "wall", "now_ms": now, "label": "wall clock"}
    (rt.reports_dir / "status.json").write_text(json.dumps(status))
    html = _render(rt)
    assert "expires in 5 h 0" in html and "expired 1 h 5" in html and "(replay clock)" not in html
    assert html.count("data-expires=") == 2 and html.count('class="card strat expired"') == 1


def test_missing_files_then_files_appear(dashboard_inputs):
    """Later-stage sections appear only when their files exist."""
    rt = dashboard_inputs
    html = _render(rt)
    for _, title in rr.OPTIONAL_SECTIONS:
        assert f">{title} <small>" not in html
    (rt.reports_dir / "paper_pnl.json").write_text(json.dumps(
        {"generated_at_ms": 1_620_000_000_000, "total_pnl_quote": 12.5,
         "rows": [{"pair": "BTCUSDT", "pnl_quote": 12.5, "fills": 3}]}))
    html = _render(rt)
    assert ">Paper PnL <small>paper_pnl.json</small>" in html and "12.50" in html
    assert 'href="#paper_pnl"' in html


# ---------------------------------------------------------------- versions, rewrites, url file
def test_version_changes_only_when_the_page_changes(dashboard_inputs):
    rt = dashboard_inputs
    _render(rt)
    v1 = json.loads((rt.public_dir / "version.json").read_text())["version"]
    plotly_js = rt.public_dir / rr.plotly_filename()
    mtime = plotly_js.stat().st_mtime_ns
    _render(rt)
    assert json.loads((rt.public_dir / "version.json").read_text())["version"] == v1
    assert plotly_js.stat().st_mtime_ns == mtime  # plotly.js is written once
    status = json.loads((rt.reports_dir / "status.json").read_text())
    status["cycle"]["duration_s"] = 61.0
    (rt.reports_dir / "status.json").write_text(json.dumps(status))
    _render(rt)
    assert json.loads((rt.public_dir / "version.json").read_text())["version"] != v1


def test_stale_chart_files_are_removed_after_ten_minutes(dashboard_inputs):
    rt = dashboard_inputs
    _render(rt)
    charts = rt.public_dir / "charts"
    old = charts / "GONEUSDT_1m_x.0123456789.json"
    recent = charts / "GONEUSDT_5m_x.0123456789.json"
    old.write_text("{}")
    recent.write_text("{}")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    _render(rt)
    assert not old.exists() and recent.exists()
    assert len(list(charts.glob("*.json"))) == len(PROMOTED) + 1


def test_write_dashboard_urls(tmp_path):
    p = rr.write_dashboard_urls(tmp_path, "http://127.0.0.1:8888/tok/dashboard.html",
                                "https://abc.ngrok-free.app/tok/dashboard.html")
    assert p == tmp_path / "dashboard_url.txt"
    assert p.read_text() == ("local: http://127.0.0.1:8888/tok/dashboard.html\n"
                             "ngrok: https://abc.ngrok-free.app/tok/dashboard.html\n")
    assert rr.write_dashboard_urls(tmp_path, "http://x/t/dashboard.html").read_text() == "local: http://x/t/dashboard.html\n"


def test_render_with_urls_writes_dashboard_url_txt(dashboard_inputs):
    rt = dashboard_inputs
    rr.render(rt, strategies_path=rt.strategies_path, repo_root=rt.root, urls={"local": "http://l/t/dashboard.html"})
    assert (rt.urls_dir / "dashboard_url.txt").read_text() == "local: http://l/t/dashboard.html\n"


# ---------------------------------------------------------------- helpers
def test_tail_lines_and_recent_candles(tmp_path):
    p = tmp_path / "1m.csv"
    rows = ["timestamp,open,high,low,close,volume"] + [f"{1_617_321_600_000 + i * 60_000},{i}.5,{i + 1},{i},{i}.25,1"
                                                       for i in range(1000)]
    p.write_text("\n".join(rows) + "\n")
    assert rr.tail_lines(p, 3) == rows[-3:]
    c = rr.read_recent_candles(p, 200)
    assert len(c["t"]) == 200 and c["t"][-1] == 1_617_321_600_000 + 999 * 60_000 and c["c"][-1] == 999.25
    short = tmp_path / "short.csv"
    short.write_text("\n".join(rows[:4] + ["1617321900000,bad,1,1,1,1"]) + "\n")
    assert len(rr.read_recent_candles(short, 200)["t"]) == 3  # header and bad row skipped
    (tmp_path / "empty.csv").write_text("timestamp,open,high,low,close,volume\n")
    assert rr.read_recent_candles(tmp_path / "empty.csv") is None
    with pytest.raises(FileNotFoundError):
        rr.read_recent_candles(tmp_path / "nope.csv")


@pytest.mark.parametrize("value, expected", [
    (1_620_000_000_000, 1_620_000_000_000), (1_620_000_000, 1_620_000_000_000), ("1620000000000", 1_620_000_000_000),
    ("2021-05-03T00:00:00Z", 1_620_000_000_000), ("2021-05-03T02:00:00+02:00", 1_620_000_000_000),
    ("2021-05-03 00:00:00", 1_620_000_000_000), ("not a time", None), (None, None), (True, None),
    (float("nan"), None),
])
def test_to_ms(value, expected):
    assert rr.to_ms(value) == expected


def test_formatters():
    assert rr.fmt_num(None) == rr.fmt_num(float("nan")) == rr.fmt_num("x") == "—"
    assert rr.fmt_num(1.23456, 2) == "1.23" and rr.fmt_num(40, 0) == "40"
    assert rr.fmt_ms(1_620_000_000_000) == "2021-05-03 00:00 UTC"
    assert rr.fmt_duration(55.2) == "55 s" and rr.fmt_duration(200) == "3 min 20 s" and rr.fmt_duration(None) == "—"
    assert rr.fmt_relative(10 * 60_000, 0) == "in 10 min" and rr.fmt_relative(0, 3_600_000) == "1 h 00 min ago"
    assert rr.fmt_params({"fast": 9, "n_std": 2.0}) == "fast 9 · n_std 2"
    assert rr.fmt_exit_plan({}) == "—"


def test_downsample_keeps_short_curves_whole_and_drops_non_finite():
    t, e, d = rr.downsample_curve([1, 2, 3], [10.0, float("nan"), 12.0], [0.0, 1.0, 2.5])
    assert t == [1, 3] and e == [10.0, 12.0] and d == [-0.0, -2.5]
    n = 5000
    e_in = [100 + math.sin(i / 50) * 10 for i in range(n)]
    t, e, d = rr.downsample_curve(list(range(1_600_000_000_000, 1_600_000_000_000 + n)), e_in, None, max_points=100)
    assert len(t) <= 100 and d is None and max(e) == pytest.approx(max(e_in), abs=0.01)


# ---------------------------------------------------------------- CLI
def test_main_renders_from_the_runtime_config(dashboard_inputs, monkeypatch, capsys):
    rt = dashboard_inputs
    for key, value in {"DATA_DIR": rt.data_dir, "REPORTS_DIR": rt.reports_dir, "LOGS_DIR": rt.logs_dir,
                       "PUBLIC_DIR": rt.public_dir, "STRATEGIES_FILE": rt.strategies_path, "URLS_DIR": rt.root}.items():
        monkeypatch.setenv(f"SCALP_{key}", str(value))
    (rt.root / "dashboard_url.txt").write_text("local: old\nngrok: https://t.ngrok-free.app/x/dashboard.html\n")
    assert rr.main([]) == 0
    out = capsys.readouterr().out
    assert str(rt.public_dir / "dashboard.html") in out
    urls = (rt.root / "dashboard_url.txt").read_text()
    token = (rt.reports_dir.parent / ".dashboard_token").read_text().strip()
    assert re.fullmatch(rf"local: http://127\.0\.0\.1:\d+/{re.escape(token)}/dashboard\.html\n"
                        r"ngrok: https://t\.ngrok-free\.app/x/dashboard\.html\n", urls)


def test_main_bad_config_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("SCALP_HTML_PORT", "not-a-port")
    assert rr.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SCALP_HTML_PORT" in err[0] and "Traceback" not in err[0]


def test_gzip_of_page_is_small(rendered_session):
    raw = rendered_session.html_path.read_bytes()
    assert len(gzip.compress(raw)) < 60_000


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
        refs = ["dashboard.html", "version.json", re.search(r'<script src="([^"]+)"', html).group(1)]
        refs += sorted(set(re.findall(r'data-src="([^"]+)"', html)))
        assert len(refs) == 3 + len(PROMOTED)
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
