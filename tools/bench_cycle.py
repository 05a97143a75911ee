"""Benchmark one full maintainer cycle on the bundled sample and print its wall time.

Usage::

    python tools/bench_cycle.py                 # warm: 1 unmeasured cycle, then 3 measured ones
    python tools/bench_cycle.py --cold          # also one cycle in a fresh process with an empty numba cache
    python tools/bench_cycle.py --workers 1,2   # compare research worker counts (same results)

A cycle is what ``python bot.py --once`` / ``jobs/maintainer.py --once`` runs: watchlist (offline,
all watchlist pairs) → seed candles from the sample → research (every pair × ``runtime.tf_list`` ×
entry set, the default search of backtest_config.json with walk-forward) → promotion → status →
dashboard. Every folder lives in a temporary directory (``SCALP_*`` variables), so the repo's own
reports and strategies are untouched. The first cycle of a process also pays for imports and
loading numba's cached kernels; ``--cold`` additionally compiles every kernel (what a fresh clone
pays once, since the kernels are cached with ``cache=True``).

Prints one line per measured cycle and a summary (seconds, wall clock), plus the research stage's
share, and checks that every worker count gives the same summary rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(tmp: Path) -> dict[str, str]:
    return {
        "SCALP_DATA_DIR": str(tmp / "data"), "SCALP_REPORTS_DIR": str(tmp / "reports"),
        "SCALP_LOGS_DIR": str(tmp / "logs"), "SCALP_PUBLIC_DIR": str(tmp / "public"),
        "SCALP_DATA_SOURCE": "sample", "SCALP_STRATEGIES_FILE": str(tmp / "strategies.yml"),
        "SCALP_URLS_DIR": str(tmp),
    }


def run_cycle(tmp: Path, workers: int | None) -> dict:
    """Run one cycle with its folders in `tmp`; return wall time (s), research time (s) and rows."""
    os.environ.update(_env(tmp))
    from engine import cycle
    from engine.config import load_settings
    from jobs.maintainer import render_dashboard

    settings = load_settings()
    t0 = time.perf_counter()
    summary = cycle.run_once(settings, render=render_dashboard, workers=workers)
    wall = time.perf_counter() - t0
    doc = json.loads((tmp / "reports" / "summary.json").read_text())
    return {"wall_s": wall, "research_s": doc.get("research_s"), "rows": doc["rows"],
            "n_promoted": summary.n_promoted, "n_rows": summary.n_rows, "errors": summary.errors}


def _strip(rows: list[dict]) -> str:
    return json.dumps(rows, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_cycle.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=3, help="measured warm cycles per worker count (default 3)")
    p.add_argument("--workers", default=None,
                   help="comma-separated research worker counts to compare, e.g. 1,2 (default: the configured default)")
    p.add_argument("--cold", action="store_true", help="also time one cycle in a new process with an empty numba cache")
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args._child:  # one cycle, figures as JSON on stdout
        with tempfile.TemporaryDirectory() as tmp:
            r = run_cycle(Path(tmp), None)
        print(json.dumps({"wall_s": r["wall_s"], "research_s": r["research_s"], "n_promoted": r["n_promoted"]}))
        return 0
    counts = [None] if not args.workers else [int(w) for w in args.workers.split(",")]
    if args.cold:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO_ROOT))
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--_child"], env=env, capture_output=True, text=True)
            total = time.perf_counter() - t0
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"cold cycle (empty numba cache, new process): {r['wall_s']:.1f} s "
              f"(research {r['research_s']:.1f} s; process incl. imports {total:.1f} s), {r['n_promoted']} promoted")
    from engine.config import load_backtest
    from engine.research import default_workers

    reference = None
    for w in counts:
        label = f"workers={w if w is not None else f'default ({default_workers(mode=load_backtest().mode)})'}"
        with tempfile.TemporaryDirectory() as tmp:
            run_cycle(Path(tmp), w)  # warm-up: imports, cached kernels, pool start-up paid once
            times = []
            for i in range(args.cycles):
                r = run_cycle(Path(tmp), w)
                times.append(r["wall_s"])
                print(f"{label} cycle {i + 1}: {r['wall_s']:.2f} s (research {r['research_s']:.2f} s), "
                      f"{r['n_rows']} rows, {r['n_promoted']} promoted, {len(r['errors'])} errors")
        rows = _strip(r["rows"])
        same = "" if reference is None else (" (rows identical to the first worker count)" if rows == reference
                                            else " (ROWS DIFFER from the first worker count)")
        reference = reference or rows
        print(f"{label}: warm cycle median {sorted(times)[len(times) // 2]:.2f} s, "
              f"min {min(times):.2f} s over {len(times)}{same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
