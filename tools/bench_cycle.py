"""Benchmark one full maintainer cycle on the bundled sample and print its wall time.

Usage::

    python tools/bench_cycle.py                 # warm: 1 unmeasured cycle, then 3 measured ones
    python tools/bench_cycle.py --cold          # also one cycle in a fresh process with an empty numba cache
    python tools/bench_cycle.py --workers 1,2   # compare research worker counts (same results)
    python tools/bench_cycle.py --baseline e1f8a23 --cycles 3   # this tree against a git ref, one run

A cycle is what ``python bot.py --once`` / ``jobs/maintainer.py --once`` runs: watchlist (offline,
all watchlist pairs) → seed candles from the sample → research (every pair × ``runtime.tf_list`` ×
entry set, the default search of backtest_config.json with walk-forward) → promotion → status →
dashboard. Every folder lives in a temporary directory (``SCALP_*`` variables), so the repo's own
reports and strategies are untouched. The first cycle of a process also pays for imports and
loading numba's cached kernels; ``--cold`` additionally compiles every kernel (what a fresh clone
pays once, since the kernels are cached with ``cache=True``).

Prints one line per measured cycle and a summary (seconds, wall clock), plus the research stage's
share, and checks that every worker count gives the same summary rows.

``--baseline REF`` instead measures this working tree against the tree of git ref `REF` (exported
with ``git archive`` into a temporary folder, as ``python -m engine.bench --baseline`` does for the
simulator). ``--cycles`` rounds each start one fresh subprocess per tree, old and new alternating,
each with ``PYTHONPATH`` and the working directory at its own tree, its own ``NUMBA_CACHE_DIR``
and its own temporary folders; each subprocess runs one warm-up cycle (discarded: imports, numba
compilation or cache load, pool start-up, seeding the candles) and then times one cycle. Each tree
runs its own config files (``engine.cycle.run_once(load_settings())`` today,
``run_once(load_config())`` at e1f8a23 and older). Printed: per stage the old and new medians and
the new/old time ratio (< 1 = new faster), and the same for the fastest round (the one least
disturbed by other load): the whole cycle, research (``research_s`` of summary.json, where the
tree writes it), the dashboard render (timed around the renderer the child passes in) and the
rest (watchlist, seeding, promotion, status); every round's seconds, rows and promoted per tree,
and the machine: CPU model, cores, load average before and after (``--json``: all of it as JSON).
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
            "n_promoted": summary.n_promoted, "n_rows": summary.n_rows, "errors": summary.errors,
            "stages_s": dict(summary.stages_s), "research_stages_s": doc.get("research_stages_s") or {}}


def format_breakdown(r: dict) -> str:
    """Return the per-stage lines of one measured cycle (:func:`run_cycle`): the cycle's stages, then
    research's (summed over its jobs) with the simulation kernel's share of research."""
    total = r["wall_s"]
    stages = "  ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items() if v >= 0.005)
    lines = [f"  cycle stages (s): {stages}  = {total:.2f}"]
    rs = r["research_stages_s"]
    if rs and r["research_s"]:
        jobs = "  ".join(f"{k} {v:.2f}" for k, v in rs.items() if k not in ("kernel", "lines"))
        kernel, inputs = rs.get("kernel", 0.0), rs.get("lines", 0.0)
        share = lambda s: f"{100 * s / r['research_s']:.0f} % of research"  # noqa: E731
        lines.append(f"  research stages (s, summed over jobs): {jobs}; research {r['research_s']:.2f} s in all")
        lines.append(f"  kernels: simulation {kernel:.2f} s ({share(kernel)}) + its inputs (indicator lines, ATR, "
                     f"twins' keys) {inputs:.2f} s = {kernel + inputs:.2f} s, {share(kernel + inputs)} "
                     f"({100 * (kernel + inputs) / total:.0f} % of the cycle)")
    return "\n".join(lines)


# One tree's measurement for --baseline. It runs inside the tree under test (cwd and PYTHONPATH), so
# it uses only what every tree has: engine.cycle.run_once(config, render=..., workers=...), the
# config loader (load_settings today, load_config at e1f8a23 and older), jobs.maintainer's
# render_dashboard and summary.json.
_CHILD = r"""
import json, logging, sys, time
from pathlib import Path

