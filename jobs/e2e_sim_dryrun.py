"""End-to-end dry-run simulator: the top N pairs by lowest spread, an order plan each, nothing sent.

    python -m jobs.e2e_sim_dryrun --top 10 --rank spread --tp "0.9:50,1.4:30,2.1:20" --sl "-0.5" \\
        --breakeven 1 --validate_only 1 --output-dir var/e2e_runs/2026-11-30
    python -m jobs.e2e_sim_dryrun --snapshots engine/sample/orderbook/bybit_linear-perp_2026-08-09.csv.gz --top 3
    python -m jobs.e2e_sim_dryrun --offline --top 5          # bundled candles, spread *estimated*

Where the spreads come from, in this order: ``--snapshots FILE`` (recorded top-of-book snapshots);
the exchange (``--exchange``, default the config's), polled with ``fetch_tickers`` over
``--spread_window_s``; offline (``--offline``, or the exchange cannot be reached) the stored candles
of ``data_dir`` or the bundled sample, with the spread estimated by a published high–low estimator
and labelled "estimate" in every output. Every payload is Kraken WS v2 with ``validate: true``; the
simulator sends no order anywhere. Writes ``<PAIR>.plan.json``, ``summary.ndjson``,
``run_report.json`` to ``--output-dir`` (default ``var/e2e_runs/<UTC date>``) and
``<runtime.metrics_dir>/e2e_sim.prom`` (default ``var/metrics.d``). Exit 0 on success, 2 on a bad flag or input.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402
from engine.errors import ConfigError  # noqa: E402

PROG = "e2e_sim_dryrun"


def _flag01(text: str) -> bool:
    if text not in ("0", "1", "true", "false"):
        raise ConfigError(f"{text!r}: expected 1 or 0")
    return text in ("1", "true")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Rank pairs by lowest spread, plan each one (validate-only "
                                              "payloads), write plans, summary, report and metrics. Sends nothing.")
    add_common_flags(p)
    p.add_argument("--top", type=int, default=50, help="pairs kept after ranking (default 50)")
    p.add_argument("--rank", default="spread", choices=("spread",), help="ranking: median spread %% (the only one)")
    p.add_argument("--spread_window_s", type=float, default=60.0, help="sliding window of the median, seconds (60)")
    p.add_argument("--min_top_size", type=float, default=0.0, help="least top-of-book size, base units (0: off)")
    p.add_argument("--min_quote_band_usd", type=float, default=0.0,
                   help="least top-of-book value, quote currency (0: off)")
    p.add_argument("--qty", type=float, default=None, help="entry quantity, base units (default: --notional / price)")
    p.add_argument("--notional", type=float, default=None, help="entry notional, quote (default ENTRY_MAX_NOTIONAL)")
    p.add_argument("--limit", type=float, default=None,
                   help="absolute entry limit price, for one pair (default: the best bid, or the last close)")
    p.add_argument("--tp", default="0.9:50,1.4:30,2.1:20", help='take-profit ladder "pct:alloc,..."')
    p.add_argument("--sl", type=float, default=-0.5, help="stop-loss, %% from entry (negative)")
    p.add_argument("--breakeven", type=_flag01, default=True, help="1: move the stop to breakeven after TP1 (default 1)")
    p.add_argument("--breakeven_offset_pct", type=float, default=0.05, help="breakeven offset above entry, %% (0.05)")
    p.add_argument("--validate_only", type=_flag01, default=True, help="must be 1: the simulator never sends an order")
    p.add_argument("--output-dir", type=Path, default=None, help="default var/e2e_runs/<UTC date>")
    p.add_argument("--exchange", default=None, help="ccxt exchange id (default: the config's runtime.exchange)")
    p.add_argument("--pairs", default=None, help="comma-separated pairs to rank (default: the exchange's or sample's)")
    p.add_argument("--snapshots", type=Path, action="append", default=None,
                   help="recorded top-of-book CSV (timestamp_ms,symbol,bid,ask,bid_size,ask_size); repeatable")
    p.add_argument("--offline", action="store_true", help="do not ask the exchange: estimate spreads from candles")
    p.add_argument("--estimator", default="corwin_schultz", choices=("corwin_schultz", "abdi_ranaldo"),
                   help="high-low spread estimator for pairs without snapshots (default corwin_schultz)")
    p.add_argument("--metrics-file", type=Path, default=None, help="default <runtime.metrics_dir>/e2e_sim.prom (var/metrics.d)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose, args.quiet)
    return run_cli(PROG, lambda: _run(args))


def _settings(args):
    from engine.desk.e2e import E2ESettings
    from engine.strategy.exits import ExitPlan

    if not args.validate_only:
        raise ConfigError("--validate_only 0: the dry-run simulator never sends an order; every payload carries "
                          "validate: true (use the executors of engine.execution for real orders)")
    plan = ExitPlan.from_dict({"tp": args.tp, "sl_pct": args.sl, "breakeven": bool(args.breakeven) and bool(args.tp),
                               "breakeven_offset_pct": args.breakeven_offset_pct}, where="command line")
    for name in ("qty", "notional", "limit"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise ConfigError(f"--{name} {v!r}: expected a number > 0")
    return E2ESettings(top=args.top, spread_window_s=args.spread_window_s, min_top_size=args.min_top_size,
                       min_quote_band_usd=args.min_quote_band_usd, qty=args.qty, notional_quote=args.notional,
                       limit=args.limit, exit_plan=plan, estimator=args.estimator)


def _offline_candles(rt, pairs: list[str] | None) -> dict:
    from engine.data import sample_pairs
    from engine.data.sample import load_sample
    from engine.data.store import candle_path, read_candles

    out = {}
    for pair in pairs or sample_pairs():
        path = candle_path(rt.data_dir, pair, "1m")
        out[pair] = read_candles(path, "1m") if path.exists() else load_sample(pair, "1m")
    return out


def _run(args) -> int:
    import logging
    from datetime import datetime, timezone

    from engine.clock import Clock
    from engine.config import load_settings
    from engine.desk import e2e
    from engine.desk.spread import read_snapshots
    from engine.errors import ExchangeError
    from engine.execution.tunables import REPO_ROOT, load_tunables
    from engine.markets import pair_to_folder

    settings = _settings(args)
    rt = load_settings(args.config).runtime
    tunables = load_tunables()
    now_ms = Clock.wall().now_ms()
    pairs = [pair_to_folder(p.strip()) for p in args.pairs.split(",") if p.strip()] if args.pairs else None
    snapshots, candles, markets, source = None, None, None, "offline"
    if args.snapshots:
        import pandas as pd

        snapshots = pd.concat([read_snapshots(p) for p in args.snapshots], ignore_index=True)
        snapshots = snapshots.sort_values("timestamp_ms", kind="stable").reset_index(drop=True)
        if pairs:
            snapshots = snapshots[snapshots["symbol"].isin(pairs)]
        source = "recorded: " + ", ".join(p.name for p in args.snapshots)
    elif not args.offline:
        try:
            snapshots, markets = _online(args, rt, pairs, settings)
            source = args.exchange or rt.exchange
        except ExchangeError as e:
            logging.getLogger(PROG).warning("exchange not reachable (%s); estimating spreads from candles", str(e)[:200])
    if snapshots is None:
        candles = _offline_candles(rt, pairs)
        source = "offline: spreads estimated from candles"
    out_dir = args.output_dir or REPO_ROOT / "var" / "e2e_runs" / datetime.now(timezone.utc).strftime("%Y-%m-%d")
    report = e2e.run_e2e(settings, output_dir=out_dir, tunables=tunables, now_ms=now_ms, snapshots=snapshots,
                         candles=candles, markets=markets,
                         metrics_path=args.metrics_file or Path(rt.metrics_dir) / e2e.METRICS_FILE.name,
                         source=source, dashboard_path=Path(rt.reports_dir) / "dryrun_plans.json")
    for row in report["ranking"]:
        print(f"{row['rank']:>3} {row['symbol']:<12} spread {row['spread_pct']:.6f} %  ({row['source']})")
    print(f"{report['n_planned']} plans, {report['n_payloads']} validate-only payloads, 0 sent; "
          f"{report['n_filtered']} pairs filtered → {out_dir}")
    return 0


def _online(args, rt, pairs, settings):
    """Snapshots over the window from the exchange, and its market rules."""
    from engine.desk.e2e import collect_snapshots
    from engine.exchange import ensure_markets, make_exchange
    from engine.exchange.precision import MarketRules
    from engine.markets import folder_to_pair, pair_to_folder

    exchange = make_exchange(args.exchange or rt.exchange, timeout_ms=rt.exchange_timeout_ms)
    ensure_markets(exchange)
    if pairs:
        symbols = [folder_to_pair(p) for p in pairs]
    else:
        symbols = sorted(s for s, m in exchange.markets.items() if m.get("spot") and m.get("active", True)
                         and m.get("quote") == rt.quote)[: max(3 * settings.top, settings.top)]
    snaps = collect_snapshots(exchange, symbols, window_s=settings.spread_window_s)
    markets = {pair_to_folder(s): MarketRules.from_ccxt_market(exchange.markets[s]) for s in symbols
               if s in exchange.markets}
    return snaps, markets


if __name__ == "__main__":
    sys.exit(main())
