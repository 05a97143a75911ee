"""Write realistic dashboard inputs (contract shapes) built from the bundled real candles.

Used by tests/tools/conftest.py and by tools/bench_dashboard.py. The files stand in for what the
maintainer writes (contracts.md, Part C), at the size of a bundled-sample cycle: 10 pairs × 3
timeframes × 5 entry sets of summary rows, state per pair × timeframe, real exchange halts as gaps,
6 promoted strategies whose equity curves and trades follow the real close prices (a toy
long-only moving-average position, computed here only to get realistic shapes and sizes: these
numbers are test data, not research results), candle CSVs (the last days of each pair) and a
maintainer log.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "engine" / "sample" / "ohlcv"
PAIRS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "SOLUSDT", "DOTUSDT",
         "LTCUSDT", "LINKUSDT")
TIMEFRAMES = ("1m", "5m", "15m")
TF_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000}
ENTRY_SETS = (
    ("ema_cross", "ema_cross", {"fast": 9, "slow": 21}),
    ("rsi_revert", "rsi_revert", {"period": 14, "oversold": 30, "exit_level": 55}),
    ("bollinger", "bollinger_breakout", {"period": 20, "n_std": 2.0}),
    ("donchian", "donchian_breakout", {"period": 55}),
    ("sma_cross", "sma_cross", {"fast": 10, "slow": 50}),
)
#: (pair, timeframe, entry set) of the promoted strategies.
PROMOTED = (
    ("BTCUSDT", "1m", "ema_cross"), ("ETHUSDT", "5m", "rsi_revert"), ("BNBUSDT", "15m", "donchian"),
    ("SOLUSDT", "5m", "bollinger"), ("DOGEUSDT", "15m", "ema_cross"), ("XRPUSDT", "1m", "sma_cross"),
)
#: A (pair, timeframe) with no candle file (state MIS) and one that is stale (state OLD).
MISSING = ("LINKUSDT", "15m")
STALE = ("LTCUSDT", "1m")
EXIT_PLAN = {"tp_ladder": [[0.9, 50.0], [1.4, 30.0], [2.1, 20.0]], "sl_pct": -0.5, "sl_atr_mult": None,
             "atr_period": 14, "breakeven": True, "breakeven_offset_pct": 0.05, "trail_pct": None,
             "trail_atr_mult": None, "use_exit_signal": True, "max_hold_bars": 240,
             "check_entry_bar": True, "lot_size_base": None}


def load_candles(pair: str, timeframe: str) -> pd.DataFrame:
    """Return the bundled 1m candles of `pair` resampled to `timeframe` (index = open time ms)."""
    df = pd.read_csv(SAMPLE_DIR / pair / "1m.csv.gz")
    df = df.set_index(pd.to_datetime(df["timestamp"], unit="ms", utc=True)).drop(columns="timestamp")
    if timeframe != "1m":
        rule = {"5m": "5min", "15m": "15min"}[timeframe]
        df = df.resample(rule, label="left", closed="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna()
    df.index = df.index.as_unit("ms").asi8
    df.index.name = "timestamp"
    return df


def _toy_curve(df: pd.DataFrame, fast: int, slow: int, *, cash: float = 10_000.0, fee: float = 0.001):
    """Long-only MA-cross equity on the real prices: enter/exit at the next open (test data only)."""
    close = df["close"].to_numpy()
    opn = df["open"].to_numpy()
    f = pd.Series(close).ewm(span=fast, adjust=False).mean().to_numpy()
    s = pd.Series(close).rolling(slow, min_periods=slow).mean().to_numpy()
    want = np.nan_to_num(f > s, nan=False).astype(bool)
    n = len(close)
    equity = np.empty(n)
    pos_qty, cash_now, trades, entry = 0.0, cash, [], None
    ts = df.index.to_numpy()
    for i in range(n):
        if i > 0 and want[i - 1] and pos_qty == 0.0:
            pos_qty = cash_now * (1 - fee) / opn[i]
            entry = (int(ts[i]), float(opn[i]), cash_now)
            cash_now = 0.0
        elif i > 0 and not want[i - 1] and pos_qty > 0.0:
            cash_now = pos_qty * opn[i] * (1 - fee)
            trades.append({"entry_ms": entry[0], "entry_price": entry[1], "exit_ms": int(ts[i]),
                           "exit_price": float(opn[i]),
                           "reason": ["exit_signal", "take_profit", "stop_loss"][len(trades) % 3],
                           "pnl_quote": round(cash_now - entry[2], 4)})
            pos_qty = 0.0
        equity[i] = cash_now + pos_qty * close[i]
    peak = np.maximum.accumulate(equity)
    drawdown = (peak - equity) / peak * 100.0
    return ts.astype(np.int64), equity, drawdown, trades


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gaps(index_ms: np.ndarray, tf_ms: int) -> list[tuple[int, int, int]]:
    d = np.diff(index_ms)
    out = []
    for i in np.nonzero(d > tf_ms)[0]:
        out.append((int(index_ms[i] + tf_ms), int(index_ms[i + 1] - tf_ms), int(d[i] // tf_ms - 1)))
    return out


def write_sample_inputs(root: Path, *, candle_days: float = 2.0, seed: int = 7) -> SimpleNamespace:
    """Write every dashboard input under `root` and return a runtime-like namespace.

    Parameters
    ----------
    root : Path
        Empty folder; gets data/ohlcv, reports (+ curves), logs, public, strategies.yml.
    candle_days : float
        Days of candles written per candle CSV (the dashboard reads only the tail).
    seed : int
        Seed of the generator for the (made-up) summary metrics.

    Returns
    -------
    SimpleNamespace
        RuntimeConfig-like: data_dir, reports_dir, logs_dir, public_dir, html_host, html_port,
        quote, tf_list, plus strategies_path (Path) and now_ms (replay clock, int ms).
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    data_dir, reports, logs, public = root / "data", root / "reports", root / "logs", root / "public"
    for d in (data_dir, reports / "curves", logs, public):
        d.mkdir(parents=True, exist_ok=True)
    wall_now_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    states, gaps, rows, wl = [], [], [], []
    replay_now_ms = 0
    candles: dict[tuple[str, str], pd.DataFrame] = {}
    for pair in PAIRS:
        for tf in TIMEFRAMES:
            df = load_candles(pair, tf)
            candles[(pair, tf)] = df
            replay_now_ms = max(replay_now_ms, int(df.index[-1]) + TF_MS[tf])
    for pair in PAIRS:
        symbol = pair[:-4] + "/USDT"
        m1 = candles[(pair, "1m")]
        last_day = m1[m1.index >= m1.index[-1] - 86_400_000]
        wl.append({"pair": pair, "symbol": symbol,
                   "quote_volume_24h": float((last_day["close"] * last_day["volume"]).sum()),
                   "spread_pct": None})
        for tf in TIMEFRAMES:
            df = candles[(pair, tf)]
            path = data_dir / "ohlcv" / pair / f"{tf}.csv"
            state, last_ms = "DAT", int(df.index[-1])
            if (pair, tf) == MISSING:
                state, last_ms = "MIS", None
            else:
                tail = df[df.index >= df.index[-1] - int(candle_days * 86_400_000)]
                if (pair, tf) == STALE:
                    tail = tail.iloc[: len(tail) // 2]
                    state, last_ms = "OLD", int(tail.index[-1])
                path.parent.mkdir(parents=True, exist_ok=True)
                tail.to_csv(path, index_label="timestamp", float_format="%.8g")
                for a, b, n in _gaps(df.index.to_numpy(), TF_MS[tf]):
                    gaps.append({"pair": pair, "timeframe": tf, "from_ms": a, "to_ms": b, "n_missing": n})
            if (pair, tf, "ema_cross") in PROMOTED or any(p[:2] == (pair, tf) for p in PROMOTED):
                state = "OK" if state == "DAT" else state
            states.append({"pair": pair, "timeframe": tf, "state": state, "last_candle_ms": last_ms,
                           "rows": None if last_ms is None else int(len(df))})
            n = len(df)
            split = int(n * 0.7)
            for name, signal, params in ENTRY_SETS:
                def metrics(scale: float) -> dict:
                    n_trades = int(rng.integers(0, 160) * scale)
                    pf = float(rng.uniform(0.6, 2.2)) if n_trades else None
                    return {"n_trades": n_trades,
                            "win_rate_pct": round(float(rng.uniform(25, 70)), 4) if n_trades else None,
                            "profit_factor": pf, "max_drawdown_pct": round(float(rng.uniform(0.5, 25)), 4),
                            "sharpe": round(float(rng.normal(0.4, 1.8)), 4) if n_trades else None,
                            "total_return_pct": round(float(rng.normal(1.0, 8.0)), 4),
                            "expectancy_pct": round(float(rng.normal(0.02, 0.2)), 5) if n_trades else None,
                            "exposure_pct": round(float(rng.uniform(0, 60)), 3)}
                rows.append({
                    "pair": pair, "symbol": symbol, "timeframe": tf, "entry_set": name, "signal": signal,
                    "params": params, "exit_plan": EXIT_PLAN,
                    "in_sample": metrics(1.0), "out_of_sample": metrics(0.4),
                    "period": {"first_ms": int(df.index[0]), "last_ms": int(df.index[-1])},
                    "bars": n, "data_source": "offline sample", "config_id": "3f9a2c1b7d",
                    "n_configs_tried": 48,
                    "folds": [{"fold": k, "train": [int(df.index[0]), int(df.index[split])],
                               "test": [int(df.index[split]), int(df.index[-1])]} for k in range(3)],
                })
    wl.sort(key=lambda r: -r["quote_volume_24h"])
    strategies = []
    for pair, tf, entry in PROMOTED:
        df = candles[(pair, tf)]
        oos = df.iloc[int(len(df) * 0.7):]
        params = dict(next(p for n_, _, p in ENTRY_SETS if n_ == entry))
        fast, slow = (params.get("fast", 9), params.get("slow", 30)) if "fast" in params else (8, 34)
        ts, eq, dd, trades = _toy_curve(oos, fast * 4, slow * 4, fee=0.0002)
        curve_name = f"{pair}_{tf}_{entry}.json"
        (reports / "curves" / curve_name).write_text(json.dumps({
            "timestamps_ms": ts.tolist(), "equity_quote": np.round(eq, 6).tolist(),
            "drawdown_pct": np.round(dd, 6).tolist(), "trades": trades}))
        row = next(r for r in rows if (r["pair"], r["timeframe"], r["entry_set"]) == (pair, tf, entry))
        # the promoted row's out-of-sample numbers agree with its curve (test data, still coherent)
        wins = [t for t in trades if t["pnl_quote"] > 0]
        row["out_of_sample"].update({
            "n_trades": len(trades), "total_return_pct": round(float(eq[-1] / eq[0] - 1) * 100, 4),
            "max_drawdown_pct": round(float(dd.max()), 4),
            "win_rate_pct": round(100 * len(wins) / len(trades), 4) if trades else None})
        strategies.append({
            "pair": pair, "timeframe": tf, "entry_set": entry, "signal": row["signal"],
            "params": row["params"], "exit_plan": EXIT_PLAN, "metrics": row["out_of_sample"],
            "in_sample": row["in_sample"],
            # promotion stamps with the cycle's clock: the replay clock offline
            "promoted_at": _iso(replay_now_ms - 3_600_000), "promoted_at_ms": replay_now_ms - 3_600_000,
            "expires_at": _iso(replay_now_ms + 23 * 3_600_000), "expires_at_ms": replay_now_ms + 23 * 3_600_000,
            "risk_mode": "aggressive", "curve": f"curves/{curve_name}",
        })
    import yaml

    strategies_path = root / "strategies.yml"
    strategies_path.write_text(yaml.safe_dump({"strategies": strategies}, sort_keys=False))
    (reports / "summary.json").write_text(json.dumps({
        "generated_at_ms": wall_now_ms - 30_000, "config_id": "3f9a2c1b7d", "data_source": "offline sample",
        "clock": {"kind": "replay", "now_ms": replay_now_ms, "label": "replay · 2021-05-03 00:00 UTC"},
        "rows": rows}))
    (reports / "status.json").write_text(json.dumps({
        "cycle": {"started_at_ms": wall_now_ms - 75_000, "finished_at_ms": wall_now_ms - 20_000,
                  "duration_s": 55.2, "next_run_ms": wall_now_ms + 40_000},
        "clock": {"kind": "replay", "now_ms": replay_now_ms, "label": "replay · 2021-05-03 00:00 UTC"},
        "data_source": "offline sample", "timeframes": list(TIMEFRAMES), "pairs": list(PAIRS),
        "states": states,
        "errors": [{"pair": "LINKUSDT", "timeframe": "15m", "stage": "backtest",
                    "message": "DataError: data/ohlcv/LINKUSDT/15m.csv: no candle file. Re-run the backfill for LINKUSDT 15m."}],
        "gaps": gaps}))
    (reports / "watchlist.json").write_text(json.dumps({
        "generated_at_ms": wall_now_ms - 70_000, "source": "offline sample", "rank_by": "quote_volume_24h",
        "pairs": wl}))
    lines = []
    t = wall_now_ms - 400 * 60_000
    for i in range(400):
        stamp = dt.datetime.fromtimestamp((t + i * 60_000) / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        pair = PAIRS[i % len(PAIRS)]
        lines.append(f"{stamp} INFO engine.backfill: {pair} 1m: seeded 2880 candles 2021-05-01 00:00 → "
                     f"2021-05-02 23:59 UTC, 0 gaps [cfg 3f9a2c]")
    lines.append(f"{stamp} WARNING jobs.maintainer: LINKUSDT 15m skipped: no candle file")
    (logs / "maintainer.log").write_text("\n".join(lines) + "\n")
    return SimpleNamespace(data_dir=data_dir, reports_dir=reports, logs_dir=logs, public_dir=public,
                           html_host="127.0.0.1", html_port=0, quote="USDT", tf_list=TIMEFRAMES,
                           strategies_path=strategies_path, now_ms=replay_now_ms, root=root)
