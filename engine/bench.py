"""Benchmark of the simulator: ``python -m engine.bench`` prints one JSON object on stdout.

Figures (issue 3 targets on a 2-core machine in brackets):

- ``single_bars_per_s``: one backtest of ``sma_cross`` (10/30) with a 3-step TP ladder, a stop
  and breakeven on 1,000,000 1m bars, signals and indicators included, through the public
  :func:`engine.backtest.run_backtest` (trade list, equity and metrics built) [≥ 50 M/s];
  ``single_kernel_bars_per_s`` the same without the pandas result frames.
- ``grid_bar_evals_per_s``: :func:`engine.backtest.run_grid` over 100 ``sma_cross`` combinations
  (fast 5..50 × slow 60..240) on the same bars, indicators included: 100 × 1M / seconds
  [≥ 200 M/s].
- ``compile_cold_s`` / ``compile_warm_s``: first call (single backtest + grid on 2,000 bars) in a
  fresh interpreter with an empty numba cache / with the cache just written [warm < 2 s].
- ``peak_rss_mb``: peak resident memory of the benchmark process (all of the above except the
  compile runs, which use subprocesses) [< 1.5 GB].
- ``vs_bare_loop``: the ratios that travel to another machine. The reference is
  :mod:`engine.backtest.reference_nb`, a bare numba loop of the same entry set with the same exit
  rules (it makes the same trades and ends with the same cash, checked here and by a test).
  Interleaved, first ``rounds`` pairs of single backtests: the simulator kernel on one backtest
  (indicators included, no result frames) and the bare loop (its two moving averages included);
  then ``rounds`` pairs of grids: ``run_grid`` over the 100 combinations and the bare loop over
  them on the same threads (its moving averages included); which of each pair runs first
  alternates from round to round, and no single backtest runs right after a grid. Ratios are bare time / SCALP time, medians over the
  rounds: 1.0 = as fast as the bare loop, the target is ≥ 0.8.
- ``machine``: CPU model, cores, Python and the load average before and after: absolute figures
  mean something only with them.

The bars are the bundled BTCUSDT 1m candles (about 44,000) repeated and chained end to start
(each copy scaled so its first open equals the previous copy's last close) up to the length.
Timings are the best of ``--repeat`` runs after one warm-up run.

``python -m engine.bench --baseline REF`` instead compares this working tree with the tree of
git ref `REF` (exported with ``git archive`` into a temporary folder) on the two public figures,
single backtest and grid. ``--repeat`` rounds each start one fresh subprocess per tree, old and
new alternating, each with ``PYTHONPATH`` at its own tree and its own ``NUMBA_CACHE_DIR``; each
subprocess discards one warm-up run of both figures (compilation or cache load), then times
:data:`INNER_RUNS` runs of each on the same candles and keeps the best. It prints, per figure,
the median and best over the rounds of old and new and the new/old throughput ratio (> 1 = new
faster), with the CPU model, cores and load average before and after (``--json``: as JSON).

``python -m engine.bench memory`` measures the grid's peak memory instead (:mod:`engine.bench_memory`).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "engine" / "sample" / "ohlcv" / "BTCUSDT" / "1m.csv.gz"
PLAN_TEXT = {"tp": "0.9:50,1.4:30,2.1:20", "sl_pct": -0.5, "breakeven": True, "breakeven_offset_pct": 0.05}
PARAMS = {"fast": 10, "slow": 30}


def repeated_candles(n_bars: int = 1_000_000) -> pd.DataFrame:
    """Return `n_bars` 1m candles: the bundled BTCUSDT sample repeated and chained (see module doc)."""
    raw = pd.read_csv(SAMPLE)
    ohlc = raw[["open", "high", "low", "close"]].to_numpy(np.float64)
    vol = raw["volume"].to_numpy(np.float64)
    blocks, vols, level, total = [], [], 1.0, 0
    while total < n_bars:
        blocks.append(ohlc * level)
        vols.append(vol)
        level *= ohlc[-1, 3] / ohlc[0, 0]
        total += len(ohlc)
    arr = np.concatenate(blocks)[:n_bars]
    start_ms = int(raw["timestamp"].iloc[0])
    idx = pd.DatetimeIndex(pd.to_datetime(start_ms + 60_000 * np.arange(n_bars, dtype=np.int64), unit="ms", utc=True),
                           name="timestamp")
    return pd.DataFrame({"open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3],
                         "volume": np.concatenate(vols)[:n_bars]}, index=idx)


def grid_params() -> list[dict[str, int]]:
    """Return the 100 sma_cross combinations of the grid benchmark."""
    return [{"fast": f, "slow": s} for f in range(5, 55, 5) for s in range(60, 260, 20)]


def _best(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _compile_probe(cache_dir: str) -> float:
    code = (
        "import time\n"
        "from engine.bench import repeated_candles, PLAN_TEXT, PARAMS, grid_params\n"
        "from engine.backtest import run_backtest, run_grid\n"
        "from engine.strategy.exits import ExitPlan, Costs\n"
        "c = repeated_candles(2000); plan = ExitPlan.from_dict(PLAN_TEXT, where='bench')\n"
        "t0 = time.perf_counter()\n"
        "run_backtest(c, 'sma_cross', PARAMS, plan, Costs(10, 2), timeframe='1m')\n"
        "run_grid(c, 'sma_cross', grid_params()[:4], plan, Costs(10, 2), timeframe='1m')\n"
        "print(time.perf_counter() - t0)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(REPO)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(n_bars: int = 1_000_000, repeat: int = 3, compile_probe: bool = True) -> dict:
    """Run the benchmark and return the figures as a dict (see module docstring)."""
    from engine.backtest import kernel_nb as sim
    from engine.backtest.inputs import kernel_account, kernel_plan
    from engine.backtest.records_nb import Bars
    from engine.strategy import indicators_nb as indicators
    from engine.strategy import signals
    from engine.backtest import run_backtest, run_grid
    from engine.strategy.exits import Costs, ExitPlan

    result: dict = {"machine": machine()}
    if compile_probe:
        with tempfile.TemporaryDirectory() as cache:
            result["compile_cold_s"] = round(_compile_probe(cache), 3)
            result["compile_warm_s"] = round(_compile_probe(cache), 3)

    candles = repeated_candles(n_bars)
    plan = ExitPlan.from_dict(PLAN_TEXT, where="bench")
    costs = Costs(10, 2)

    single = _best(lambda: run_backtest(candles, "sma_cross", PARAMS, plan, costs, timeframe="1m"), repeat)
    r = run_backtest(candles, "sma_cross", PARAMS, plan, costs, timeframe="1m")

    bars = signals.to_bar_arrays(candles)
    ladder, p = kernel_plan(plan)
    account = kernel_account(costs, 10_000.0)

    def kernel_only():
        lines, er, xr = signals.prepare("sma_cross", bars, PARAMS)
        return sim.run_simulation(Bars(*bars, bars.close), lines, er, xr, ladder, p, account)

    kernel = _best(kernel_only, repeat)
    params = grid_params()
    grid = _best(lambda: run_grid(candles, "sma_cross", params, plan, costs, timeframe="1m"), repeat)
    indicator_s = _best(lambda: [indicators.sma_nb(bars.close, k) for k in
                                 sorted({v for q in params for v in q.values()})], repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result.update({
        "n_bars": n_bars,
        "single_backtest_s": round(single, 4),
        "single_bars_per_s": round(n_bars / single),
        "single_kernel_s": round(kernel, 4),
        "single_kernel_bars_per_s": round(n_bars / kernel),
        "single_n_trades": int(r.metrics["n_trades"]),
        "grid_combinations": len(params),
        "grid_s": round(grid, 4),
        "grid_bar_evals_per_s": round(len(params) * n_bars / grid),
        "grid_indicators_s": round(indicator_s, 4),
        "peak_rss_mb": round(rss_mb, 1),
        "numba_threads": int(__import__("numba").get_num_threads()),
    })
    result["vs_bare_loop"] = bare_loop_ratios(candles, plan, costs, params, rounds=max(3, repeat))
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def bare_loop_ratios(candles: pd.DataFrame, plan, costs, params: list[dict], *, rounds: int = 3) -> dict:
    """Time the simulator and the bare reference loop interleaved; return their ratios (see module doc).

    Raises
    ------
    AssertionError
        When the reference and the simulator disagree on the trades or the final cash (the ratio
        would compare different work).
    """
    from engine.backtest import kernel_nb as sim
    from engine.backtest import run_grid
    from engine.backtest.inputs import kernel_account, kernel_plan
    from engine.backtest.records_nb import Bars
    from engine.backtest.reference_nb import bare_sma_cross_grid_nb, bare_sma_cross_nb
    from engine.strategy import indicators_nb as indicators
    from engine.strategy import signals

    bars = signals.to_bar_arrays(candles)
    ladder, p = kernel_plan(plan)
    account = kernel_account(costs, 10_000.0)
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    rule = (ladder.level_frac, ladder.alloc_frac, plan.sl_pct / 100.0, plan.breakeven_offset_pct / 100.0,
            plan.max_hold_bars or 0, costs.fee_rate, costs.slippage_rate, 10_000.0)

    def scalp_single():
        lines, er, xr = signals.prepare("sma_cross", bars, PARAMS)
        return sim.run_simulation(Bars(*bars, c), lines, er, xr, ladder, p, account)

    def bare_single():
        return bare_sma_cross_nb(o, h, lo, c, indicators.sma_nb(c, PARAMS["fast"]), indicators.sma_nb(c, PARAMS["slow"]),
                                 *rule)

    periods = sorted({v for q in params for v in q.values()})
    row = {k: i for i, k in enumerate(periods)}
    pairs = np.array([[row[q["fast"]], row[q["slow"]]] for q in params], dtype=np.int64)

    def bare_grid():
        lines = np.empty((len(periods), len(c)))
        for i, k in enumerate(periods):
            indicators.sma_into_nb(c, k, lines[i])
        return bare_sma_cross_grid_nb(o, h, lo, c, lines, pairs, *rule)

    def scalp_grid():
        return run_grid(candles, "sma_cross", params, plan, costs, timeframe="1m")

    # same work: the same trades and the same final cash, single and every grid combination
    fills = scalp_single()
    n_trades, cash = bare_single()
    assert n_trades == len(fills.entry_bar), (n_trades, len(fills.entry_bar))
    grid_scalp = scalp_grid()
    grid_trades, grid_cash = bare_grid()
    assert [m["n_trades"] for m in grid_scalp] == grid_trades.tolist()
    assert np.allclose([10_000.0 * (1 + m["total_return_pct"] / 100) for m in grid_scalp], grid_cash, rtol=1e-9)
    times: dict[str, list[float]] = {"scalp_single": [], "bare_single": [], "scalp_grid": [], "bare_grid": []}
    # the single backtests first, then the grids, each pair's order alternating from round to round:
    # a run right after a threaded grid shares the cores with its idle threads, which spin on for a
    # while (measured: 1.3x the wall time for the same CPU time on a loaded 2-core host), so no
    # single backtest may follow a grid (rounds of all four, with an odd number of rounds, put the
    # simulator's single run after a grid once more than the bare loop's)
    for pair in ((("scalp_single", scalp_single), ("bare_single", bare_single)),
                 (("scalp_grid", scalp_grid), ("bare_grid", bare_grid))):
        for r in range(rounds):
            for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"rounds": rounds, "same_trades_and_cash": True,
            "single_kernel_ratio": round(med["bare_single"] / med["scalp_single"], 3),
            "grid_ratio": round(med["bare_grid"] / med["scalp_grid"], 3),
            "median_s": {k: round(v, 4) for k, v in med.items()}}


# The per-tree measurement of --baseline. It runs in the tree under test, so it may only use what
# every tree has: the public run_backtest/run_grid and ExitPlan/Costs, found at today's import
# paths or, for trees before the engine/ packages (e1f8a23 and older), at engine.exits.
_MEASURE = """
import json, pickle, sys, time
try:
    from engine.strategy.exits import Costs, ExitPlan
