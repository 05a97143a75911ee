"""The maintainer loop: watchlist → backfill → backtest → promote → expiry → render, every 60 s.

Usage::

    python jobs/maintainer.py --once      # one cycle, then exit
    python jobs/maintainer.py             # a cycle every runtime.loop_interval_s seconds

Offline (no network) it runs on the bundled real candles with the replay clock. Logs go to stderr
and to <logs_dir>/maintainer.log. Exit 0 after --once, 2 on a bad config or flag.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The engine (pandas, numba) loads after the flags are parsed, so --help answers at once.
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="maintainer.py", description=__doc__.split("\n\n")[0])
    add_common_flags(p)
    p.add_argument("--once", action="store_true", help="run one cycle and exit")
    p.add_argument("--cycles", type=int, default=None, help="stop after this many cycles (default: run until stopped)")
    p.add_argument("--no-render", action="store_true", help="do not render the dashboard")
    p.add_argument("--rank", choices=("volume", "spread"), default=None,
                   help="rank the watchlist by 24 h quote volume or lowest bid/ask spread (default runtime.watchlist_rank)")
    p.add_argument("--entries", type=Path, default=None,
                   help="entries_config.json to use (default $SCALP_ENTRIES_CONFIG, else the repo's)")
    p.add_argument("--backtest-config", type=Path, default=None,
                   help="backtest_config.json to use (default $SCALP_BACKTEST_CONFIG, else the repo's)")
    p.add_argument("--json", action="store_true", help="print the cycle summary as JSON (with --once)")
    return p


def render_dashboard(runtime, *, strategies_path=None, urls=None):
    """Render the dashboard with tools/render (imported here: tools sit above the engine)."""
    from tools.render import render

    return render(runtime, strategies_path=strategies_path, repo_root=Path(__file__).resolve().parents[1], urls=urls)


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)

    def body() -> int:
        from engine import cycle
        from engine.config import load_settings

        overrides = {"watchlist_rank": args.rank} if args.rank else {}  # kept by every per-cycle reload
        settings = load_settings(args.config, args.entries, args.backtest_config, overrides=overrides)
        setup_logging(args.verbose, args.quiet, settings.runtime.logs_dir / "maintainer.log")
        renderer = None if args.no_render else render_dashboard
        if args.once:
            summary = cycle.run_once(settings, render=renderer, progress=True)
            if args.json:
                print(json.dumps(summary.to_json(), indent=1))
            return 0
        cycle.loop(settings, render=renderer, max_cycles=args.cycles)
        return 0

    return run_cli("maintainer.py", body)


if __name__ == "__main__":
    sys.exit(main())
