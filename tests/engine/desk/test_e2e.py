"""The end-to-end dry-run simulator: ranking, plans (ladder, rounding, breakeven amend), validate-only
payloads, its files and its Prometheus textfile — offline on recorded quotes or estimated spreads."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.desk.e2e import E2ESettings, collect_snapshots, run_e2e
from engine.desk.spread import read_snapshots, sample_snapshot_files
from engine.errors import ConfigError
from engine.exchange.precision import MarketRules
from engine.execution.kraken_payloads import check
from engine.execution.kraken_plan import STOP_ORDER_ID
from engine.execution.tunables import Tunables
from engine.strategy.exits import ExitPlan
from tests.conftest import REPO_ROOT, subprocess_env
from tests.exchange_server import exchange_server  # noqa: F401 (fixture)

NOW = 1_786_310_900_000  # 2026-08-09 21:28:20 UTC, just after the Bybit recording
PLAN = ExitPlan.only(tp_ladder="0.9:50,1.4:30,2.1:20", sl_pct=-0.5, breakeven=True, breakeven_offset_pct=0.05)


@pytest.fixture(scope="module")
def bybit():
    return read_snapshots(next(f for f in sample_snapshot_files() if f.name.startswith("bybit_linear")))


def _metrics(path):
    return {s.name: s for fam in text_string_to_metric_families(path.read_text()) for s in fam.samples
            if not s.name.endswith("_created")} | {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s
        for fam in text_string_to_metric_families(path.read_text()) for s in fam.samples if s.labels}


def test_recorded_quotes_rank_plan_and_write_every_output(bybit, tmp_path):
    markets = {"BTCUSDT": MarketRules("BTC/USDT", 0.001, 0.1, 0.001, 5.0),
               "ETHUSDT": MarketRules("ETH/USDT", 0.01, 0.01, 0.01, 5.0)}
    settings = E2ESettings(top=3, exit_plan=PLAN, notional_quote=500.0)
    report = run_e2e(settings, output_dir=tmp_path / "out", tunables=Tunables(ENTRY_MAX_NOTIONAL=1000.0, MAX_NOTIONAL_PER_ASSET=1000.0,
                                                                            MAX_GLOBAL_EXPOSURE=5000.0), now_ms=NOW,
                     snapshots=bybit, markets=markets, metrics_path=tmp_path / "m" / "e2e_sim.prom", source="recorded")
    assert [r["symbol"] for r in report["ranking"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert report["n_planned"] == report["n_allowed"] == 3 and report["sent"] == 0 and report["n_measured"] == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == report["files"]
    btc = json.loads((tmp_path / "out" / "BTCUSDT.plan.json").read_text())
    bid = float(bybit[bybit["symbol"] == "BTCUSDT"]["bid"].iloc[-1])
    assert btc["entry_limit"] == bid and btc["spread"]["source"] == "measured (order-book snapshots)"
    legs = {(leg["role"], leg["step"]): leg for leg in btc["legs"]}
    qty = legs[("entry", 0)]["quantity_base"]
    assert qty == pytest.approx(round(500.0 / bid - 0.0005, 3))  # truncated to the 0.001 step
    tps = [legs[("take_profit", k)]["quantity_base"] for k in (1, 2, 3)]
    assert sum(tps) == pytest.approx(qty) and tps[0] == pytest.approx(round(qty * 0.5 - 0.0005, 3))
    assert all(abs(leg["price"] * 10 - round(leg["price"] * 10)) < 1e-6 for leg in btc["legs"])  # on the 0.1 tick
    assert legs[("take_profit", 1)]["price"] == pytest.approx(round(bid * 1.009, 1))
    assert legs[("stop_loss", 0)]["price"] == pytest.approx(round(bid * 0.995, 1))
    assert btc["breakeven_amend"]["trigger_price"] == pytest.approx(round(bid * 1.0005, 1))
    assert btc["breakeven_amend"]["quantity_base"] == pytest.approx(qty - tps[0])
    payloads = btc["payloads"]
    assert [p["method"] for p in payloads] == ["add_order"] * 4 + ["amend_order"]
    assert payloads[0]["params"]["conditional"] == {"order_type": "stop-loss", "trigger_price": legs[("stop_loss", 0)]["price"]}
    assert payloads[-1]["params"]["order_id"] == STOP_ORDER_ID
    for p in payloads:
        check(p, NOW)  # every message passes Kraken's documented rules
        assert p["method"] == "amend_order" or p["params"]["validate"] is True
    lines = [json.loads(line) for line in (tmp_path / "out" / "summary.ndjson").read_text().splitlines()]
    assert [line["rank"] for line in lines] == [1, 2, 3] and all(line["n_payloads"] == 5 for line in lines)
    m = _metrics(tmp_path / "m" / "e2e_sim.prom")
    assert m["e2e_sim_plans_total"].value == 3 and m["e2e_sim_orders_sent_total"].value == 0
    assert m["e2e_sim_payloads_validate_only_total"].value == 15
    assert m["e2e_sim_pairs_ranked_total{source=measured}"].value == 4
    assert m["e2e_sim_spread_pct{pair=BTCUSDT,source=measured}"].value == pytest.approx(0.000154, rel=0.01)
    assert m["e2e_sim_last_run_timestamp_seconds"].value == NOW / 1000


def test_filters_and_a_limit_for_many_pairs(bybit, tmp_path):
    report = run_e2e(E2ESettings(top=5, min_quote_band_usd=1e12), output_dir=tmp_path, tunables=Tunables(),
                     now_ms=NOW, snapshots=bybit, metrics_path=None)
    assert report["n_planned"] == 0 and report["n_filtered"] == 4
    assert all("quote band" in f["reasons"][0] for f in report["filtered"])
    with pytest.raises(ConfigError, match="--limit 58400 is one absolute price: plan one pair with it"):
        run_e2e(E2ESettings(top=3, limit=58400.0), output_dir=tmp_path, tunables=Tunables(), now_ms=NOW,
                snapshots=bybit, metrics_path=None)
    one = run_e2e(E2ESettings(top=1, limit=70000.0, qty=0.001), output_dir=tmp_path / "one", tunables=Tunables(),
                  now_ms=NOW, snapshots=bybit, metrics_path=None)
    plan = json.loads((tmp_path / "one" / "BTCUSDT.plan.json").read_text())
    assert plan["entry_limit"] == 70000.0 and plan["qty_base"] == 0.001
    # 70 quote > ENTRY_MAX_NOTIONAL 10: planned, and the guards' decision says it would be blocked
    assert one["n_planned"] == 1 and one["n_allowed"] == 0
    assert "ENTRY_MAX_NOTIONAL" in plan["decision"]["reasons"][0]


def test_offline_estimates_are_labelled_everywhere(sample_1m, tmp_path):
    candles = {p: sample_1m(p, 3000) for p in ("BTCUSDT", "ETHUSDT", "DOGEUSDT")}
    report = run_e2e(E2ESettings(top=2), output_dir=tmp_path, tunables=Tunables(), now_ms=NOW, candles=candles,
                     metrics_path=tmp_path / "e2e.prom")
    assert report["n_estimated"] == 3 and report["n_planned"] == 2
    assert all("estimate (Corwin-Schultz 2012" in r["source"] for r in report["ranking"])
    text = (tmp_path / "summary.ndjson").read_text()
    assert text.count("estimate (Corwin-Schultz 2012") == 2
    plan = json.loads((tmp_path / f"{report['ranking'][0]['symbol']}.plan.json").read_text())
    assert plan["spread"]["source"].startswith("estimate") and plan["reference_price"] == candles[plan["pair"]]["close"].iloc[-1]
    assert 'source="estimate"' in (tmp_path / "e2e.prom").read_text()


def test_snapshots_are_collected_from_the_exchange_through_ccxt(exchange_server):
    from engine.exchange import make_exchange

    ex = make_exchange("binance", urls=exchange_server.url)
    ex.load_markets()
    t = [1_000.0]  # a clock that moves only when the poller sleeps
    snaps = collect_snapshots(ex, ["BTC/USDT", "ETH/USDT"], window_s=1.0, interval_s=0.5,
                              sleep=lambda s: t.__setitem__(0, t[0] + s), clock=lambda: t[0])
    assert len(snaps) == 6 and set(snaps["symbol"]) == {"BTCUSDT", "ETHUSDT"}  # polls at 0, 0.5 and 1.0 s
    assert (snaps["ask"] > snaps["bid"]).all() and exchange_server.count("ticker/24hr") >= 2


def test_cli_offline_and_bad_flags(tmp_path):
    env = subprocess_env({"SCALP_DATA_DIR": str(tmp_path / "data"), "SCALP_REPORTS_DIR": str(tmp_path / "reports")})
    run = lambda *a: subprocess.run([sys.executable, "-m", "jobs.e2e_sim_dryrun", *a], env=env, cwd=REPO_ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    out = run("--offline", "--top", "3", "--pairs", "BTCUSDT,ETHUSDT,SOLUSDT,DOGEUSDT", "--output-dir",
              str(tmp_path / "o"), "--metrics-file", str(tmp_path / "e2e.prom"), "-q")
    assert out.returncode == 0, out.stderr
    assert "3 plans, 15 validate-only payloads, 0 sent" in out.stdout and "(estimate (Corwin-Schultz 2012" in out.stdout
    assert (tmp_path / "o" / "run_report.json").exists() and (tmp_path / "e2e.prom").exists()
    latest = json.loads((tmp_path / "reports" / "dryrun_plans.json").read_text())  # what the dashboard shows
    assert latest["orders_sent"] == 0 and latest["estimated"] == 4 and len(latest["rows"]) == 3
    assert all(r["spread_source"].startswith("estimate (Corwin-Schultz") for r in latest["rows"])
    assert all(r["payloads"] == "5 validate-only" and r["guards"] == "allowed" for r in latest["rows"])
    bad = run("--offline", "--validate_only", "0", "--output-dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "never sends an order" in bad.stderr
    bad = run("--snapshots", str(tmp_path / "none.csv"), "--output-dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "none.csv: no such snapshot file" in bad.stderr
    bad = run("--offline", "--tp", "0.9:60,1.4:60", "--output-dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "tp" in bad.stderr
