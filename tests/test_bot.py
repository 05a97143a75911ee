"""bot.py end to end, offline: one cycle on the bundled candles, and the server's boundaries."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.conftest import REPO_ROOT, subprocess_env


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # report the 3xx itself


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str) -> int:
    """Status of one GET, redirects not followed."""
    try:
        with _opener.open(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow
def test_bot_once_runs_a_full_offline_cycle(scalp_env, tmp_path):
    env = subprocess_env({**scalp_env, "SCALP_DATA_SOURCE": "auto", "SCALP_EXCHANGE_TIMEOUT_MS": "2000"})
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(REPO_ROOT / "bot.py"), "--once", "--no-tunnel"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"bot.py --once: {elapsed:.1f} s")
    assert "running offline on the bundled sample" in out.stderr  # one clear line, no network here
    local = next(line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("local: "))
    assert local.startswith("http://127.0.0.1:") and local.endswith("/dashboard.html")
    assert f"local: {local}" in (tmp_path / "dashboard_url.txt").read_text()

    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    from engine.config import load_entries

    n_sets = len(load_entries().enabled())
    assert len(summary["rows"]) == 10 * 3 * n_sets
    assert len({r["pair"] for r in summary["rows"]}) == 10
    strategies = yaml.safe_load((tmp_path / "strategies.yml").read_text())["strategies"] or []
    decisions = json.loads((tmp_path / "reports" / "promotion.json").read_text())["decisions"]
    # promoted = what passed the judged rules (on the bundled month: nothing beats chance)
    assert len(strategies) == sum(d["promoted"] for d in decisions) and len(decisions) == 30
    assert all(s["risk_mode"] == "aggressive" for s in strategies)
    status = json.loads((tmp_path / "reports" / "status.json").read_text())
    assert status["data_source"] == "sample" and status["clock"]["kind"] == "replay"
    assert len(status["states"]) == 30 and {s["state"] for s in status["states"]} <= {"DAT", "OK"}
    html = (tmp_path / "public" / "dashboard.html").read_text()
    assert "offline sample" in html.lower()
    for row in summary["rows"]:
        assert row["symbol"] in html  # the page names pairs as BTC/USDT
    # data on the page: last candle per pair × TF, and the exchange halts recorded as gaps
    assert "1m: DAT · last candle 2021-05-02 23:59 UTC" in html or "1m: OK · last candle 2021-05-02 23:59 UTC" in html
    assert "15m" in html and "last candle 2021-05-02 23:45 UTC" in html
    assert "2021-04-20 02:00 UTC" in html
    # paper trading ran, and with nothing promoted its section says so
    paper = json.loads((tmp_path / "reports" / "paper.json").read_text())
    assert len(paper["strategies"]) == len(strategies)
    if not strategies:
        assert "No promoted strategy to paper-trade" in html


HAND_PROMOTED = """updated_at: '2021-04-29T00:00:00Z'
strategies:
- pair: BTCUSDT
  timeframe: 5m
  entry_set: ema_cross
  signal: ema_cross
  params: {fast: 8, slow: 21}
  risk_mode: aggressive
  promoted_at: '2021-04-29T00:00:00Z'
  expires_at: '2030-01-01T00:00:00Z'
"""


@pytest.mark.slow
def test_bot_once_paper_trades_a_promoted_strategy_and_shows_it(scalp_env, tmp_path):
    """Whatever research promotes: a strategy promoted by hand four days before the sample's end is
    paper-traded by the cycle (events in the log) and the dashboard shows its book and trades."""
    (tmp_path / "strategies.yml").write_text(HAND_PROMOTED)
    env = subprocess_env({**scalp_env, "SCALP_TOPN": "2", "SCALP_TF_LIST": "5m", "KILL_SWITCH_FILE": str(tmp_path / "K")})
    out = subprocess.run([sys.executable, str(REPO_ROOT / "bot.py"), "--once", "--no-tunnel"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    from engine.execution.events import read_events

    events = read_events(tmp_path / "data")
    assert set(events["strategy"]) == {"BTCUSDT_5m_ema_cross"}
    assert {"intent", "decision", "order", "fill", "position"} <= set(events["kind"])
    assert (events["mode"] == "dry-run").all() and events["ts_ms"].min() > 1_619_654_400_000
    paper = json.loads((tmp_path / "reports" / "paper.json").read_text())["strategies"][0]
    assert paper["n_paper_trades"] > 5 and paper["backtest"]["same_as_paper"] is True
    html = (tmp_path / "public" / "dashboard.html").read_text()
    assert 'id="paper_BTCUSDT_5m_ema_cross"' in html and "Paper vs backtest vs research" in html
    assert "Paper trades equal the backtest's." in html and f"{paper['realised_pnl_quote']:+.4f}" in html
    # the cycle's Prometheus textfile, as node_exporter's textfile collector reads it
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(
        (tmp_path / "metrics" / "scalp.prom").read_text()) for s in fam.samples}
    assert samples[("scalp_active_strategies", ())] == 1 and samples[("scalp_summary_rows", ())] > 0
    assert samples[("scalp_pair_states", (("state", "OK"),))] == 1
    assert samples[("scalp_paper_pnl_quote", (("kind", "realised"), ("strategy", "BTCUSDT_5m_ema_cross")))] == \
        pytest.approx(paper["realised_pnl_quote"])
    assert (tmp_path / "metrics" / "execution.prom").exists()


def test_bot_serves_only_the_public_folder(scalp_env, tmp_path):
    env = subprocess_env({**scalp_env, "SCALP_LOOP_INTERVAL_S": "3600"})
    (REPO_ROOT / ".env").exists()  # the repo's .env (if any) must never be served
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "bot.py"), "--no-tunnel"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url_file = tmp_path / "dashboard_url.txt"
        deadline = time.time() + 120
        while time.time() < deadline and not (url_file.exists() and (tmp_path / "public" / "dashboard.html").exists()):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        local = url_file.read_text().splitlines()[0].split(": ", 1)[1]
        assert _get(local) == 200
        root = local.split("/", 3)[:3]
        base = "/".join(root)
        token = local.split("/")[3]
        for path in ["/.env", "/engine/config/config.yaml", "/../README.md", "/%2e%2e/README.md",
                     f"/{token}/../README.md", f"/{token}/%2e%2e/README.md", f"/{token}/../../.env",
                     "/dashboard.html", f"/{token}/", "/README.md", f"/{token}/%252e%252e/README.md"]:
            assert _get(base + path) != 200, path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
