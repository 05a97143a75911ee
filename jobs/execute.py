"""Execution from the command line: replay a CSV through the whole flow, the kill-switch test, the go-live gate.

Subcommands::

    python jobs/execute.py replay --csv FILE --tf 5m --entry ema_cross --params '{"fast":8,"slow":21}' \\
        --trades-out paper.csv [--events-dir DIR] [--json]
    python jobs/execute.py killswitch-test
    python jobs/execute.py golive [--strategy BTCUSDT_5m_ema_cross]
    python jobs/execute.py forward            # one forward test of strategies.yml now (as a cycle does)

``replay`` drives intents on each closed candle → guards → order plans → the dry-run executor →
paper fills (the simulator's own rules) over a candle CSV, with the exit, cost and cash flags of
``jobs/backtest.py single``; ``--trades-out`` is in exactly that command's format, so the two files
compare line by line. Its stake defaults to the tunables' ``ENTRY_MAX_NOTIONAL`` (what the guards
allow); pass the same ``--stake`` to ``single`` to compare. Nothing is ever sent to an exchange here.

Exit 0 on success (``killswitch-test``: the test passed; ``golive``: every strategy is ready), 2 on a
bad flag, config or CSV, 1 when the kill-switch test or the go-live gate fails.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# light imports only: the engine (pandas, numba) loads inside the commands, so --help is quick
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402
from jobs.backtest import add_single_flags, params_json, single_plan  # noqa: E402

PROG = "execute.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Replay, kill-switch test and go-live gate of the execution flow "
                                              "(dry-run by default; nothing here sends an order).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rep = sub.add_parser("replay", help="drive the execution flow over a candle CSV (paper fills)",
                         epilog="Every rule not given takes the default of the one exit model, as in "
                                "'jobs/backtest.py single'.")
    add_common_flags(rep)
    add_single_flags(rep)
    rep.add_argument("--pair", default=None,
                     help="pair of the candles, e.g. BTC/USDT (default: the CSV's folder name when it is a pair)")
    rep.add_argument("--tunables", type=Path, default=None,
                     help="tunables file (default engine/config/execution.env; env variables override it)")
    rep.add_argument("--events-dir", type=Path, default=None,
                     help="write the event log under DIR/trading/<date>/events.jsonl (default: not written)")
    rep.add_argument("--json", action="store_true", help="print the run's figures as JSON")
    ks = sub.add_parser("killswitch-test", help="set the kill switch, attempt an order, verify the block, clear it, record it")
    add_common_flags(ks)
    ks.add_argument("--tunables", type=Path, default=None, help="tunables file (default engine/config/execution.env)")
    gl = sub.add_parser("golive", help="check the go-live gate of the promoted strategies and record it")
    add_common_flags(gl)
    gl.add_argument("--strategy", default=None, help="one strategy, <PAIR>_<TF>_<entry set> (default: every promoted one)")
    gl.add_argument("--tunables", type=Path, default=None, help="tunables file (default engine/config/execution.env)")
    fw = sub.add_parser("forward", help="paper-trade the promoted strategies now, as a maintainer cycle does")
    add_common_flags(fw)
    fw.add_argument("--tunables", type=Path, default=None, help="tunables file (default engine/config/execution.env)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose, args.quiet)
    command = {"replay": _replay, "killswitch-test": _killswitch, "golive": _golive, "forward": _forward}[args.command]
    return run_cli(PROG, lambda: command(args))


def _replay(args) -> int:
    from engine.data import read_candles
    from engine.errors import DataError
    from engine.execution.events import EventLog
    from engine.execution.paper import PaperAccount, PaperSpec, paper_trade
    from engine.execution.tunables import load_tunables
    from engine.fileio import json_safe

    from engine.strategy.signals import validate_params

    tunables = load_tunables(args.tunables)
    plan, costs, cash = single_plan(args)
    params = validate_params(args.entry, params_json(args.params), where="--params")  # the flags, then the file
    if not args.csv.is_file():
        raise DataError(f"{args.csv}: no such candle file; pass --csv with a path to a candle CSV")
    candles = read_candles(args.csv, args.tf)
    spec = PaperSpec(_replay_pair(args), args.tf, args.entry, args.entry, params, plan, costs)
    stake = tunables.ENTRY_MAX_NOTIONAL if args.stake is None else args.stake
    paper = paper_trade(candles, spec, tunables=tunables, account=PaperAccount(cash, stake))
    if args.events_dir is not None:
        EventLog(args.events_dir, use_env=False).extend(paper.events)
    if args.trades_out:
        paper.write_trades_csv(args.trades_out)
    kinds: dict[str, int] = {}
    for e in paper.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    out = {"csv": str(args.csv), "timeframe": args.tf, "entry": args.entry, "params": params, "exit_plan": plan.to_dict(), "costs": costs.to_dict(), "initial_cash_quote": cash,
           "stake_quote": stake, "tunables": tunables.source, "intents": paper.n_intents, "blocked": paper.n_blocked,
           "blocked_by": dict(paper.blocked), "events": kinds, "trades": int(len(paper.trades)),
           "open_position": paper.open_trade is not None, "realised_pnl_quote": paper.realised_pnl_quote,
           "unrealised_pnl_quote": paper.unrealised_pnl_quote, "metrics": paper.result.metrics}
    if args.json:
        print(json.dumps(json_safe(out), indent=1))
    else:
        print(f"intents {paper.n_intents}, blocked {paper.n_blocked} "
              f"({', '.join(f'{k} {v}' for k, v in paper.blocked.items()) or 'none'}), "
              f"orders {kinds.get('order', 0)}, fills {kinds.get('fill', 0)}, trades {len(paper.trades)}")
        print(f"realised PnL {paper.realised_pnl_quote:.4f}, unrealised {paper.unrealised_pnl_quote:.4f} (quote), "
              f"stake {stake:g} of {cash:g}")
        if args.trades_out:
            print(f"trades → {args.trades_out}")
    return 0


def _replay_pair(args) -> str:
    """--pair, else the CSV's folder when it names a pair (``ohlcv/BTCUSDT/5m.csv``), else ``REPLAY/QUOTE``."""
    from engine.errors import ConfigError as _ConfigError
    from engine.markets import folder_to_pair, pair_to_folder

    for name in ([args.pair] if args.pair else [args.csv.resolve().parent.name, args.csv.name.split(".")[0]]):
        try:
            return folder_to_pair(pair_to_folder(name))
        except _ConfigError:
            if args.pair:
                raise
    return "REPLAY/QUOTE"


