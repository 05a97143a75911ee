"""The testnet desk from the command line: list the profiles, show today's budget, run a session.

::

    python -m jobs.orchestrate_testnet_runs --list
    python -m jobs.orchestrate_testnet_runs --budget
    python -m jobs.orchestrate_testnet_runs --profile quick_smoke --dry-run
    python -m jobs.orchestrate_testnet_runs --profile quick_smoke [--override-duration 30] \\
        [--override-max-notional 20] [--venue paper] [--candles replay] [--speed 60]

A session first passes the testnet limits of ``engine/config/desk.yaml`` (per run, per UTC day, per
symbol; every reason that blocks is printed). Then it runs where :func:`engine.desk.venue.choose_venue`
says — the exchange's testnet when its testnet keys are set and ccxt knows its sandbox, the
validate-only path where there is no spot sandbox (Kraken), else paper — on candles replayed from the
store or the bundled sample, or followed live; the plan says which. Afterwards its consumption is
registered in the usage store, ``<reports_dir>/testnet_budget.json`` is rewritten and a markdown
report lands in ``<reports_dir>/desk/sessions/``.

``--dry-run`` checks the limits and prints the plan; it starts no session, sends nothing and
registers nothing.

Exit codes: 0 done (``--dry-run``: the session would be allowed), 3 blocked by the limits, 2 bad
input (a flag, a config file, an unknown profile), 1 the session stopped on an exchange error
(what it did until then is registered and reported).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# light imports only: the engine (pandas, numba, ccxt) loads after the flags are parsed, so --help is quick
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402

PROG = "orchestrate_testnet_runs.py"
EXIT_BLOCKED = 3


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="The testnet desk: session profiles with budgets per run, per UTC "
                                              "day and per symbol (engine/config/desk.yaml).",
                       epilog="Exit codes: 0 done, 3 blocked by the limits (every reason printed), 2 bad input, "
                              "1 the session stopped on an exchange error.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the session profiles")
    what.add_argument("--budget", action="store_true",
                      help="today's budget (UTC day): used, left, limits; also rewrites <reports_dir>/testnet_budget.json")
    what.add_argument("--profile", metavar="NAME", help="run the session profile NAME")
    p.add_argument("--dry-run", action="store_true",
                   help="with --profile: check the limits and print the plan; start no session, send nothing, "
                        "register nothing")
    p.add_argument("--override-duration", type=float, metavar="M", default=None,
                   help="session length in whole minutes instead of the profile's duration_minutes")
    p.add_argument("--override-max-notional", type=float, metavar="X", default=None,
                   help="most the session's entries may spend, quote currency, instead of the profile's max_notional_quote")
    p.add_argument("--venue", choices=("auto", "paper"), default="auto",
                   help="auto (default): the testnet when its keys are set, else paper; paper: never send an order")
    p.add_argument("--candles", choices=("auto", "replay", "live"), default="auto",
                   help="auto (default): live on an exchange venue or when runtime.data_source reaches the exchange, "
                        "else a replay of stored candles; replay: the last duration minutes of stored candles "
                        "(paper); live: the exchange's candles in real time")
    p.add_argument("--speed", type=float, default=0.0, metavar="X",
                   help="replay pace in multiples of real time (60 = one 1m candle per second); 0 (default) = as "
                        "fast as possible")
    p.add_argument("--desk-config", type=Path, default=None,
                   help="desk.yaml to use (default engine/config/desk.yaml, or $SCALP_DESK_CONFIG)")
    p.add_argument("--tunables", type=Path, default=None,
                   help="execution tunables (default engine/config/execution.env; env variables override it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_common_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose, args.quiet)
    return run_cli(PROG, lambda: _main(args))


def _flags(args) -> None:
    from engine.errors import ConfigError

    if args.profile is None:
        used = [f for f, v in (("--dry-run", args.dry_run), ("--override-duration", args.override_duration),
                               ("--override-max-notional", args.override_max_notional)) if v not in (None, False)]
        if used:
            raise ConfigError(f"{used[0]}: goes with --profile NAME")
    if not args.speed >= 0 or args.speed == float("inf"):
        raise ConfigError(f"--speed = {args.speed!r}: expected a number ≥ 0 (multiples of real time; 0 = as fast as possible)")


def _main(args) -> int:
    from engine.config import load_settings
    from engine.config.desk import load_desk_config
    from engine.desk.limits import LimitsController
    from engine.desk.report import format_budget, write_budget
    from engine.desk.usage import UsageStore
    from engine.fileio import json_safe

    _flags(args)
    settings = load_settings(args.config)
    rt = settings.app.runtime
    desk = load_desk_config(args.desk_config)
    store = UsageStore(desk.usage_dir or rt.data_dir / "desk" / "usage", retention_days=desk.usage_retention_days)
    limits = LimitsController(desk.limits, store)
    if args.list:
        from engine.desk.profiles import format_profiles

        if args.json:
            print(json.dumps({name: p.to_json() for name, p in desk.profiles.items()}, indent=1))
        else:
            print(format_profiles(desk))
        return 0
    if args.budget:
        budget = limits.budget()
        path = write_budget(rt.reports_dir, budget)
        print(json.dumps(json_safe(budget.to_json()), indent=1) if args.json else f"{format_budget(budget)}\n→ {path}")
        return 0
    return _profile(args, settings, desk, limits, store)


def _profile(args, settings, desk, limits, store) -> int:
    from engine.desk.profiles import get_profile, with_overrides
    from engine.execution.tunables import load_secrets, load_tunables

    rt = settings.app.runtime
    profile = with_overrides(get_profile(desk, args.profile), duration_minutes=args.override_duration,
                             max_notional_quote=args.override_max_notional)
    tunables, secrets = load_tunables(args.tunables), load_secrets()
    check = limits.check_run_allowed(profile.symbol, profile.max_notional_quote, profile.max_trades,
                                     profile.duration_minutes)
    if args.dry_run:
        plan = _plan(args, profile, settings, desk, tunables, secrets)
        _print_check(args, check, plan)
        return 0 if check.allowed else EXIT_BLOCKED
    if not check.allowed:
        _print_check(args, check, None)
        return EXIT_BLOCKED
    plan = _plan(args, profile, settings, desk, tunables, secrets)
    return _run(args, plan, check, rt, desk, limits, tunables, secrets)


def _print_check(args, check, plan) -> None:
    if args.json:
        out = {"check": check.to_json()}
        if plan is not None:
            out["plan"] = plan.describe()
        print(json.dumps(out, indent=1))
        return
    if plan is not None:
        print("Plan (dry run: no session is started, nothing is sent or registered):")
        print("\n".join(f"  {line}" for line in plan.describe()))
    if check.allowed:
        print(f"Limits: allowed (UTC day {check.usage.day}: used {check.usage.notional_quote:.2f} quote, "
              f"{check.usage.n_trades} trades before this session)")
    else:
        print(f"BLOCKED by the testnet limits ({len(check.reasons)} reason{'s' if len(check.reasons) > 1 else ''}):")
        print("\n".join(f"  - {r}" for r in check.reasons))


def _plan(args, profile, settings, desk, tunables, secrets):
    """Choose the venue and the candles, resolve the strategy on the session's clock."""
    import dataclasses
    import time

    from engine.desk.live import plan_live
    from engine.desk.profiles import resolve_profile
    from engine.desk.session import plan_replay, replay_candles, replay_window
    from engine.desk.venue import choose_venue

    rt = settings.app.runtime
    exchange = profile.exchange or rt.exchange
    venue = choose_venue(exchange, secrets, want="paper" if args.candles == "replay" else args.venue)
    if args.candles == "replay":
        venue = dataclasses.replace(venue, reason="paper session (--candles replay): a replay of stored candles sends "
                                                  "no orders; testnet orders happen only in real time")
    live, note = _live_candles(args, rt, venue, exchange)
    resolve = {"entries": settings.entries, "strategies_file": rt.strategies_file}
    if live:
        strategy = resolve_profile(profile, **resolve, now_ms=int(time.time() * 1000))
        return plan_live(profile, strategy, venue, tunables=tunables, note=note)
    candles = replay_candles(rt, profile.symbol, profile.timeframe)
    _, _, end_ms = replay_window(candles[0], profile, desk.warmup_bars)
    strategy = resolve_profile(profile, **resolve, now_ms=end_ms)
    plan = plan_replay(profile, strategy, venue, runtime=rt, desk=desk, tunables=tunables, candles=candles)
    pace = "as fast as possible" if args.speed == 0 else f"at {args.speed:g}× real time"
    return dataclasses.replace(plan, candle_note=f"{plan.candle_note}, replayed {pace}")