except ImportError:
    from engine.exits import Costs, ExitPlan
from engine.backtest import run_backtest, run_grid

spec = json.loads(sys.argv[2])
with open(sys.argv[1], "rb") as f:
    candles = pickle.load(f)
plan = ExitPlan.from_dict(spec["plan"], where="bench")
costs = Costs(*spec["costs"])

def single():
    run_backtest(candles, "sma_cross", spec["params"], plan, costs, timeframe="1m")

def grid():
    run_grid(candles, "sma_cross", spec["grid"], plan, costs, timeframe="1m")

def best(fn, n):
    out = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out

single()
grid()  # warm-up: compilation or numba cache load, discarded
print(json.dumps({"single_s": best(single, spec["inner"][0]), "grid_s": best(grid, spec["inner"][1])}))
"""
#: Timed runs inside each --baseline subprocess, best kept: (single backtest, grid).
INNER_RUNS = (5, 3)


def machine() -> dict:
    """Return the CPU model (from /proc/cpuinfo), core count, Python version and load average now."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def export_tree(ref: str, dest: Path) -> str:
    """Extract the tree of git ref `ref` of this repository into `dest`; return its full commit id.

    Raises
    ------
    ValueError
        If `ref` is not a commit of this repository.
    """
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                         capture_output=True, text=True)
    if rev.returncode != 0:
        raise ValueError(f"--baseline {ref}: not a commit of {REPO}; pass a commit id, tag or branch")
    commit = rev.stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], capture_output=True,
                             check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return commit