def _settings(args):
    from engine.config import load_settings

    return load_settings(args.config)


def _clock_ms(rt) -> int:
    from engine.cycle import plan_data

    return plan_data(rt).clock.now_ms() if rt.data_source in ("sample", "local") else _wall_ms()


def _wall_ms() -> int:
    from engine.clock import Clock

    return Clock.wall().now_ms()


def _killswitch(args) -> int:
    from engine.execution.golive import killswitch_test, steps_dir
    from engine.execution.tunables import load_tunables

    rt = _settings(args).runtime
    result = killswitch_test(load_tunables(args.tunables), reports_dir=rt.reports_dir, now_ms=_wall_ms(),
                             data_dir=rt.data_dir)
    print(f"kill switch {result.switch_file}: order {'blocked' if result.blocked else 'NOT blocked'}, executor "
          f"{'refused' if result.executor_refused else 'did NOT refuse'}, cleared {'yes' if result.cleared else 'no'} "
          f"→ {'passed' if result.passed else 'FAILED'} (record: {steps_dir(rt.reports_dir) / 'STEP-killswitch-test.md'})")
    return 0 if result.passed else 1


def _golive(args) -> int:
    from engine.execution.golive import golive_check, golive_record
    from engine.execution.paper import PaperSpec
    from engine.execution.tunables import load_tunables
    from engine.strategy.promoted import load_strategies

    rt = _settings(args).runtime
    tunables = load_tunables(args.tunables)
    now = _wall_ms()
    names = [PaperSpec.from_promoted(s).name for s in load_strategies(rt.strategies_file)]
    if args.strategy:
        names = [args.strategy]
    checks = [golive_check(n, data_dir=rt.data_dir, reports_dir=rt.reports_dir, tunables=tunables, now_ms=now)
              for n in names]
    path = golive_record(rt.reports_dir, checks, now, tunables)
    for c in checks:
        print(f"{c.strategy}: {'ready' if c.ok else 'not ready: ' + c.reason}")
    if not checks:
        print("no promoted strategy")
    print(f"record: {path}")
    return 0 if checks and all(c.ok for c in checks) else 1


def _forward(args) -> int:
    from engine.execution.forward import forward_test
    from engine.execution.tunables import load_tunables
    from engine.strategy.promoted import load_strategies

    rt = _settings(args).runtime
    report = forward_test(load_strategies(rt.strategies_file), data_dir=rt.data_dir, reports_dir=rt.reports_dir,
                          now_ms=_clock_ms(rt), tunables=load_tunables(args.tunables),
                          metrics_path=Path(rt.metrics_dir) / "execution.prom")
    for s in report["strategies"]:
        print(f"{s['name']}: {s['n_paper_trades']} paper trades, realised {s['realised_pnl_quote']:.4f}, "
              f"unrealised {s['unrealised_pnl_quote']:.4f} (quote), open: {'yes' if s['open_position'] else 'no'}")
    for line in report["skipped"]:
        print(f"skipped: {line}")
    if not report["strategies"] and not report["skipped"]:
        print("no promoted strategy to paper-trade")
    print(f"{report['events_written']} events written; paper.json → {rt.reports_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
