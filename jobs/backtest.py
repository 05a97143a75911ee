"""Backtest entry sets: research over pairs, an optuna worker, the lookahead check, one CSV.

Subcommands::

    python jobs/backtest.py research --from-watchlist --tfs 1m,5m,15m     # summary.json, strategies.yml.next
    python jobs/backtest.py research --pairs BTCUSDT,ETHUSDT --tfs 5m --json
    python jobs/backtest.py worker --pairs BTCUSDT --tfs 5m --storage sqlite:///studies.db --study-prefix run1
    python jobs/backtest.py lookahead [--entry NAME|module:function] [--csv FILE --tf 1m]
    python jobs/backtest.py single --csv FILE --tf 1m --entry sma_cross --params '{"fast":10,"slow":30}' \\
        --tp "1.0:100" --sl -0.5 --fee-bps 10 --trades-out trades.csv --json

The flag forms of earlier releases keep working: no subcommand means ``research``;
``--check-lookahead`` means ``lookahead``; ``--worker`` means ``worker``; ``--csv`` alone means
``single``. Exit 0 on success, 2 on a bad flag, config or CSV (one line on stderr), 1 on a bug.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only the light CLI plumbing is imported here: the engine (pandas, numba) loads inside the
# commands, so --help answers in well under a second (measured 0.05 s vs 1.3 s with it).
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.markets import TIMEFRAME_MS, pair_to_folder  # noqa: E402

PROG = "backtest.py"
COMMANDS = ("research", "worker", "lookahead", "single")


def _tf_list(text: str) -> list[str]:
    tfs = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in tfs if t not in TIMEFRAME_MS]
    if not tfs or bad:
        raise ConfigError(f"--tfs {text!r}: expected a comma-separated list of {' '.join(TIMEFRAME_MS)}")
    return tfs


def _number_or_none(text: str) -> float | None:
    """argparse type: a number, or ``none`` to switch a rule off."""
    if text.strip().lower() in ("none", "null", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or none") from None


def _add_pairs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-watchlist", action="store_true", help="pairs of <reports_dir>/watchlist.json")
    p.add_argument("--pairs", default=None, help="comma-separated pairs, e.g. BTCUSDT,ETH/USDT")
    p.add_argument("--tfs", default=None, help="comma-separated timeframes (default runtime.tf_list)")
    p.add_argument("--entries", type=Path, default=None,
                   help="entries_config.json to use (default $SCALP_ENTRIES_CONFIG, else the repo's)")
    p.add_argument("--backtest-config", type=Path, default=None,
                   help="backtest_config.json to use (default $SCALP_BACKTEST_CONFIG, else the repo's)")
    p.add_argument("--storage", default=None,
                   help="optuna storage URL shared by several processes: sqlite:///FILE.db, journal:FILE.log, "
                        "postgresql://USER:PASS@HOST/DB (default: in memory)")
    p.add_argument("--study-prefix", default="scalp", help="prefix of the optuna study names (default scalp)")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = p.add_subparsers(dest="command", metavar="{research,worker,lookahead,single}")

    research = sub.add_parser("research", help="walk-forward search over pairs → summary.json, strategies.yml.next")
    add_common_flags(research)
    _add_pairs(research)
    research.add_argument("--workers", type=int, default=None,
                          help="processes for the (pair, timeframe) jobs (default: backtest_config.json workers, "
                               "else grid: 1 on up to 2 cores, cores/2 above; optuna: one per core)")
    research.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                          help="run the jobs on this Dask scheduler's workers (default $SCALP_DASK_SCHEDULER; "
                               "none: the local process pool); the workers must see the same data_dir")
    research.add_argument("--json", action="store_true", help="print rows, candidates and errors as JSON")

    worker = sub.add_parser("worker", help="join the optuna studies of --storage until every trial is done")
    add_common_flags(worker)
    _add_pairs(worker)
    worker.add_argument("--json", action="store_true", help="print the number of unfinished studies as JSON")

    look = sub.add_parser("lookahead", help="check that no signal changes when later bars are removed")
    add_common_flags(look)
    look.add_argument("--entry", default=None,
                      help="an entry set, a signal or module:function (default: every entry set)")
    look.add_argument("--params", default=None, help="signal parameters as JSON (with a signal name)")
    look.add_argument("--entries", type=Path, default=None, help="entries_config.json to use")
    look.add_argument("--cuts", type=int, default=50,
                      help="random cut points (default 50), besides cuts on signal bars and bars 1, 2, 4, 8 …")
    look.add_argument("--seed", type=int, default=None,
                      help="seed of the cut points (default: a new one each run, printed; pass it to replay a check)")
    look.add_argument("--pair", default="BTCUSDT", help="bundled sample pair to check on (default BTCUSDT)")
    look.add_argument("--csv", type=Path, default=None, help="check on this candle CSV instead (needs --tf)")
    look.add_argument("--tf", default=None, help="timeframe (default 1m)")
    look.add_argument("--json", action="store_true", help="print one report per entry set as JSON")

    one = sub.add_parser("single", help="one backtest of one entry set on one candle CSV",
                         epilog="Every rule not given takes the default of the one exit model "
                                "(engine.strategy.exits.ExitPlan and Costs), the same defaults research uses.")
    add_common_flags(one)
    add_single_flags(one)
    one.add_argument("--json", action="store_true", help="print metrics, exit plan and costs as JSON")
    return p


def add_single_flags(p: argparse.ArgumentParser) -> None:
    """The flags of one run on one candle CSV: candles, entry set, exit rules, costs, cash, stake and
    ``--trades-out`` (``single`` here, ``replay`` of jobs/execute.py: the same flags, the same defaults)."""
    p.add_argument("--csv", type=Path, required=True, help="CSV of candles (timestamp,open,high,low,close,volume)")
    p.add_argument("--tf", required=True, help="timeframe of the CSV (1m 5m 15m 1h 4h 1d)")
    p.add_argument("--entry", required=True, help="signal name, e.g. sma_cross")
    p.add_argument("--params", default=None, help='signal parameters as JSON, e.g. \'{"fast":10,"slow":30}\'')
    p.add_argument("--tp", default=None,
                   help='take-profit ladder "pct:alloc,..." (default "0.9:50,1.4:30,2.1:20"; "" for none)')
    p.add_argument("--sl", type=_number_or_none, default=argparse.SUPPRESS,
                   help="stop-loss in %% from entry, negative (default -0.5; none for no stop)")
    p.add_argument("--sl-atr", type=float, default=None, help="stop-loss in ATRs below entry (instead of --sl)")
    p.add_argument("--breakeven-offset", type=float, default=None,
                   help="after TP1 move the stop to entry + this %% (default 0.05)")
    p.add_argument("--no-breakeven", action="store_true", help="never move the stop to breakeven")
    p.add_argument("--trail", type=float, default=None, help="trailing stop distance in %% below the highest high")
    p.add_argument("--max-hold", type=_number_or_none, default=argparse.SUPPRESS,
                   help="close after this many bars in the trade (default 240; none for no limit)")
    p.add_argument("--no-exit-signal", action="store_true", help="ignore the entry set's exit signal")
    p.add_argument("--fee-bps", type=float, default=None, help="fee per side in basis points (default 10)")
    p.add_argument("--slippage-bps", type=float, default=None, help="slippage per fill in basis points (default 2)")
    p.add_argument("--cash", type=float, default=None,
                   help="initial equity in quote currency (default backtest_config.json initial_cash_quote, 10000)")
    p.add_argument("--stake", type=float, default=None,
                   help="most one entry spends, fee included, quote currency (default: all the cash)")
    p.add_argument("--trades-out", type=Path, default=None, help="write the trade list to this CSV")


def legacy_argv(argv: list[str]) -> list[str]:
    """Map the flag forms of earlier releases onto subcommands (``--check-lookahead`` → ``lookahead``)."""
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
        return argv
    if "--check-lookahead" in argv:
        return ["lookahead", *[a for a in argv if a != "--check-lookahead"]]
    if "--worker" in argv:
        return ["worker", *[a for a in argv if a != "--worker"]]
    if "--csv" in argv or any(a.startswith("--csv=") for a in argv):
        return ["single", *argv]
    return ["research", *argv]


def main(argv: list[str] | None = None) -> int:
    argv = legacy_argv(list(sys.argv[1:] if argv is None else argv))
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)
    command = {"research": _research, "worker": _worker, "lookahead": _lookahead, "single": _single}[args.command]
    return run_cli(PROG, lambda: command(args))


def _pairs_and_settings(args):
    from engine.config import load_settings
    from engine.data import universe
    from engine.data.sample import sample_clock
    from engine.fileio import read_json

    settings = load_settings(args.config, args.entries, args.backtest_config)
    rt = settings.runtime
    tfs = _tf_list(args.tfs) if args.tfs else list(rt.tf_list)
    if args.pairs:
        pairs = [pair_to_folder(p.strip()) for p in args.pairs.split(",") if p.strip()]
    elif args.from_watchlist:
        watch = read_json(rt.reports_dir / "watchlist.json")
        if not watch:
            watch = universe.refresh_watchlist(None, rt.reports_dir, quote=rt.quote, top_n=rt.topN,
                                               now_ms=sample_clock().now_ms())
        pairs = [p["pair"] for p in watch["pairs"]]
    else:
        raise ConfigError(f"{PROG} {args.command}: give --from-watchlist or --pairs P1,P2")
    return settings, pairs, tfs


def _research(args) -> int:
    from engine.clock import clock_for_run
    from engine.fileio import json_safe
    from engine.research import run_research

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected an integer ≥ 1")
    settings, pairs, tfs = _pairs_and_settings(args)
    rt = settings.runtime
    res = run_research(rt.data_dir, rt.reports_dir, pairs, tfs, settings.entries, settings.backtest,
                       clock=clock_for_run(rt.reports_dir), gap_policy=rt.gap_policy, progress=not args.quiet,
                       workers=args.workers, storage=args.storage, study_prefix=args.study_prefix,
                       scheduler=args.scheduler)
    if args.json:
        print(json.dumps(json_safe({"rows": [r.to_json() for r in res.rows],
                                    "candidates": [c.to_json() for c in res.candidates],
                                    "errors": [e.to_json() for e in res.errors]}), indent=1))
    else:
        print(f"{len(res.rows)} rows, {len(res.candidates)} candidates, {len(res.errors)} errors → "
              f"{rt.reports_dir / 'summary.json'}")
        for e in res.errors:
            print(f"error: {e.pair} {e.timeframe}: {e.message}", file=sys.stderr)
    return 0 if res.rows or not res.errors else 2


def _worker(args) -> int:
    from engine.research import run_worker

    if not args.storage:
        raise ConfigError("--worker needs --storage URL (the studies it joins)")
    settings, pairs, tfs = _pairs_and_settings(args)
    rt = settings.runtime
    left = run_worker(rt.data_dir, pairs, tfs, settings.entries, settings.backtest, storage=args.storage,
                      study_prefix=args.study_prefix, gap_policy=rt.gap_policy)
    print(json.dumps({"unfinished_studies": left}) if args.json else f"worker done: {left} studies left unfinished")
    return 0


def _lookahead(args) -> int:
    from engine.backtest.lookahead import check_lookahead, load_function
    from engine.config import load_entries
    from engine.data import load_sample, read_candles
    from engine.strategy import signals

    tf = args.tf or "1m"
    if tf not in TIMEFRAME_MS:
        raise ConfigError(f"--tf {tf!r}: expected one of {' '.join(TIMEFRAME_MS)}")
    if args.csv is not None:
        if args.tf is None:
            raise ConfigError("--csv needs --tf")
        candles = read_candles(args.csv, tf)
    else:
        candles = load_sample(pair_to_folder(args.pair), tf).iloc[-20_000:]
    if args.cuts < 1:
        raise ConfigError(f"--cuts {args.cuts}: expected an integer ≥ 1")
    entries = load_entries(args.entries)
    if args.entry is None:
        targets = [(es.name, es.signal, dict(es.params)) for es in entries.entry_sets.values()]
    elif ":" in args.entry:
        targets = [(args.entry, load_function(args.entry), None)]
    elif args.entry in entries.entry_sets:
        es = entries.entry_sets[args.entry]
        targets = [(es.name, es.signal, dict(es.params))]
    elif args.entry in signals.SIGNALS:
        targets = [(args.entry, args.entry, params_json(args.params))]
    else:
        raise ConfigError(f"--entry {args.entry!r}: expected an entry set of entries_config.json "
                          f"({', '.join(entries.entry_sets)}), a signal ({', '.join(signals.SIGNALS)}) or module:function")
    reports = [check_lookahead(sig, candles, params, n_cuts=args.cuts, seed=args.seed, name=name)
               for name, sig, params in targets]
    if args.json:
        print(json.dumps([{"entry_set": r.name, "bars": r.n_bars, "cuts": len(r.cuts), "signal_cuts": r.n_signal_cuts,
                           "seed": r.seed, "entries": r.n_entries, "exits": r.n_exits, "lookahead": False}
                          for r in reports], indent=1))
    else:
        for r in reports:
            print(r)
    return 0


def params_json(text: str | None) -> dict:
    """Parse `--params` (a JSON object; empty or None = {}); ConfigError names the flag and the JSON error."""
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params {text!r}: expected a JSON object like '{{\"fast\":10,\"slow\":30}}' ({e.msg})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"--params {text!r}: expected a JSON object like '{{\"fast\":10,\"slow\":30}}'")
    return params


def single_plan(args):
    """Return the (ExitPlan, Costs, initial cash) the ``single`` flags describe: the flags given,
    and for everything else the defaults of the one exit model (the same research uses)."""
    from engine.config.schema import BACKTEST_JSON
    from engine.strategy.exits import Costs, ExitPlan

    rules: dict = {}
    if args.tp is not None:
        rules["tp"] = args.tp or None
    if hasattr(args, "sl"):
        rules["sl_pct"] = args.sl
    if args.sl_atr is not None:
        rules.update(sl_atr_mult=args.sl_atr, sl_pct=None)
    if args.breakeven_offset is not None:
        rules["breakeven_offset_pct"] = args.breakeven_offset
    if args.no_breakeven:
        rules["breakeven"] = False
    elif rules.get("tp", "") is None:  # no ladder, so nothing to move the stop after
        rules["breakeven"] = False
    if args.trail is not None:
        rules["trail_pct"] = args.trail
    if hasattr(args, "max_hold"):
        rules["max_hold_bars"] = None if args.max_hold is None else int(args.max_hold)
    if args.no_exit_signal:
        rules["use_exit_signal"] = False
    plan = ExitPlan.from_dict(rules, where="command line")
    defaults = Costs()
    costs = Costs(fee_bps=defaults.fee_bps if args.fee_bps is None else args.fee_bps,
                  slippage_bps=defaults.slippage_bps if args.slippage_bps is None else args.slippage_bps)
    cash = BACKTEST_JSON.keys["initial_cash_quote"].default if args.cash is None else args.cash
    return plan, costs, cash


def _single(args) -> int:
    from engine.backtest import run_single_csv
    from engine.fileio import json_safe

    plan, costs, cash = single_plan(args)
    result = run_single_csv(args.csv, args.tf, args.entry, params_json(args.params), plan, costs, initial_cash_quote=cash,
                            stake_quote=args.stake)
    if args.trades_out:
        result.write_trades_csv(args.trades_out)
    out = {"csv": str(args.csv), "timeframe": args.tf, "entry": args.entry, "params": result.params,
           "exit_plan": plan.to_dict(), "costs": costs.to_dict(), "initial_cash_quote": cash,
           "stake_quote": args.stake, "bars": len(result.equity), "metrics": result.metrics, "ambiguity": result.ambiguity}
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
