"""Backtest entry sets with walk-forward search, or one strategy on one CSV.

Research over the watchlist (writes reports/summary.json, strategies.yml.next, curves/)::

    python jobs/backtest.py --from-watchlist --tfs 1m,5m,15m
    python jobs/backtest.py --pairs BTCUSDT,ETHUSDT --tfs 5m --json

Many processes or machines on the same optuna studies (mode "optuna"; see README, "Distributed search")::

    python jobs/backtest.py --pairs BTCUSDT --tfs 5m --storage sqlite:///studies.db --study-prefix run1
    python jobs/backtest.py --worker --pairs BTCUSDT --tfs 5m --storage sqlite:///studies.db --study-prefix run1

Lookahead check of every entry set (or one, or your own function ``module:function``)::

    python jobs/backtest.py --check-lookahead [--entry NAME] [--csv FILE --tf 1m]

One backtest on any CSV of candles (prints metrics, writes the trade list)::

    python jobs/backtest.py --csv FILE --tf 1m --entry sma_cross --params '{"fast":10,"slow":30}' \\
        --tp "1.0:100" --sl -0.5 --fee-bps 10 --trades-out trades.csv --json

Exit 0 on success, 2 on a bad flag, config or CSV (one line on stderr), 1 on a bug.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402
from engine.config import load_backtest, load_config, load_entries  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.markets import TIMEFRAME_MS, pair_to_folder  # noqa: E402


def _tf_list(text: str) -> list[str]:
    tfs = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in tfs if t not in TIMEFRAME_MS]
    if not tfs or bad:
        raise ConfigError(f"--tfs {text!r}: expected a comma-separated list of {' '.join(TIMEFRAME_MS)}")
    return tfs


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="backtest.py", description=__doc__.split("\n\n")[0],
                       epilog="Units: --tp pct:alloc (percent above entry : percent of the position), "
                              "--sl percent from entry (negative), --fee-bps/--slippage-bps basis points.")
    add_common_flags(p)
    src = p.add_argument_group("research over many pairs")
    src.add_argument("--from-watchlist", action="store_true", help="pairs of <reports_dir>/watchlist.json")
    src.add_argument("--pairs", default=None, help="comma-separated pairs, e.g. BTCUSDT,ETH/USDT")
    src.add_argument("--tfs", default=None, help="comma-separated timeframes (default runtime.tf_list)")
    src.add_argument("--entries", type=Path, default=None, help="entries_config.json to use")
    src.add_argument("--backtest-config", type=Path, default=None, help="backtest_config.json to use")
    src.add_argument("--workers", type=int, default=None,
                     help="processes for the (pair, timeframe) jobs (default: backtest_config.json workers, else grid: "
                          "1 on up to 2 cores, cores/2 above; optuna: one per core; results are identical for every count)")
    src.add_argument("--storage", default=None,
                     help="optuna storage URL shared by several processes: sqlite:///FILE.db, journal:FILE.log, "
                          "postgresql://USER:PASS@HOST/DB (default: in memory)")
    src.add_argument("--study-prefix", default="scalp", help="prefix of the optuna study names (default scalp)")
    src.add_argument("--worker", action="store_true",
                     help="join the optuna studies of --storage as a worker until every trial is done; writes no reports")
    chk = p.add_argument_group("lookahead check")
    chk.add_argument("--check-lookahead", action="store_true",
                     help="check that no entry set's signal changes when later bars are removed "
                          "(--entry: an entry set, a signal or module:function; default every entry set)")
    chk.add_argument("--cuts", type=int, default=50, help="random cut points of the lookahead check (default 50)")
    chk.add_argument("--pair", default="BTCUSDT", help="bundled sample pair for the lookahead check (default BTCUSDT)")
    one = p.add_argument_group("one backtest on one CSV")
    one.add_argument("--csv", type=Path, default=None, help="CSV of candles (timestamp,open,high,low,close,volume)")
    one.add_argument("--tf", default=None, help="timeframe of the CSV (1m 5m 15m 1h 4h 1d)")
    one.add_argument("--entry", default=None, help="signal name, e.g. sma_cross")
    one.add_argument("--params", default=None, help='signal parameters as JSON, e.g. \'{"fast":10,"slow":30}\'')
    one.add_argument("--tp", default=None, help='take-profit ladder "pct:alloc,...", e.g. "0.9:50,1.4:30,2.1:20"')
    one.add_argument("--sl", type=float, default=None, help="stop-loss in %% from entry, negative (-0.5)")
    one.add_argument("--breakeven-offset", type=float, default=None,
                     help="move the stop to entry + this %% after TP1 (default: no breakeven move)")
    one.add_argument("--trail", type=float, default=None, help="trailing stop distance in %% below the highest high")
    one.add_argument("--max-hold", type=int, default=None, help="close after this many bars in the trade")
    one.add_argument("--no-exit-signal", action="store_true", help="ignore the entry set's exit signal")
    one.add_argument("--fee-bps", type=float, default=None, help="fee per side in basis points (default 10)")
    one.add_argument("--slippage-bps", type=float, default=None, help="slippage per fill in basis points (default 0)")
    one.add_argument("--cash", type=float, default=10_000.0, help="initial equity in quote currency (default 10000)")
    one.add_argument("--trades-out", type=Path, default=None, help="write the trade list to this CSV")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)
    if args.check_lookahead:
        return run_cli("backtest.py", lambda: _check_lookahead(args))
    if args.csv is not None:
        return run_cli("backtest.py", lambda: _single(args))
    return run_cli("backtest.py", lambda: _research(args))


def _check_lookahead(args) -> int:
    from engine import datastore, signals
    from engine.lookahead import check_lookahead, load_function

    tf = args.tf or "1m"
    if args.csv is not None:
        if args.tf is None:
            raise ConfigError("--csv needs --tf")
        candles = datastore.read_candles(args.csv, tf)
    else:
        if tf not in TIMEFRAME_MS:
            raise ConfigError(f"--tf {tf!r}: expected one of {' '.join(TIMEFRAME_MS)}")
        candles = datastore.load_sample(pair_to_folder(args.pair), tf).iloc[-20_000:]
    if args.cuts < 1:
        raise ConfigError(f"--cuts {args.cuts}: expected an integer ≥ 1")
    entries = load_entries(args.entries)
    targets: list[tuple[str, object, dict | None]] = []
    if args.entry is None:
        targets = [(es.name, es.signal, dict(es.params)) for es in entries.entry_sets.values()]
    elif ":" in args.entry:
        targets = [(args.entry, load_function(args.entry), None)]
    elif args.entry in entries.entry_sets:
        es = entries.entry_sets[args.entry]
        targets = [(es.name, es.signal, dict(es.params))]
    elif args.entry in signals.SIGNALS:
        params = json.loads(args.params) if args.params else None
        targets = [(args.entry, args.entry, params)]
    else:
        raise ConfigError(f"--entry {args.entry!r}: expected an entry set of entries_config.json "
                          f"({', '.join(entries.entry_sets)}), a signal ({', '.join(signals.SIGNALS)}) or module:function")
    reports = [check_lookahead(sig, candles, params, n_cuts=args.cuts, name=name) for name, sig, params in targets]
    if args.json:
        print(json.dumps([{"entry_set": r.name, "bars": r.n_bars, "cuts": len(r.cuts), "entries": r.n_entries,
                           "exits": r.n_exits, "lookahead": False} for r in reports], indent=1))
    else:
        for r in reports:
            print(r)
    return 0


def _worker(args, rt, entries, bt, pairs, tfs) -> int:
    from engine.research import run_worker

    if not args.storage:
        raise ConfigError("--worker needs --storage URL (the studies it joins)")
    left = run_worker(rt.data_dir, pairs, tfs, entries, bt, storage=args.storage, study_prefix=args.study_prefix,
                      gap_policy=rt.gap_policy)
    print(f"worker done: {left} studies left unfinished")
    return 0


def _research(args) -> int:
    from engine import cycle, universe
    from engine.clock import Clock
    from engine.fileio import read_json
    from engine.research import run_research

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected an integer ≥ 1")
    cfg = load_config(args.config)
    rt = cfg.runtime
    entries = load_entries(args.entries)
    bt = load_backtest(args.backtest_config, entries=entries)
    tfs = _tf_list(args.tfs) if args.tfs else list(rt.tf_list)
    if args.pairs:
        pairs = [pair_to_folder(p.strip()) for p in args.pairs.split(",") if p.strip()]
    elif args.from_watchlist:
        watch = read_json(rt.reports_dir / "watchlist.json")
        if not watch:
            watch = universe.refresh_watchlist(None, rt.reports_dir, quote=rt.quote, top_n=rt.topN,
                                               now_ms=cycle.sample_clock().now_ms())
        pairs = [p["pair"] for p in watch["pairs"]]
    else:
        raise ConfigError("backtest.py: give --from-watchlist, --pairs P1,P2 or --csv FILE")
    if args.worker:
        return _worker(args, rt, entries, bt, pairs, tfs)
    status = cycle.read_status(rt.reports_dir)
    clock = Clock.replay(status["clock"]["now_ms"]) if status.get("clock", {}).get("kind") == "replay" else Clock.wall()
    res = run_research(rt.data_dir, rt.reports_dir, pairs, tfs, entries, bt, clock=clock, gap_policy=rt.gap_policy,
                       progress=not args.quiet, workers=args.workers, storage=args.storage,
                       study_prefix=args.study_prefix)
    if args.json:
        from engine.fileio import json_safe

        print(json.dumps(json_safe({"rows": res.rows, "candidates": res.candidates, "errors": res.errors}), indent=1))
    else:
        print(f"{len(res.rows)} rows, {len(res.candidates)} candidates, {len(res.errors)} errors → "
              f"{rt.reports_dir / 'summary.json'}")
        for e in res.errors:
            print(f"error: {e['pair']} {e['timeframe']}: {e['message']}", file=sys.stderr)
    return 0 if res.rows or not res.errors else 2


def _single(args) -> int:
    from engine.backtest import run_single_csv
    from engine.exits import Costs, ExitPlan
    from engine.metrics import json_safe

    missing = [flag for flag, value in (("--tf", args.tf), ("--entry", args.entry)) if value is None]
    if missing:
        raise ConfigError(f"--csv needs {' and '.join(missing)}")
    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params {args.params!r}: expected a JSON object like '{{\"fast\":10,\"slow\":30}}' ({e.msg})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"--params {args.params!r}: expected a JSON object like '{{\"fast\":10,\"slow\":30}}'")
    rules: dict = {"tp": args.tp, "sl_pct": args.sl, "trail_pct": args.trail, "max_hold_bars": args.max_hold,
                   "use_exit_signal": not args.no_exit_signal}
    if args.breakeven_offset is not None:
        rules.update(breakeven=True, breakeven_offset_pct=args.breakeven_offset)
    plan = ExitPlan.from_dict(rules, where="command line")
    costs = Costs(fee_bps=10.0 if args.fee_bps is None else args.fee_bps,
                  slippage_bps=0.0 if args.slippage_bps is None else args.slippage_bps)
    result = run_single_csv(args.csv, args.tf, args.entry, params, plan, costs, initial_cash_quote=args.cash)
    if args.trades_out:
        result.write_trades_csv(args.trades_out)
    out = {"csv": str(args.csv), "timeframe": args.tf, "entry": args.entry, "params": result.params,
           "exit_plan": plan.to_dict(), "costs": {"fee_bps": costs.fee_bps, "slippage_bps": costs.slippage_bps},
           "bars": len(result.equity), "metrics": result.metrics, "ambiguity": result.ambiguity}
    if args.json:
        print(json.dumps(json_safe(out), indent=1))
    else:
        for key, value in result.metrics.items():
            print(f"{key:<18} {value:.4g}" if isinstance(value, float) else f"{key:<18} {value}")
        if args.trades_out:
            print(f"trades → {args.trades_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