def _measure(tree: Path, cache_dir: Path, candles_path: Path, spec: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(cache_dir), "SCALP_NO_AUTOINSTALL": "1"}
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(candles_path), spec], cwd=tree, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(baseline: str, n_bars: int = 1_000_000, repeat: int = 5) -> dict:
    """Measure this working tree against the tree of git ref `baseline`, interleaved (module docstring).

    Returns
    -------
    dict
        ``baseline`` (ref and commit), ``n_bars``, ``rounds``, ``machine`` (with ``load_before`` and
        ``load_after``), and per figure (``single``, ``grid``): ``old_s``/``new_s`` (every round's
        seconds), their medians and bests, the medians in bars/s (bar evaluations/s for the grid),
        and ``ratio_median``/``ratio_best`` = old seconds / new seconds (new/old throughput).

    Raises
    ------
    ValueError
        If `baseline` is not a commit of this repository.
    """
    load_before = [round(v, 2) for v in os.getloadavg()]
    params = grid_params()
    spec = json.dumps({"plan": PLAN_TEXT, "costs": [10, 2], "params": PARAMS, "grid": params, "inner": INNER_RUNS})
    times: dict[str, dict[str, list[float]]] = {"single": {"old": [], "new": []}, "grid": {"old": [], "new": []}}
    with tempfile.TemporaryDirectory(prefix="scalp-bench-") as tmp:
        tmp_path = Path(tmp)
        old_tree = tmp_path / "baseline"
        commit = export_tree(baseline, old_tree)
        candles_path = tmp_path / "candles.pkl"
        with open(candles_path, "wb") as f:
            pickle.dump(repeated_candles(n_bars), f)
        trees = {"old": (old_tree, tmp_path / "numba-old"), "new": (REPO, tmp_path / "numba-new")}
        for _ in range(repeat):
            for which in ("old", "new"):
                tree, cache = trees[which]
                got = _measure(tree, cache, candles_path, spec)
                times["single"][which].append(got["single_s"])
                times["grid"][which].append(got["grid_s"])
    result: dict = {"baseline": {"ref": baseline, "commit": commit}, "n_bars": n_bars, "rounds": repeat,
                    "machine": {**machine(), "load_before": load_before}}
    result["machine"]["load_after"] = result["machine"].pop("load_average")
    for figure, evals in (("single", n_bars), ("grid", n_bars * len(params))):
        old, new = times[figure]["old"], times[figure]["new"]
        old_med, new_med = statistics.median(old), statistics.median(new)
        result[figure] = {
            "old_s": [round(t, 4) for t in old], "new_s": [round(t, 4) for t in new],
            "old_median_s": round(old_med, 4), "new_median_s": round(new_med, 4),
            "old_best_s": round(min(old), 4), "new_best_s": round(min(new), 4),
            "old_per_s": round(evals / old_med), "new_per_s": round(evals / new_med),
            "ratio_median": round(old_med / new_med, 3), "ratio_best": round(min(old) / min(new), 3),
        }
    return result


