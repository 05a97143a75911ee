"""engine.notebook: the notebooks' first cell (host, data folder, renderer, dry run), candles from every
source, engine results as tables, and the figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from engine.config import load_config, load_entries
from engine.errors import ConfigError, DataError
from engine.notebook import env as nbenv
from engine.notebook import (candles_figure, close_ms, compare_entry_sets, data_source_of, equity_figure,
                             in_vs_out_figure, indicator_frame, last_signal_close_ms, load_candles, plan_frame,
                             promotion_by_risk_mode, select_entry_sets, setup, twins_figure)
from engine.types import DataSource
from tests.conftest import make_candidate

REPO = nbenv.REPO_ROOT


@pytest.fixture
def keep_renderer():
    before = pio.renderers.default
    yield
    pio.renderers.default = before


# --- host, data folder, renderer ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env, modules, shell, host", [
    ({"COLAB_RELEASE_TAG": "release-colab_20260101"}, {}, "ZMQInteractiveShell", "colab"),
    ({}, {"google.colab": object()}, "ZMQInteractiveShell", "colab"),
    ({"PAPERSPACE_FQDN": "x.paperspacegradient.com"}, {}, "ZMQInteractiveShell", "paperspace"),
    ({"VSCODE_PID": "42"}, {}, "ZMQInteractiveShell", "vscode"),
    ({}, {}, "ZMQInteractiveShell", "jupyter"),
    ({}, {}, "", "python"),
])
def test_detect_host(env, modules, shell, host):
    assert nbenv.detect_host(env, modules, shell) == host


def test_data_root_order_parameter_then_variable_then_paperspace_then_repo(tmp_path):
    storage = tmp_path / "notebooks"
    kw = {"repo_root": REPO, "paperspace_storage": storage}
    assert nbenv.choose_data_root(tmp_path / "mine", host="paperspace", env={"SCALP_NOTEBOOK_DIR": "/x"}, **kw) == \
        (tmp_path / "mine", "the data_root parameter")
    assert nbenv.choose_data_root(None, host="jupyter", env={"SCALP_NOTEBOOK_DIR": str(tmp_path / "v")}, **kw) == \
        (tmp_path / "v", "SCALP_NOTEBOOK_DIR")
    # Paperspace without its persistent folder: the repo's folder, as everywhere else
    assert nbenv.choose_data_root(None, host="paperspace", env={}, **kw)[0] == REPO / "notebooks" / "scalp_data"
    storage.mkdir()
    assert nbenv.choose_data_root(None, host="paperspace", env={}, **kw) == \
        (storage / "scalp_data", f"Paperspace's persistent {storage}")
    assert nbenv.choose_data_root("", host="colab", env={}, **kw) == (REPO / "notebooks" / "scalp_data",
                                                                      "the repo's folder")


@pytest.mark.parametrize("host, kw, env, renderer", [
    ("colab", {}, {}, "colab"),
    ("jupyter", {}, {}, "plotly_mimetype+notebook_connected"),
    ("paperspace", {}, {}, "plotly_mimetype+notebook_connected"),
    ("vscode", {}, {}, "plotly_mimetype+notebook_connected"),
    ("jupyter", {"offline_figures": True}, {}, "plotly_mimetype+notebook"),
    ("jupyter", {"renderer": "iframe_connected"}, {"PLOTLY_RENDERER": "png"}, "iframe_connected"),
    ("colab", {}, {"PLOTLY_RENDERER": "notebook"}, "notebook"),
])
def test_renderer_per_host(host, kw, env, renderer):
    assert nbenv.choose_renderer(host, env=env, **kw) == renderer
    pio.renderers._validate_coerce_renderers(renderer)  # a name plotly knows


def test_setup_points_every_runtime_folder_into_the_data_folder_and_prints_it(tmp_path, capsys, keep_renderer):
    environ = {"SCALP_NOTEBOOK_DIR": str(tmp_path / "nb")}
    got = setup(install=False, environ=environ)
    root = tmp_path / "nb"
    assert (got.data_root, got.why, got.host) == (root, "SCALP_NOTEBOOK_DIR", "python")
    assert {k: environ[k] for k in nbenv.RUNTIME_FOLDERS} == {k: str(root / v) for k, v in nbenv.RUNTIME_FOLDERS.items()}
    assert all((root / v).is_dir() for v in nbenv.RUNTIME_FOLDERS.values())
    rt = load_config(env=environ).runtime
    assert (rt.data_dir, rt.reports_dir, rt.metrics_dir) == (root / "data", root / "reports", root / "metrics")
    assert pio.renderers.default == got.renderer == "plotly_mimetype+notebook_connected"
    out = capsys.readouterr().out
    assert f"data folder:    {root} (SCALP_NOTEBOOK_DIR)" in out and "renderer 'plotly_mimetype+notebook_connected'" in out
    assert "DRY_RUN" not in out and "DRY_RUN" not in environ


def test_setup_keeps_a_folder_set_in_the_environment_unless_data_root_is_given(tmp_path, keep_renderer):
    environ = {"SCALP_NOTEBOOK_DIR": str(tmp_path / "nb"), "SCALP_DATA_DIR": str(tmp_path / "my_candles")}
    assert setup(install=False, quiet=True, environ=environ).data_dir == tmp_path / "my_candles"
    assert setup(tmp_path / "param", install=False, quiet=True, environ=environ).data_dir == tmp_path / "param" / "data"


def test_setup_with_dry_run_forces_every_switch_off(tmp_path, capsys, keep_renderer):
    from engine.execution.tunables import load_tunables

    environ = {"ALLOW_LIVE": "1", "DRY_RUN": "0", "SCALP_EXEC_ENABLED": "true"}
    got = setup(tmp_path, dry_run=True, install=False, environ=environ)
    assert got.dry_run and {k: environ[k] for k in nbenv.DRY_RUN_ENV} == nbenv.DRY_RUN_ENV
    t = load_tunables(env=environ)
    assert t.DRY_RUN and not t.ALLOW_LIVE and not load_config(env=environ).runtime.exec_enabled
    assert "DRY_RUN forced: DRY_RUN=1, ALLOW_LIVE=0, exec_enabled false" in capsys.readouterr().out


def test_install_missing_goes_through_sitecustomize(tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text((REPO / "sitecustomize.py").read_text())
    (tmp_path / "requirements.txt").write_text("numpy\npyyaml\n")
    monkeypatch.delenv("SCALP_NO_AUTOINSTALL", raising=False)
    assert nbenv.install_missing(tmp_path) == ()  # both installed: nothing to do
    (tmp_path / "requirements.txt").write_text("scalp-no-such-package==1.0\n")
    monkeypatch.setenv("SCALP_NO_AUTOINSTALL", "1")
    assert nbenv.install_missing(tmp_path) == ()  # switched off: pip is never called


# --- candles -----------------------------------------------------------------------------------------------------

def test_load_candles_sample_cut_to_inclusive_dates():
    c = load_candles("BTC/USDT", "15m", start="2021-04-10", end="2021-04-11")
    assert c.index[0] == pd.Timestamp("2021-04-10", tz="UTC") and c.index[-1] == pd.Timestamp("2021-04-11 23:45", tz="UTC")
    assert len(c) == 2 * 96


def test_load_candles_file_and_stored_read_what_the_importer_stored(tmp_path, sample_1m):
    raw = sample_1m("ETHUSDT", 600)
    csv = tmp_path / "eth.csv"
    pd.DataFrame({"timestamp": raw.index.asi8 // 1_000_000, **{k: raw[k] for k in raw.columns}}).to_csv(csv, index=False)
    store = tmp_path / "store"
    five = load_candles("ETH/USDT", "5m", source="file", files=[csv], data_dir=store)
    expected = load_candles("ETH/USDT", "5m").iloc[:len(five)]
    pd.testing.assert_frame_equal(five, expected, check_freq=False)
    pd.testing.assert_frame_equal(load_candles("ETHUSDT", "5m", source="stored", data_dir=store), five, check_freq=False)
    assert len(load_candles("ETHUSDT", "1m", source="stored", data_dir=store)) == 600


def test_load_candles_exchange_backfills_through_ccxt(tmp_path):
    from engine.exchange import make_exchange
    from tests.exchange_server import ExchangeServer

    with ExchangeServer(pairs=["BTCUSDT"]) as server:
        client = make_exchange("binance", urls=server.url, timeout_ms=5000)
        c = load_candles("BTC/USDT", "1m", source="exchange", exchange=client, limit=300, data_dir=tmp_path,
                         now_ms=server.now_ms)
    assert len(c) == 300 and (tmp_path / "ohlcv" / "BTCUSDT" / "1m.csv").exists()
    # the server's clock is inside the sample's last candle, so the closed ones end one minute before it
    pd.testing.assert_frame_equal(c, load_candles("BTCUSDT", "1m").iloc[-301:-1], check_freq=False)


@pytest.mark.parametrize("kw, error, match", [
    ({"source": "web"}, ConfigError, "source = 'web': expected one of sample, file, stored, exchange"),
    ({"source": "file"}, ConfigError, "expected candle files"),
    ({"start": "2030-01-01"}, DataError, r"no candles between 2030-01-01 and the end; the candles run 2021-04-02"),
])
def test_load_candles_bad_input_says_what_to_do(kw, error, match, tmp_path):
    with pytest.raises(error, match=match):
        load_candles("BTCUSDT", "5m", data_dir=tmp_path, **kw)


def test_stored_candles_missing_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"ohlcv/BTCUSDT/5m.csv: no stored candles of BTCUSDT 5m; import or backfill"):
        load_candles("BTCUSDT", "5m", source="stored", data_dir=tmp_path)


def test_data_source_and_replay_clock():
    assert [data_source_of(s) for s in ("sample", "file", "stored", "exchange")] == \
        [DataSource.SAMPLE, DataSource.LOCAL, DataSource.LOCAL, DataSource.EXCHANGE]
    c = load_candles("BTCUSDT", "5m", start="2021-04-10", end="2021-04-10")
    assert close_ms(c, "5m") == int(pd.Timestamp("2021-04-11", tz="UTC").value // 1_000_000)


# --- tables ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def candles():
    return load_candles("BTCUSDT", "5m", start="2021-04-10", end="2021-04-12")


def test_select_entry_sets():
    entries = load_entries()
    assert [e.name for e in select_entry_sets(entries, ["rsi_revert", "ema_cross"]).enabled()] == ["rsi_revert", "ema_cross"]
    assert select_entry_sets(entries, None) is entries
    with pytest.raises(ConfigError, match=r"entry sets 'ema': expected names from entries_config.json \(ema_cross"):
        select_entry_sets(entries, ["ema"])


def test_indicator_frame_is_the_lines_the_signals_compare(candles):
    from engine.strategy import indicators_nb

    lines = indicator_frame("ema_cross", candles, {"fast": 5, "slow": 21})
    assert list(lines.columns) == ["ema(5)", "ema(21)"] and lines.index.equals(candles.index)
    np.testing.assert_array_equal(lines["ema(21)"], indicators_nb.ema_nb(candles["close"].to_numpy(), 21))
    assert list(indicator_frame("bollinger_breakout", candles).columns) == ["sma(20)", "std(20)"]  # no close line


def test_compare_entry_sets_runs_each_with_its_own_rules(candles):
    from engine.backtest import run_backtest

    entries = load_entries()
    table, results = compare_entry_sets(candles, entries, ["sma_cross", "rsi_revert"], timeframe="5m")
    assert list(table.index) == ["sma_cross", "rsi_revert"]
    es = entries.entry_sets["rsi_revert"]
    ref = run_backtest(candles, es.signal, dict(es.params), es.exit_plan, es.costs, timeframe="5m")
    assert table.loc["rsi_revert", "n_trades"] == ref.metrics["n_trades"] == len(results["rsi_revert"].trades)


def test_promotion_by_risk_mode_lists_every_failed_rule_per_mode():
    app = load_config(env={})
    good = promotion_by_risk_mode(make_candidate(), app)
    assert list(good.index) == ["conservative", "balanced", "aggressive (active)"]
    assert good["promoted"].all() and set(good["rule"]) == {"passes every rule"}
    bad = promotion_by_risk_mode(make_candidate(n_trades=2), app)
    assert not bad["promoted"].any()
    rules = bad.groupby(level=0)["rule"].apply(list)
    assert rules["aggressive (active)"] == ["trades 2 < 5"] and "trades 2 < 30" in rules["conservative"]


def test_plan_frame_and_last_signal(candles):
    from engine.exchange.precision import MarketRules
    from engine.execution.intents import intent_for
    from engine.execution.order_plan import build_order_plan
    from engine.promotion import promote

    plan = build_order_plan(load_entries().entry_sets["ema_cross"].exit_plan, MarketRules("BTC/USDT", 1e-5, 0.01),
                            reference_price=60000.0, notional_quote=100.0)
    frame = plan_frame(plan)
    assert list(frame.index) == ["entry", "take_profit1", "take_profit2", "take_profit3", "stop_loss", "breakeven_stop"]
    assert frame.loc["entry", "quantity [base]"] == plan.entry.quantity_base
    strategy = promote(make_candidate(timeframe="5m"), risk_mode="aggressive", now_ms=close_ms(candles, "5m"),
                       ttl_hours=24 * 365)
    when = last_signal_close_ms(strategy, candles)
    intent = intent_for(strategy, candles, now_ms=when)
    assert intent is not None and intent.side == "buy" and intent.signal_bar_ms + 300_000 == when


# --- figures -----------------------------------------------------------------------------------------------------

def test_candles_figure_marks_every_signal_and_fill(candles):
    from engine.backtest import run_backtest
    from engine.strategy import signals

    es = load_entries().entry_sets["rsi_revert"]
    entries, exits = signals.evaluate(es.signal, candles, dict(es.params))
    result = run_backtest(candles, es.signal, dict(es.params), es.exit_plan, es.costs, timeframe="5m")
    lines = indicator_frame(es.signal, candles, dict(es.params))
    fig = candles_figure(candles, indicators=lines, entries=entries, exits=exits, trades=result.trades, title="t")
    by_name = {t.name.split(" (")[0]: t for t in fig.data}
    assert list(by_name) == ["Price [USDT]", "rsi(14)", "Entry signal", "Exit signal", "Entry fill", "Exit fill"]
    assert len(by_name["Entry signal"].x) == entries.sum() and len(by_name["Exit fill"].x) == len(result.trades)
    assert by_name["rsi(14)"].yaxis == "y2"  # an oscillator gets its own panel
    assert (np.asarray(by_name["Entry signal"].y) < candles["low"].to_numpy()[entries]).all()  # under the bar


def test_equity_figure_draws_drawdown_below_zero(candles):
    eq = pd.Series([100.0, 110.0, 99.0, 120.0], index=candles.index[:4])
    fig = equity_figure({"a": eq, "b": eq * 2})
    assert [t.name for t in fig.data] == ["a [USDT]", "a drawdown [%]", "b [USDT]", "b drawdown [%]"]
    np.testing.assert_allclose(fig.data[1].y, [0.0, 0.0, -10.0, 0.0])


def test_twins_and_in_vs_out_figures():
    from dataclasses import replace

    row = make_candidate()
    j = replace(row.judgement, twins_hist={"edges": [-2.0, 0.0, 2.0], "counts": [150, 50]})
    from engine.research.reports import SummaryRow

    summary = SummaryRow(**{f: getattr(row, f) for f in ("pair", "timeframe", "entry_set", "signal", "params",
                                                          "exit_plan", "costs", "in_sample", "period", "bars",
                                                          "data_source", "exchange", "config_id", "n_configs_tried",
                                                          "deflated_sharpe")},
                         out_of_sample=dict(row.metrics), walk_forward_efficiency=1.0, folds=(), param_stability=1.0,
                         search="grid", ambiguity={}, gap_policy="skip", judgement=j)
    fig = twins_figure(summary)
    assert list(fig.data[0].y) == [150, 50] and fig.layout.shapes[0].x0 == row.metrics["total_return_pct"]
    bars = in_vs_out_figure([summary])
    assert [t.y[0] for t in bars.data] == [row.in_sample["sharpe"], row.metrics["sharpe"]]


def test_the_public_surface_lists_every_export():
    import engine.notebook as nb

    assert sorted(nb.__all__) == sorted([*nb._EXPORTS, "NotebookEnv", "setup"])
    assert all(callable(getattr(nb, name)) or name == "CANDLE_SOURCES" for name in nb.__all__)
