"""Dashboard inputs written by the real producers, from one offline maintainer cycle.

Used by tests/tools/conftest.py and by tools/bench_dashboard.py. :func:`write_sample_inputs` runs
``engine.cycle.run_once`` on the bundled real candles (data_source ``sample``, replay clock):
watchlist, candles, research (every pair × 1m/5m/15m × entry set of entries_config.json, the
search of backtest_config.json), summary.json, strategies.yml.next, curves and status.json, each
through its one producer (:mod:`engine.research.reports`). Where the research stage left a row's
``judgement`` empty (no twins drawn), :func:`add_judgements` fills it with seeded stand-in values of
the documented shapes (random-entry twins drawn around the row, trials counted per slot, a PBO per
slot, the last fold as the deployed parameters, costs and break-even from the row's own costs and
expectancy) and writes summary.json and strategies.yml.next back through their producers. Then, to
give the page every case it draws, it changes the store and the promoted strategies the way later events would, again through
the producers: six candidates promoted with ``engine.promotion.promote`` (an hour before the replay
clock, 24 h TTL) and saved by ``engine.strategy.promoted.save_strategies``; candle files trimmed to
their last days with ``engine.data.store.write_candles`` (the page reads only the tail), one file
gone (MIS), one stale (OLD); status.json rewritten by ``engine.cycle.write_status``, its errors
holding the store's own message for the missing file. Only maintainer.log is written by hand.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
import statistics
import zlib
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


#: Random-entry twins drawn per row by :func:`add_judgements` (the stand-in values), and their seed.
N_TWINS = 200
TWINS_SEED = 20210503


def _stand_in_judgement(row, n_trials_slot: int, pbo: float):
    """Return a :class:`~engine.research.reports.rows.Judgement` of the documented shapes for `row`.

    Twins: :data:`N_TWINS` returns drawn (seeded by the row's key) from a normal distribution
    around a median between -3 % and +1 %; the p-value is the share of twins at least as good as
    the row's out-of-sample return (NaN without trades), the histogram 10 equal bins over the
    twins' range. One row in four gets a holdout.
    """
    from engine.research.reports.rows import Judgement

    rng = random.Random(zlib.crc32(f"{row.pair} {row.timeframe} {row.entry_set}".encode()) ^ TWINS_SEED)
    oos = row.out_of_sample
    ret = oos.get("total_return_pct", float("nan"))
    twins = [rng.gauss(rng.uniform(-3.0, 1.0), rng.uniform(0.5, 4.0)) for _ in range(N_TWINS)]
    lo, hi = min(twins), max(twins)
    edges = [round(lo + (hi - lo) * k / 10, 4) for k in range(11)]
    counts = [0] * 10
    for t in twins:
        counts[min(9, int((t - lo) / (hi - lo) * 10))] += 1
    median = statistics.median(twins)
    traded = int(oos.get("n_trades") or 0) > 0 and ret == ret
    cost_bps = 2 * (row.costs.fee_bps + row.costs.slippage_bps)
    net = oos.get("expectancy_pct", float("nan"))
    last = row.folds[-1] if row.folds else None
    holdout = {}
    if rng.random() < 0.25:
        holdout = {"total_return_pct": round(rng.uniform(-4, 3), 3), "sharpe": round(rng.uniform(-3, 3), 3),
                   "n_trades": rng.randint(0, 40), "max_drawdown_pct": round(rng.uniform(0, 8), 3)}
    return Judgement(
        p_value_vs_random=sum(t >= ret for t in twins) / N_TWINS if traded else float("nan"),
        excess_vs_random_pct=ret - median if traded else float("nan"), twins_median_pct=median,
        twins_hist={"edges": edges, "counts": counts}, n_twins=N_TWINS, twins_seed=TWINS_SEED,
        n_trials_slot=n_trials_slot, pbo=pbo,
        deployed_params=dict(last.params) if last else {}, deployed_oos=dict(last.out_of_sample) if last else {},
        cost_per_trade_bps=cost_bps, expectancy_gross_pct=net + cost_bps / 100, expectancy_net_pct=net,
        break_even_cost_bps=(net + cost_bps / 100) * 100, holdout=holdout)


def add_judgements(reports_dir: Path) -> None:
    """Give every summary row and candidate whose ``judgement`` is empty (``n_twins == 0``) stand-in
    values (:func:`_stand_in_judgement`); write both files back through their producers.

    ``n_trials_slot`` is the sum of ``n_configs_tried`` over the entry sets of the row's
    pair × timeframe (every configuration that competed for the slot); the PBO is one seeded value
    per slot. Rows the research stage already judged keep their values.
    """
    from engine.research import reports

    summary_path, candidates_path = reports_dir / reports.SUMMARY_FILE, reports_dir / reports.CANDIDATES_FILE
    summary = reports.read_summary(summary_path)
    trials: dict[tuple[str, str], int] = {}
    for r in summary.rows:
        trials[(r.pair, r.timeframe)] = trials.get((r.pair, r.timeframe), 0) + r.n_configs_tried
    pbo = {key: round(random.Random(zlib.crc32(" ".join(key).encode())).uniform(0.05, 0.9), 3) for key in trials}
    rows = tuple(r if r.judgement.n_twins else dataclasses.replace(
        r, judgement=_stand_in_judgement(r, trials[(r.pair, r.timeframe)], pbo[(r.pair, r.timeframe)]))
        for r in summary.rows)
    reports.write_summary(summary_path, dataclasses.replace(summary, rows=rows))
    by_key = {(r.pair, r.timeframe, r.entry_set): r.judgement for r in rows}
    cands = reports.read_candidates(candidates_path)
    reports.write_candidates(candidates_path, dataclasses.replace(cands, candidates=tuple(
        c if c.judgement.n_twins else dataclasses.replace(c, judgement=by_key[(c.pair, c.timeframe, c.entry_set)])
        for c in cands.candidates)))


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
    add_judgements(rt.reports_dir)

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


def promote_again(root: Path, risk_mode: str, now_ms: int) -> list:
    """Judge the stored candidates again by `risk_mode`'s rules (config.yaml) into an empty
    strategies.yml, through :func:`engine.promotion.promote_file`, and write promotion.json as
    :func:`engine.cycle.run_once` writes it; return the decisions.

    With ``conservative`` on the bundled sample nothing passes: the case "No strategy beat chance
    this cycle".
    """
    from engine import promotion
    from engine.config import load_settings
    from engine.fileio import write_json
    from engine.strategy.promoted import save_strategies

    settings = load_settings(env={**_env(root), "SCALP_RISK_MODE": risk_mode})
    rt, rules = settings.app.runtime, settings.app.rules
    save_strategies(rt.strategies_file, [], now_ms)
    decisions, _ = promotion.promote_file(rt.reports_dir / "strategies.yml.next", rt.strategies_file, rules,
                                          risk_mode=risk_mode, now_ms=now_ms, ttl_hours=rt.strategy_ttl_hours,
                                          age_mult=rt.age_mult)
    write_json(rt.reports_dir / "promotion.json", {"generated_at_ms": now_ms, "risk_mode": risk_mode,
                                                   "rules": rules.__dict__,
                                                   "decisions": [d.to_json() for d in decisions]})
    return decisions