logging.basicConfig(level=logging.WARNING)
tmp, workers = Path(sys.argv[1]), (int(sys.argv[2]) if sys.argv[2] else None)
import engine.config as config
from engine import cycle
from jobs.maintainer import render_dashboard

load = getattr(config, "load_settings", None) or config.load_config
render_s = []

def render(runtime, **kw):
    t0 = time.perf_counter()
    try:
        return render_dashboard(runtime, **kw)
    finally:
        render_s.append(time.perf_counter() - t0)

def one():
    del render_s[:]
    settings = load()
    t0 = time.perf_counter()
    summary = cycle.run_once(settings, render=render, workers=workers)
    wall = time.perf_counter() - t0
    doc = json.loads((tmp / "reports" / "summary.json").read_text())
    return {"wall_s": wall, "research_s": doc.get("research_s"), "render_s": sum(render_s) if render_s else None,
            "n_rows": summary.n_rows, "n_promoted": summary.n_promoted, "n_errors": len(summary.errors)}

one()  # warm-up, discarded
print(json.dumps(one()))
"""
#: Stages of the --baseline breakdown: (key, label).
STAGES = (("wall_s", "cycle (wall)"), ("research_s", "research (summary.json research_s)"),
          ("render_s", "dashboard render"), ("other_s", "other stages (wall - research - render)"))


def _measure_tree(tree: Path, cache_dir: Path, workers: int | None) -> dict:
    """Run :data:`_CHILD` in `tree` with fresh folders; return its figures (``other_s`` added)."""
    with tempfile.TemporaryDirectory(prefix="scalp-cycle-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALP_") and k != "NUMBA_DISABLE_JIT"}
        env.update(_env(Path(tmp)), PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache_dir), SCALP_NO_AUTOINSTALL="1")
        proc = subprocess.run([sys.executable, "-c", _CHILD, tmp, "" if workers is None else str(workers)],
                              cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cycle in {tree} failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got["research_s"] is not None and got["render_s"] is not None:
        got["other_s"] = got["wall_s"] - got["research_s"] - got["render_s"]
    else:
        got["other_s"] = None
    return got


def compare(baseline: str, rounds: int = 3, workers: int | None = None) -> dict:
    """Measure this working tree's warm cycle against the tree of git ref `baseline` (module docstring).

    Returns
    -------
    dict
        ``baseline`` (ref, commit), ``rounds``, ``workers``, ``machine`` (CPU, cores, Python,
        ``load_before``, ``load_after``), ``old``/``new``: every round's figures (``wall_s``,
        ``research_s``, ``render_s``, ``other_s`` in seconds, None where the tree does not say;
        ``n_rows``, ``n_promoted``, ``n_errors``), and ``stages``: per stage key the old and new
        medians and ``ratio`` = new / old seconds (< 1: new faster), the bests (fastest round) and
        ``ratio_best``; None where a tree does not give the stage in every round.

    Raises
    ------
    ValueError
        If `baseline` is not a commit of this repository.
    """
    import statistics

    from engine.bench import export_tree, machine

    load_before = [round(v, 2) for v in os.getloadavg()]
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="scalp-bench-cycle-") as tmp:
        tmp_path = Path(tmp)
        commit = export_tree(baseline, tmp_path / "baseline")
        trees = {"old": (tmp_path / "baseline", tmp_path / "numba-old"), "new": (REPO_ROOT, tmp_path / "numba-new")}
        for i in range(rounds):
            for which in ("old", "new"):
                got = _measure_tree(*trees[which], workers)
                runs[which].append(got)
                print(f"round {i + 1}/{rounds} {which}: cycle {got['wall_s']:.2f} s", file=sys.stderr)
    m = machine()
    load_after = m.pop("load_average")
    result: dict = {"baseline": {"ref": baseline, "commit": commit}, "rounds": rounds, "workers": workers,
                    "machine": {**m, "load_before": load_before, "load_after": load_after},
                    "old": runs["old"], "new": runs["new"], "stages": {}}
    for key, _ in STAGES:
        old = [r[key] for r in runs["old"] if r[key] is not None]
        new = [r[key] for r in runs["new"] if r[key] is not None]
        whole = len(old) == len(new) == rounds
        old_med, new_med = (statistics.median(old), statistics.median(new)) if whole else (None, None)
        old_best, new_best = (min(old), min(new)) if whole else (None, None)
        result["stages"][key] = {"old_median_s": old_med, "new_median_s": new_med,
                                 "ratio": new_med / old_med if whole and old_med else None,
                                 "old_best_s": old_best, "new_best_s": new_best,
                                 "ratio_best": new_best / old_best if whole and old_best else None}
    return result


def format_comparison(c: dict) -> str:
    """Return the text report of :func:`compare`: per stage the medians and the ratio, then the rounds."""
    def s(v: float | None, spec: str = ".2f") -> str:
        return "—" if v is None else format(v, spec)

    m = c["machine"]
    workers = "default" if c["workers"] is None else c["workers"]
    lines = [f"baseline {c['baseline']['ref']} ({c['baseline']['commit'][:12]}) vs working tree {REPO_ROOT}: "
             f"warm maintainer cycle on the bundled sample, {c['rounds']} rounds of one subprocess per tree "
             f"(old/new alternating, one warm-up cycle discarded in each), research workers {workers}",
             "", f"{'stage':42} {'old median s':>12} {'new median s':>12} {'new/old':>8}   "
                 f"{'old best s':>10} {'new best s':>10} {'new/old':>8}"]
    for key, label in STAGES:
        st = c["stages"][key]
        lines.append(f"{label:42} {s(st['old_median_s']):>12} {s(st['new_median_s']):>12} {s(st['ratio'], '.3f'):>8}   "
                     f"{s(st.get('old_best_s')):>10} {s(st.get('new_best_s')):>10} {s(st.get('ratio_best'), '.3f'):>8}")
    lines.append("(new/old is a time ratio: < 1 means the new tree is faster; best = the fastest round, the least "
                 "disturbed by other load)")
    lines.append("")
    for which in ("old", "new"):
        r = c[which]
        lines.append(f"  {which}: cycle s per round {[round(x['wall_s'], 2) for x in r]}, research s "
                     f"{[x['research_s'] for x in r]}, render s {[s(x['render_s']) for x in r]}; rows "
                     f"{sorted({x['n_rows'] for x in r})}, promoted {sorted({x['n_promoted'] for x in r})}, "
                     f"errors {sorted({x['n_errors'] for x in r})}")
    lines += ["", f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
                  f"before {m['load_before']}, after {m['load_after']}"]
    return "\n".join(lines)


def _strip(rows: list[dict]) -> str:
    return json.dumps(rows, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_cycle.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=3, help="measured warm cycles per worker count; with --baseline the number of rounds (default 3)")
    p.add_argument("--workers", default=None,
                   help="comma-separated research worker counts to compare, e.g. 1,2 (default: the configured default)")
    p.add_argument("--cold", action="store_true", help="also time one cycle in a new process with an empty numba cache")
    p.add_argument("--baseline", metavar="REF", help="compare with the tree of this git ref (commit, tag, branch): "
                   "--cycles rounds of one subprocess per tree, alternating, each a warm-up and a timed cycle")
    p.add_argument("--json", action="store_true", help="with --baseline: print the comparison as JSON")
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
    load_before = [round(v, 2) for v in os.getloadavg()]
    if args.cycles < 1:
        print("bench_cycle.py: --cycles must be ≥ 1", file=sys.stderr)
        return 2
    if args.baseline:
        if len(counts) != 1:
            print("bench_cycle.py: --baseline takes one worker count (--workers N)", file=sys.stderr)
            return 2
        try:
            c = compare(args.baseline, args.cycles, counts[0])
        except ValueError as e:
            print(f"bench_cycle.py: {e}", file=sys.stderr)
            return 2
        print(json.dumps(c, indent=1) if args.json else format_comparison(c))
        return 0
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
                print(format_breakdown(r))
        rows = _strip(r["rows"])
        same = "" if reference is None else (" (rows identical to the first worker count)" if rows == reference
                                            else " (ROWS DIFFER from the first worker count)")
        reference = reference or rows
        print(f"{label}: warm cycle median {sorted(times)[len(times) // 2]:.2f} s, "
              f"min {min(times):.2f} s over {len(times)}{same}")
    from engine.bench import machine

    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
          f"before {load_before}, after {m['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
