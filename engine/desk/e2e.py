"""The end-to-end dry-run simulator: rank pairs by spread, keep the top N, plan each one, send nothing.

Seed 000 ("E2E simulatie, top-N laagste spread"), on the execution core:

1. **Rank.** The median percentage spread over a sliding window of top-of-book snapshots, lowest
   first, after the liquidity filters (:func:`engine.desk.spread.measured_spreads`). Snapshots come
   from the exchange (:func:`collect_snapshots`: ccxt ``fetch_tickers`` every few seconds over the
   window) or from recorded files. A pair without snapshots is ranked by a high–low spread
   estimator on its candles, labelled as an estimate everywhere; an estimate never ranks above a
   measurement (they are not comparable).
2. **Plan.** Per kept pair an order plan from the execution core's builder
   (:func:`engine.execution.order_plan.build_order_plan`: entry limit, take-profit ladder, stop-loss,
   breakeven move, rounded to the market's rules), the guards' decision on its entry, and its Kraken
   WebSocket v2 messages (:func:`engine.execution.kraken_plan.plan_messages`), every one with
   ``validate: true``. Nothing is sent, to Kraken or anywhere.
3. **Write** ``<pair>.plan.json``, ``summary.ndjson`` (one line per planned pair) and
   ``run_report.json`` in the output folder, and Prometheus text-format counters and gauges to
   ``var/metrics.d/e2e_sim.prom`` (``prometheus_client.write_to_textfile``).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from engine.clock import iso_ms
from engine.desk.spread import MEASURED, SNAPSHOT_COLUMNS, SpreadStat, estimated_spreads, measured_spreads, rank
from engine.errors import ConfigError, GuardError, PayloadError
from engine.exchange.precision import MarketRules
from engine.execution.guards import OrderRequest, decide
from engine.execution.kraken_plan import plan_messages
from engine.execution.order_plan import build_order_plan
from engine.execution.tunables import REPO_ROOT, Tunables
from engine.fileio import atomic_write_text, json_safe
from engine.markets import folder_to_pair, pair_to_folder
from engine.strategy.exits import ExitPlan

logger = logging.getLogger(__name__)

METRICS_FILE = REPO_ROOT / "var" / "metrics.d" / "e2e_sim.prom"


@dataclass(frozen=True)
class E2ESettings:
    """One run's settings (the CLI's flags).

    Attributes
    ----------
    top : int
        Pairs kept after ranking.
    spread_window_s : float
        Sliding window of the median spread, seconds.
    min_top_size, min_quote_band_usd : float
        Liquidity filters (base units; quote currency), 0 = off.
    qty : float or None
        Entry quantity, base units; None = ``notional_quote`` / entry price.
    notional_quote : float or None
        Entry notional when `qty` is not given (default: ``ENTRY_MAX_NOTIONAL``).
    limit : float or None
        Absolute entry limit price (one pair only); None = the best bid (or the last close).
    exit_plan : ExitPlan
        Take-profit ladder, stop-loss, breakeven (the one exit model).
    estimator : str
        ``corwin_schultz`` or ``abdi_ranaldo`` for pairs without snapshots.
    estimate_bars : int
        Candles the estimator uses (the newest).
    """

    top: int = 50
    spread_window_s: float = 60.0
    min_top_size: float = 0.0
    min_quote_band_usd: float = 0.0
    qty: float | None = None
    notional_quote: float | None = None
    limit: float | None = None
    exit_plan: ExitPlan = ExitPlan()
    estimator: str = "corwin_schultz"
    estimate_bars: int = 1440


def collect_snapshots(exchange: Any, symbols: list[str], *, window_s: float, interval_s: float = 2.0,
                      sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> pd.DataFrame:
    """Poll ccxt ``fetch_tickers`` every `interval_s` for `window_s` seconds; return the snapshots.

    Bid/ask sizes are the tickers' ``bidVolume`` / ``askVolume`` (base units; NaN when the exchange
    leaves them out). Symbols without a valid bid/ask in a poll are skipped for that poll.

    Raises
    ------
    ExchangeError
        The exchange refuses or cannot be reached after retries (:mod:`engine.exchange.retry`).
    """
    import ccxt

    from engine.exchange import retry as retry_policy

    rows, end = [], clock() + float(window_s)
    while True:
        try:
            tickers = retry_policy.call_with_retry(exchange, exchange.fetch_tickers, symbols,
                                                   what=f"{exchange.id} fetch_tickers")
        except ccxt.BaseError as e:
            raise retry_policy.translate(e, what=f"{exchange.id} fetch_tickers") from e
        now_ms = int(clock() * 1000)
        for sym in symbols:
            t = tickers.get(sym) or {}
            bid, ask = t.get("bid"), t.get("ask")
            if bid and ask and 0 < bid < ask:
                rows.append((int(t.get("timestamp") or now_ms), pair_to_folder(sym), float(bid), float(ask),
                             float(t.get("bidVolume") or math.nan), float(t.get("askVolume") or math.nan)))
        if clock() + interval_s > end:
            break
        sleep(interval_s)
    frame = pd.DataFrame(rows, columns=list(SNAPSHOT_COLUMNS))
    return frame.sort_values("timestamp_ms", kind="stable").reset_index(drop=True)


def rank_pairs(settings: E2ESettings, *, snapshots: pd.DataFrame | None, candles: Mapping[str, pd.DataFrame] | None,
               now_ms: int | None = None) -> tuple[list[SpreadStat], list[SpreadStat]]:
    """Return (kept, every stat): measured pairs first (lowest spread), then estimated ones, `top` in all."""
    measured = [] if snapshots is None or snapshots.empty else measured_spreads(
        snapshots, window_s=settings.spread_window_s, now_ms=now_ms, min_top_size=settings.min_top_size,
        min_quote_band_usd=settings.min_quote_band_usd)
    have = {s.symbol for s in measured}
    rest = {p: c for p, c in (candles or {}).items() if p not in have}
    estimated = estimated_spreads(rest, method=settings.estimator, bars=settings.estimate_bars) if rest else []
    kept = rank(measured, settings.top) if measured else []
    if len(kept) < settings.top and estimated:
        kept += rank(estimated, settings.top - len(kept))
    return kept, measured + estimated


def _reference(stat: SpreadStat, snapshots: pd.DataFrame | None, candles: Mapping[str, pd.DataFrame] | None) -> float:
    """Best bid of the newest snapshot (measured) or the last close (estimate)."""
    if not stat.is_estimate and snapshots is not None:
        return float(snapshots[snapshots["symbol"] == stat.symbol]["bid"].iloc[-1])
    return float((candles or {})[stat.symbol]["close"].iloc[-1])


def plan_pair(stat: SpreadStat, rank_no: int, settings: E2ESettings, *, reference_price: float, market: MarketRules,
              tunables: Tunables, now_ms: int) -> dict[str, Any]:
    """The plan file of one pair: the ranking line, the order plan, the guards' decision, the WS v2 messages."""
    symbol = market.symbol
    limit = settings.limit if settings.limit is not None else reference_price
    qty = settings.qty if settings.qty is not None else (settings.notional_quote or tunables.ENTRY_MAX_NOTIONAL) / limit
    out: dict[str, Any] = {"pair": stat.symbol, "symbol": symbol, "rank": rank_no, "spread": stat.to_json(),
                           "reference_price": reference_price, "entry_limit": limit, "qty_base": qty,
                           "exit_plan": settings.exit_plan.to_dict(), "validate": True}
    try:
        plan = build_order_plan(settings.exit_plan, market, reference_price=limit, notional_quote=qty * limit,
                                entry_type="limit")
    except GuardError as e:
        return {**out, "planned": False, "reasons": [str(e)], "legs": [], "payloads": []}
    order = OrderRequest(symbol, "buy", "entry", "limit", plan.entry.quantity_base, plan.entry.price,
                         limit_price=plan.entry.price)
    decision = decide(order, tunables=tunables, positions={}, requested="dry-run")
    try:
        payloads = plan_messages(plan, tunables=tunables, now_ms=now_ms, validate=True,
                                 client_prefix=f"e2e{rank_no}")
    except PayloadError as e:
        return {**out, "planned": False, "reasons": [str(e)], "legs": [], "payloads": []}
    legs = [{"role": leg.role, "side": leg.side, "order_type": leg.order_type, "quantity_base": leg.quantity_base,
             "price": leg.price, "trail_pct": leg.trail_pct, "step": leg.step} for leg in plan.legs]
    return {**out, "planned": True, "decision": decision.to_json(), "notes": list(plan.notes), "legs": legs,
            "breakeven_amend": None if plan.breakeven_stop is None else {
                "after": "TP1 fill", "trigger_price": plan.breakeven_stop.price,
                "quantity_base": plan.breakeven_stop.quantity_base},
            "payloads": payloads}


