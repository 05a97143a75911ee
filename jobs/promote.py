"""Promote candidates that pass the active risk_mode's rules into engine/config/strategies.yml.

Usage::

    python jobs/promote.py --source notebooks/scalp_data/reports/strategies.yml.next
    python jobs/promote.py --risk-mode conservative --json

Reads the candidates a backtest wrote, judges each on its out-of-sample metrics against
config.yaml → promotion.<risk_mode>, merges the promoted ones (with promoted_at / expires_at) into
strategies.yml, drops expired ones, and prints one decision per candidate with its reasons.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402
from engine.types import RISK_MODES  # noqa: E402


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="promote.py", description=__doc__.split("\n\n")[0])
    add_common_flags(p)
    p.add_argument("--source", type=Path, default=None,
                   help="candidates file (default <reports_dir>/strategies.yml.next)")
    p.add_argument("--strategies", type=Path, default=None,
                   help="promoted strategies file to update (default runtime.strategies_file)")
    p.add_argument("--risk-mode", choices=RISK_MODES, default=None,
                   help="rule set to apply (default runtime.risk_mode of config.yaml)")
    p.add_argument("--now-ms", type=int, default=None,
                   help="promotion time in epoch ms UTC (default: the clock recorded by the last cycle, else now)")
    p.add_argument("--json", action="store_true", help="print the decisions as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        # the engine loads after parsing, so --help stays fast (no pandas/numba import)
        from engine import promotion
        from engine.clock import clock_for_run
        from engine.config import load_config

        cfg = load_config(args.config)
        rt = cfg.runtime
        mode = args.risk_mode or rt.risk_mode
        source = args.source or rt.reports_dir / "strategies.yml.next"
        now_ms = args.now_ms if args.now_ms is not None else clock_for_run(rt.reports_dir).now_ms()
        decisions, strategies = promotion.promote_file(
            source, args.strategies or rt.strategies_file, cfg.promotion[mode],
            risk_mode=mode, now_ms=now_ms, ttl_hours=rt.strategy_ttl_hours, age_mult=rt.age_mult)
        if args.json:
            print(json.dumps({"risk_mode": mode, "decisions": [d.to_json() for d in decisions],
                              "active": len(strategies)}, indent=1))
        else:
            for d in decisions:
                verdict = "PROMOTED" if d.promoted else "rejected"
                print(f"{d.pair:<10} {d.timeframe:<4} {d.entry_set:<20} {verdict:<9} {'; '.join(d.reasons)}")
            print(f"{sum(d.promoted for d in decisions)} promoted ({mode}); {len(strategies)} active")
        return 0

    return run_cli("promote.py", body)


if __name__ == "__main__":
    sys.exit(main())
