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

The bars are the bundled BTCUSDT 1m candles (about 44,000) repeated and chained end to start
(each copy scaled so its first open equals the previous copy's last close) up to the length.
Timings are the best of ``--repeat`` runs after one warm-up run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
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
    from engine.backtest.records_nb import Bars
    from engine.strategy import indicators_nb as indicators
    from engine.strategy import signals
    from engine.backtest import run_backtest, run_grid
    from engine.strategy.exits import Costs, ExitPlan

    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "processor": platform.processor() or platform.machine()}}
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
    ladder, p = plan.kernel_inputs()
    account = costs.account(10_000.0)

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
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the benchmark, print its JSON on stdout; exit 0."""
    ap = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=1_000_000, help="number of 1m bars (default 1000000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per figure, best kept (default 3)")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile probes")
    args = ap.parse_args(argv)
    if args.bars < 1000 or args.repeat < 1:
        print("engine.bench: --bars must be ≥ 1000 and --repeat ≥ 1", file=sys.stderr)
        return 2
    print(json.dumps(run(args.bars, args.repeat, not args.no_compile), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
