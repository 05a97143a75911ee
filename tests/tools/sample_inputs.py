"""Dashboard inputs written by the real producers, from one offline maintainer cycle.

Used by tests/tools/conftest.py and by tools/bench_dashboard.py. :func:`write_sample_inputs` runs
``engine.cycle.run_once`` on the bundled real candles (data_source ``sample``, replay clock):
watchlist, candles, research (every pair × 1m/5m/15m × entry set of entries_config.json, the
search of backtest_config.json), summary.json, strategies.yml.next, curves and status.json, each
through its one producer (:mod:`engine.research.reports`). Then, to give the page every case it
draws, it changes the store and the promoted strategies the way later events would, again through
the producers: six candidates promoted with ``engine.promotion.promote`` (an hour before the replay
clock, 24 h TTL) and saved by ``engine.strategy.promoted.save_strategies``; candle files trimmed to
their last days with ``engine.data.store.write_candles`` (the page reads only the tail), one file
gone (MIS), one stale (OLD); status.json rewritten by ``engine.cycle.write_status``, its errors
holding the store's own message for the missing file. Only maintainer.log is written by hand.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEFRAMES = ("1m", "5m", "15m")
#: The watchlist of the bundled sample: the 10 pairs of highest 24 h quote volume.
PAIRS = ("BTCUSDT", "DOGEUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT", "VETUSDT", "ETCUSDT", "ADAUSDT", "DOTUSDT",
         "MATICUSDT")
#: (pair, timeframe) whose research candidate is promoted.
PROMOTED_KEYS = (("BTCUSDT", "1m"), ("ETHUSDT", "5m"), ("BNBUSDT", "15m"), ("DOGEUSDT", "15m"), ("XRPUSDT", "1m"),
                 ("ADAUSDT", "5m"))
#: A (pair, timeframe) whose candle file is gone (state MIS) and one that is stale (state OLD).
MISSING = ("MATICUSDT", "15m")
STALE = ("ETCUSDT", "1m")


def _env(root: Path) -> dict[str, str]:
    return {"SCALP_DATA_DIR": str(root / "data"), "SCALP_REPORTS_DIR": str(root / "reports"),
            "SCALP_LOGS_DIR": str(root / "logs"), "SCALP_PUBLIC_DIR": str(root / "public"),
            "SCALP_STRATEGIES_FILE": str(root / "strategies.yml"), "SCALP_URLS_DIR": str(root),
            "SCALP_DATA_SOURCE": "sample", "SCALP_TOPN": str(len(PAIRS)), "SCALP_TF_LIST": ",".join(TIMEFRAMES),
            "SCALP_RISK_MODE": "aggressive"}


def write_sample_inputs(root: Path, *, candle_days: float = 2.0) -> SimpleNamespace:
    """Run one offline cycle into `root`, then set up the cases above; return a runtime-like namespace.

    Parameters
    ----------
    root : Path
        Empty folder; gets data/ohlcv, reports (+ curves), logs, public, strategies.yml.
    candle_days : float
        Days of candles kept per candle CSV (the dashboard reads only the tail).

    Returns
    -------
    SimpleNamespace
        RuntimeConfig-like: data_dir, reports_dir, logs_dir, public_dir, html_host, html_port,
        quote, tf_list, urls_dir, plus strategies_path, now_ms (the replay clock, epoch ms), root,
        and promoted: the (pair, timeframe, entry set) of each promoted strategy.
    """
    from engine import cycle, promotion
    from engine.clock import Clock
    from engine.config import load_settings
    from engine.data import store
    from engine.errors import DataError
    from engine.research import reports
    from engine.research.reports import StageError
    from engine.strategy.promoted import save_strategies

    root = Path(root)
    settings = load_settings(env=_env(root))
    rt = settings.runtime
    summary = cycle.run_once(settings, workers=1)
    now_ms = summary.clock.now_ms
    assert tuple(summary.pairs) == PAIRS, summary.pairs

    candidates = {(c.pair, c.timeframe): c for c in reports.read_candidates(
        rt.reports_dir / reports.CANDIDATES_FILE).candidates}
    promoted = [promotion.promote(candidates[key], risk_mode="aggressive", now_ms=now_ms - 3_600_000, ttl_hours=24)
                for key in PROMOTED_KEYS]
    save_strategies(rt.strategies_file, promoted, now_ms)

    for pair in PAIRS:
        for tf in TIMEFRAMES:
            path = store.candle_path(rt.data_dir, pair, tf)
            candles = store.read_candles(path, tf)
            tail = candles[candles.index >= candles.index[-1] - dt.timedelta(days=candle_days)]
            if (pair, tf) == STALE:
                tail = tail.iloc[: len(tail) // 2]
            store.write_candles(path, tail, timeframe=tf, source="sample")
    missing = store.candle_path(rt.data_dir, *MISSING)
    missing.unlink()
    try:
        store.read_candles(missing, MISSING[1])
    except DataError as e:  # the store's own message for a missing file
        summary.errors.append(StageError("research", str(e), *MISSING))
    cycle.write_status(settings.app, summary, Clock.replay(now_ms), next_run_ms=summary.finished_at_ms + 60_000)

    rt.logs_dir.mkdir(parents=True, exist_ok=True)
    lines, t = [], summary.started_at_ms - 400 * 60_000
    for i in range(400):
        stamp = dt.datetime.fromtimestamp((t + i * 60_000) / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp} INFO engine.data.backfill: {PAIRS[i % len(PAIRS)]} 1m: seeded 2880 candles "
                     f"2021-05-01 00:00 → 2021-05-02 23:59 UTC, 0 gaps [cfg 3f9a2c]")
    lines.append(f"{stamp} WARNING engine.research.pipeline: {' '.join(MISSING)}: research skipped: no candle file")
    (rt.logs_dir / "maintainer.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return SimpleNamespace(data_dir=rt.data_dir, reports_dir=rt.reports_dir, logs_dir=rt.logs_dir,
                           public_dir=rt.public_dir, html_host="127.0.0.1", html_port=0, quote="USDT",
                           tf_list=TIMEFRAMES, urls_dir=root, strategies_path=rt.strategies_file, now_ms=now_ms,
                           root=root, promoted=tuple((s.pair, s.timeframe, s.entry_set) for s in promoted))