def format_comparison(c: dict) -> str:
    """Return the text report of :func:`compare`: ratios first, then absolute figures and the machine."""
    names = {"single": "single backtest (bars/s)", "grid": f"grid of {len(grid_params())} (bar-evals/s)"}
    m = c["machine"]
    lines = [f"baseline {c['baseline']['ref']} ({c['baseline']['commit'][:12]}) vs working tree {REPO}: "
             f"{c['n_bars']:,} 1m bars, {c['rounds']} rounds, subprocesses old/new alternating",
             "", f"{'figure':32} {'new/old median':>15} {'new/old best':>13}"]
    for key, name in names.items():
        f = c[key]
        lines.append(f"{name:32} {f['ratio_median']:>15.3f} {f['ratio_best']:>13.3f}")
    lines += ["", f"{'figure':32} {'old median':>14} {'new median':>14} {'old best s':>11} {'new best s':>11}"]
    for key, name in names.items():
        f = c[key]
        lines.append(f"{name:32} {f['old_per_s'] / 1e6:>12.1f} M {f['new_per_s'] / 1e6:>12.1f} M "
                     f"{f['old_best_s']:>11.4f} {f['new_best_s']:>11.4f}")
    for key, name in names.items():
        lines.append(f"  {key} seconds per round: old {c[key]['old_s']}  new {c[key]['new_s']}")
    lines += ["", f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
                  f"before {m['load_before']}, after {m['load_after']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the benchmark (or the --baseline comparison), print it on stdout; exit 0, 2 on bad flags.

    ``python -m engine.bench memory …`` runs the grid's memory benchmark instead (:mod:`engine.bench_memory`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["memory"]:
        from engine import bench_memory

        return bench_memory.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n\n")[0],
                                 epilog="python -m engine.bench memory --help: the grid's peak memory")
    ap.add_argument("--bars", type=int, default=1_000_000, help="number of 1m bars (default 1000000)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per figure, best kept; with --baseline the number of rounds (default 3)")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile probes")
    ap.add_argument("--baseline", metavar="REF", help="compare with the tree of this git ref (commit, tag, branch): "
                    "--repeat rounds of one subprocess per tree, alternating")
    ap.add_argument("--json", action="store_true", help="with --baseline: print the comparison as JSON")
    args = ap.parse_args(argv)
    if args.bars < 1000 or args.repeat < 1:
        print("engine.bench: --bars must be ≥ 1000 and --repeat ≥ 1", file=sys.stderr)
        return 2
    if args.baseline:
        try:
            c = compare(args.baseline, args.bars, args.repeat)
        except ValueError as e:
            print(f"engine.bench: {e}", file=sys.stderr)
            return 2
        print(json.dumps(c, indent=1) if args.json else format_comparison(c))
        return 0
    print(json.dumps(run(args.bars, args.repeat, not args.no_compile), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