def _live_candles(args, rt, venue, exchange) -> tuple[bool, str]:
    """(live?, where the candles come from) — an exchange venue is always live."""
    sandbox = " (testnet)" if venue.kind == "sandbox" else ""
    if venue.sends_orders:
        if args.candles == "replay":  # not reached: replay forces paper
            raise AssertionError("replay with an exchange venue")
        return True, f"{exchange}{sandbox} candles in real time"
    if args.candles == "live":
        return True, f"{exchange} candles in real time (paper executor)"
    if args.candles == "replay" or rt.data_source in ("sample", "local"):
        return False, ""
    from engine.errors import ExchangeUnreachableError
    from engine.exchange.client import ensure_markets, make_exchange
    from engine.exchange.retry import NO_RETRY

    try:
        ensure_markets(make_exchange(exchange, timeout_ms=rt.exchange_timeout_ms), retry=NO_RETRY)
    except ExchangeUnreachableError as e:
        if rt.data_source == "exchange":
            raise
        print(f"{exchange} cannot be reached ({str(e).splitlines()[0][:160]}): replaying stored candles instead",
              file=sys.stderr)
        return False, ""
    return True, f"{exchange} candles in real time (paper executor; the exchange is reachable)"


def _run(args, plan, check, rt, desk, limits, tunables, secrets) -> int:
    import logging

    from engine.clock import format_ms
    from engine.desk.live import run_live
    from engine.desk.report import session_base, write_budget, write_session_report
    from engine.desk.session import run_replay
    from engine.execution.events import EventLog
    from engine.fileio import json_safe

    log = logging.getLogger("orchestrate_testnet_runs")
    if not args.json:  # --json prints one document, at the end
        print("Session plan:")
        print("\n".join(f"  {line}" for line in plan.describe()), flush=True)

    def show(e) -> None:
        if e.kind in ("order", "fill"):
            d = e.data
            log.info("%s %s %s %s %.8g", format_ms(e.ts_ms), e.kind, d.get("role", ""), d.get("side", ""),
                     float(d.get("qty_base", d.get("quantity_base", 0.0))))

    import time

    started = int(time.time() * 1000)
    base = session_base(rt.reports_dir, started, plan.profile.name)
    events = EventLog(rt.data_dir / "desk" / "sessions" / base.name, use_env=False)
    if plan.candle_mode == "replay":
        result = run_replay(plan, tunables=tunables, speed=args.speed, on_event=show)
    else:
        result = run_live(plan, data_dir=rt.data_dir, tunables=tunables, secrets=secrets, warmup_bars=desk.warmup_bars,
                          timeout_ms=rt.exchange_timeout_ms, on_event=show, log=events)
    record = {"profile": plan.profile.name, "symbol": plan.profile.symbol, "timeframe": plan.profile.timeframe,
              "venue": plan.venue.kind, "exchange": plan.venue.exchange, "candles": plan.candle_mode,
              "session": base.name, "error": result.error}
    usage = limits.register_run_consumption(result.notional_quote, result.n_trades, at_ms=result.started_ms,
                                            record=record)
    budget = limits.budget()
    budget_path = write_budget(rt.reports_dir, budget)
    trades_csv = report = None
    if result.paper is not None:
        events.extend(result.paper.events)
        trades_csv = result.paper.write_trades_csv(base.with_name(base.name + "_trades.csv"))
    if desk.auto_report:
        report = write_session_report(base.with_name(base.name + ".md"), result, check, budget,
                                      trades_csv=trades_csv, events_dir=events.root)
    summary = {"profile": plan.profile.name, "plan": plan.describe(), "venue": plan.venue.kind, "candles": plan.candle_mode,
               "n_trades": result.n_trades, "notional_quote": result.notional_quote, "stop_note": result.stop_note,
               "orders": len(result.orders), "error": result.error, "report": report, "trades_csv": trades_csv,
               "budget": budget_path, "day": usage.day, "day_notional_quote": usage.notional_quote,
               "day_trades": usage.n_trades}
    if args.json:
        print(json.dumps(json_safe(summary), indent=1))
    else:
        status = "stopped by an error" if result.error else "done"
        print(f"Session {status}: {result.n_trades} trades, {result.notional_quote:.2f} quote of entries"
              + (f", {len(result.orders)} orders sent ({plan.venue.kind})" if plan.venue.sends_orders else "")
              + (f"; {result.stop_note}" if result.stop_note else ""))
        if result.paper is not None:
            print(f"PnL (paper book): realised {result.paper.realised_pnl_quote:+.4f}, unrealised "
                  f"{result.paper.unrealised_pnl_quote:+.4f} (quote)")
        if result.error:
            print(f"error: {result.error}")
        print(f"Registered on UTC day {usage.day}: now {usage.notional_quote:.2f} quote, {usage.n_trades} trades, "
              f"{usage.n_runs} runs; left {budget.left_notional_quote:.2f} quote, {budget.left_trades} trades")
        for label, path in (("report", report), ("trades", trades_csv), ("budget", budget_path)):
            if path is not None:
                print(f"{label} → {path}")
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