def run_e2e(settings: E2ESettings, *, output_dir: Path | str, tunables: Tunables, now_ms: int,
            snapshots: pd.DataFrame | None = None, candles: Mapping[str, pd.DataFrame] | None = None,
            markets: Mapping[str, MarketRules] | None = None, metrics_path: Path | str | None = METRICS_FILE,
            source: str = "offline", dashboard_path: Path | str | None = None) -> dict[str, Any]:
    """Rank, plan and write one dry-run run; return the run report (also ``run_report.json``).

    Parameters
    ----------
    settings : E2ESettings
    output_dir : path
        Receives ``<PAIR>.plan.json``, ``summary.ndjson`` and ``run_report.json``.
    tunables : Tunables
        The guards' limits and the payload defaults.
    now_ms : int
        The run's clock (epoch ms): payload deadlines and the window's end.
    snapshots : DataFrame, optional
        Top-of-book snapshots (:data:`~engine.desk.spread.SNAPSHOT_COLUMNS`).
    candles : mapping, optional
        ``PAIR`` → candles, for pairs without snapshots (and their reference price).
    markets : mapping, optional
        ``PAIR`` → MarketRules (ccxt market data); default: no rounding.
    metrics_path : path or None
        The Prometheus textfile (None: not written).
    source : str
        Where snapshots came from, for the report (``binance``, ``recorded: <file>``, ``offline``).
    dashboard_path : path, optional
        Where to write the latest run for the dashboard (``<reports_dir>/dryrun_plans.json``: the
        ranking with each spread's source, and each plan's entry, legs and decision).

    Raises
    ------
    ConfigError
        ``limit`` with more than one pair to plan, or nothing to rank.
    """
    started = time.perf_counter()
    if snapshots is None and not candles:
        raise ConfigError("nothing to rank: no order-book snapshots and no candles")
    window_end = None if snapshots is None or snapshots.empty else int(snapshots["timestamp_ms"].max())
    kept, stats = rank_pairs(settings, snapshots=snapshots, candles=candles, now_ms=window_end)
    if settings.limit is not None and len(kept) > 1:
        raise ConfigError(f"--limit {settings.limit:g} is one absolute price: plan one pair with it (--top 1 or "
                          f"--pairs), not {len(kept)}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_lines, plans = [], []
    for i, stat in enumerate(kept, start=1):
        market = (markets or {}).get(stat.symbol) or MarketRules(folder_to_pair(stat.symbol))
        plan = plan_pair(stat, i, settings, reference_price=_reference(stat, snapshots, candles), market=market,
                         tunables=tunables, now_ms=now_ms)
        atomic_write_text(out / f"{stat.symbol}.plan.json", json.dumps(json_safe(plan), indent=1), lock=False)
        plans.append(plan)
        summary_lines.append(json.dumps(json_safe({
            "rank": i, "pair": stat.symbol, "spread_pct": stat.spread_pct, "source": stat.source,
            "qty_base": plan["qty_base"], "entry_limit": plan["entry_limit"], "planned": plan["planned"],
            "allowed": bool(plan.get("decision", {}).get("allowed", False)), "n_payloads": len(plan["payloads"])})))
    atomic_write_text(out / "summary.ndjson", "".join(line + "\n" for line in summary_lines), lock=False)
    filtered = [s for s in stats if not s.passed]
    report = {
        "generated_at_ms": now_ms, "generated_at": iso_ms(now_ms), "source": source, "settings": {
            "top": settings.top, "rank": "spread", "spread_window_s": settings.spread_window_s,
            "min_top_size": settings.min_top_size, "min_quote_band_usd": settings.min_quote_band_usd,
            "qty": settings.qty, "notional_quote": settings.notional_quote, "limit": settings.limit,
            "exit_plan": settings.exit_plan.to_dict(), "estimator": settings.estimator, "validate_only": True},
        "n_ranked": len(stats), "n_measured": sum(not s.is_estimate for s in stats),
        "n_estimated": sum(s.is_estimate for s in stats), "n_filtered": len(filtered),
        "filtered": [{"pair": s.symbol, "reasons": list(s.reasons)} for s in filtered],
        "n_planned": sum(p["planned"] for p in plans), "n_allowed": sum(bool(p.get("decision", {}).get("allowed"))
                                                                       for p in plans),
        "n_payloads": sum(len(p["payloads"]) for p in plans),
        "ranking": [{"rank": i, **s.to_json()} for i, s in enumerate(kept, start=1)],
        "files": sorted([f"{s.symbol}.plan.json" for s in kept] + ["summary.ndjson", "run_report.json"]),
        "duration_s": round(time.perf_counter() - started, 3), "sent": 0}
    atomic_write_text(out / "run_report.json", json.dumps(json_safe(report), indent=1), lock=False)
    if metrics_path is not None:
        write_metrics(report, plans, Path(metrics_path))
    if dashboard_path is not None:
        atomic_write_text(Path(dashboard_path), json.dumps(json_safe(dashboard_view(report, plans, out)), indent=1),
                          lock=False)
    return report


def dashboard_view(report: Mapping[str, Any], plans: list[Mapping[str, Any]], output_dir: Path) -> dict[str, Any]:
    """The latest run as the dashboard shows it: where spreads came from, then one row per planned pair."""
    rows = []
    for p in plans:
        legs = {(leg["role"], leg["step"]): leg for leg in p["legs"]}
        tps = [leg for (role, _), leg in sorted(legs.items(), key=lambda kv: kv[0][1]) if role == "take_profit"]
        sl = legs.get(("stop_loss", 0))
        rows.append({"rank": p["rank"], "pair": p["pair"], "spread_pct": p["spread"]["spread_pct"],
                     "spread_source": "measured" if p["spread"]["source"] == MEASURED else p["spread"]["source"],
                     "entry_limit": p["entry_limit"], "qty_base": (legs.get(("entry", 0)) or {}).get("quantity_base"),
                     "take_profits": ", ".join(f"{t['quantity_base']:g} @ {t['price']:g}" for t in tps),
                     "stop_loss": None if sl is None else sl["price"],
                     "breakeven_after_tp1": (p.get("breakeven_amend") or {}).get("trigger_price"),
                     "guards": "allowed" if (p.get("decision") or {}).get("allowed") else
                               "; ".join((p.get("decision") or {}).get("reasons", ()) or p.get("reasons", ())),
                     "payloads": f"{len(p['payloads'])} validate-only"})
    return {"generated_at_ms": report["generated_at_ms"], "source": report["source"],
            "pairs_ranked": report["n_ranked"], "measured": report["n_measured"], "estimated": report["n_estimated"],
            "filtered": report["n_filtered"], "orders_sent": 0, "output_dir": str(output_dir), "rows": rows}


def write_metrics(report: Mapping[str, Any], plans: list[Mapping[str, Any]], path: Path) -> Path:
    """Write the run's counters and gauges in the Prometheus text format (``write_to_textfile``)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile

    reg = CollectorRegistry()
    ranked = Counter("e2e_sim_pairs_ranked", "Pairs ranked by spread", ["source"], registry=reg)
    ranked.labels(source="measured").inc(report["n_measured"])
    ranked.labels(source="estimate").inc(report["n_estimated"])
    Counter("e2e_sim_pairs_filtered", "Pairs left out by a liquidity filter", registry=reg).inc(report["n_filtered"])
    Counter("e2e_sim_plans", "Order plans written", registry=reg).inc(report["n_planned"])
    Counter("e2e_sim_payloads_validate_only", "WS v2 messages built, all validate-only", registry=reg).inc(
        report["n_payloads"])
    Counter("e2e_sim_orders_sent", "Orders sent (always 0: a dry run)", registry=reg).inc(0)
    Gauge("e2e_sim_last_run_timestamp_seconds", "When the run's clock was", registry=reg).set(
        report["generated_at_ms"] / 1000.0)
    Gauge("e2e_sim_run_duration_seconds", "Duration of the run", registry=reg).set(report["duration_s"])
    spread = Gauge("e2e_sim_spread_pct", "Spread of each planned pair, percent", ["pair", "source"], registry=reg)
    for p in plans:
        spread.labels(pair=p["pair"], source="measured" if p["spread"]["source"] == MEASURED
                      else "estimate").set(p["spread"]["spread_pct"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), reg)
    return path
