"""Memory benchmark of the grid: ``python -m engine.bench memory`` prints each case's peak resident memory.

A case is ``n_bars`` 1m candles × a grid of ``sma_cross`` combinations, ``n_fast`` fast periods 5,
10, … × ``n_slow`` slow periods 20 apart starting 10 above the largest fast one
(:func:`sma_grid`; 10 × 10 is the time benchmark's :func:`engine.bench.grid_params`), scored by
:func:`engine.backtest.run_grid` with the time benchmark's exit plan and costs. The default cases
are those of issue 16: 10,000,000 bars × 100 combinations and 1,000,000 bars × 10,000 (100 × 100:
200 distinct SMA lines, 1.6 GB stacked over the whole series).

Each case runs in a fresh subprocess (``python -m engine.bench_memory --child …``), which:

1. imports the engine and loads the kernels (a 2-combination grid on 3,000 bars);
2. builds the candles with :func:`chained_candles` (the time benchmark's candles, written column by
   column into arrays the frame then uses as they are, so no second copy ever exists);
3. notes its resident memory (``VmRSS``: the *baseline*, imports + kernels + candles) and its peak
   so far;
4. runs the grid, timed, and reports its peak resident memory (``ru_maxrss``): the grid's own share
   is peak − baseline.

``--check`` then also runs the whole-series grid (:func:`engine.backtest.api.grid_inputs`: every
line stacked, small sizes only) and says whether every combination's metrics are equal.
``--chunk-bars`` sets the chunk size in the subprocess (:mod:`engine.backtest.chunks`). Before the
cases, one small warm-up subprocess fills numba's cache if it is cold, so no case pays for the
compiler's memory. Printed per case: the peak, the baseline, the grid's share, its seconds, and the
machine (CPU model, cores, load average before and after the case); ``--json``: all of it as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.bench import PLAN_TEXT, REPO, SAMPLE, machine

#: The cases of issue 16: (bars, fast periods, slow periods).
DEFAULT_CASES = ((10_000_000, 10, 10), (1_000_000, 100, 100))


def sma_grid(n_fast: int, n_slow: int) -> list[dict[str, int]]:
    """Return ``n_fast × n_slow`` sma_cross combinations: fast 5, 10, … 5·n_fast; slow 20 apart from 5·n_fast + 10.

    Every fast period is below every slow one; ``sma_grid(10, 10)`` is :func:`engine.bench.grid_params`.
    """
    top = 5 * n_fast
    return [{"fast": 5 * (i + 1), "slow": top + 10 + 20 * j} for i in range(n_fast) for j in range(n_slow)]


def chained_candles(n_bars: int) -> pd.DataFrame:
    """Return the candles of :func:`engine.bench.repeated_candles` (equal values and index), built in place.

    Each column is one preallocated float64 array of shape (n_bars,), filled copy by copy of the
    bundled sample and handed to the frame without a copy; the UTC index (microseconds, as
    ``repeated_candles``) is built first, while nothing else is held. Peak memory of the build:
    the frame itself (48 bytes per bar) plus the sample.
    """
    raw = pd.read_csv(SAMPLE)
    start_us = int(raw["timestamp"].iloc[0]) * 1000
    us = np.arange(n_bars, dtype=np.int64)
    us *= 60_000_000
    us += start_us
    index = pd.DatetimeIndex(us.view("M8[us]"), copy=False).tz_localize("UTC").rename("timestamp")
    del us
    ohlc = raw[["open", "high", "low", "close"]].to_numpy(np.float64)
    vol = raw["volume"].to_numpy(np.float64)
    names = ("open", "high", "low", "close")
    cols = {name: np.empty(n_bars) for name in (*names, "volume")}
    level, pos = 1.0, 0
    while pos < n_bars:
        k = min(len(ohlc), n_bars - pos)
        scaled = ohlc[:k] * level  # the products repeated_candles makes
        for j, name in enumerate(names):
            cols[name][pos:pos + k] = scaled[:, j]
        cols["volume"][pos:pos + k] = vol[:k]
        level *= ohlc[-1, 3] / ohlc[0, 0]
        pos += k
    return pd.DataFrame(cols, index=index, copy=False)


def _rss_mb() -> float:
    # resident memory now (VmRSS of /proc/self/status), MB; the peak where /proc is missing
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _peak_mb()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def measure(n_bars: int, n_fast: int, n_slow: int, *, check: bool = False, chunk_bars: int | None = None) -> dict:
    """Run one case in this process (steps 1-4 of the module docstring) and return its figures.

    Meant for a fresh process (the peak is the process's own); :func:`run_case` starts one.

    Returns
    -------
    dict
        ``n_bars``, ``n_combinations``, ``n_lines``, ``chunk_bars``, ``baseline_rss_mb``,
        ``peak_before_grid_mb``, ``peak_rss_mb``, ``grid_mb`` (peak − baseline), ``grid_s``,
        ``n_trades`` (all combinations), and with `check` ``same_as_whole_series_grid``.
    """
    from engine.backtest import chunks, metrics, run_grid
    from engine.backtest import kernel_nb as sim
    from engine.backtest.api import grid_inputs
    from engine.bench import repeated_candles
    from engine.strategy.exits import Costs, ExitPlan

    if chunk_bars is not None:
        chunks.CHUNK_BARS = chunks.MIN_CHUNK_BARS = int(chunk_bars)
    plan = ExitPlan.from_dict(PLAN_TEXT, where="bench")
    costs = Costs(10, 2)
    run_grid(repeated_candles(3000), "sma_cross", sma_grid(1, 2), plan, costs, timeframe="1m")  # load the kernels
    candles = chained_candles(n_bars)
    params = sma_grid(n_fast, n_slow)
    baseline = _rss_mb()
    peak_before = _peak_mb()
    t0 = time.perf_counter()
    result = run_grid(candles, "sma_cross", params, plan, costs, timeframe="1m")
    grid_s = time.perf_counter() - t0
    peak = _peak_mb()
    n_lines = n_fast + n_slow
    out = {"n_bars": n_bars, "n_combinations": len(params), "n_lines": n_lines,
           "chunk_bars": chunks.chunk_bars_for(n_lines), "baseline_rss_mb": round(baseline, 1),
           "peak_before_grid_mb": round(peak_before, 1), "peak_rss_mb": round(peak, 1),
           "grid_mb": round(peak - baseline, 1), "grid_s": round(grid_s, 3),
           "n_trades": int(sum(m["n_trades"] for m in result))}
    if check:
        g = grid_inputs(candles, "sma_cross", params, plan, costs, timeframe="1m")
        k = g.kernel
        stats = sim.run_grid_stats(k.bars, g.lines, g.entry_rules, g.exit_rules, k.ladder, k.plan, k.account, k.lower,
                                   n_groups=__import__("numba").get_num_threads(), block_bars=2048)
        whole = [metrics.metrics_from_stats(s, initial_cash_quote=10_000.0, periods_per_year=g.periods_per_year)
                 for s in stats]
        out["same_as_whole_series_grid"] = all(_same(a, b) for a, b in zip(result, whole)) and len(whole) == len(result)
    return out


def _spec(n_bars: int, n_fast: int, n_slow: int) -> str:
    return f"{n_bars}:{n_fast}:{n_slow}"


def parse_case(text: str) -> tuple[int, int, int]:
    """Return ``(n_bars, n_fast, n_slow)`` of a ``BARS:FAST:SLOW`` case.

    Raises
    ------
    ValueError
        Not three integers, fewer than 1,000 bars, or fewer than one fast or slow period.
    """
    try:
        n_bars, n_fast, n_slow = (int(v.replace("_", "").replace(",", "")) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--case {text!r}: expected BARS:FAST:SLOW, three integers (e.g. 1000000:100:100)") from None
    if n_bars < 1000 or n_fast < 1 or n_slow < 1:
        raise ValueError(f"--case {text!r}: expected at least 1000 bars and one fast and one slow period")
    return n_bars, n_fast, n_slow


def _child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def run_case(n_bars: int, n_fast: int, n_slow: int, *, check: bool = False, chunk_bars: int | None = None) -> dict:
    """Measure one case in a fresh subprocess; return :func:`measure`'s figures with ``machine``.

    ``machine``: :func:`engine.bench.machine` before the case, plus ``load_average_after``.

    Raises
    ------
    RuntimeError
        If the subprocess fails (its stderr's end in the message).
    """
    m = machine()
    cmd = [sys.executable, "-m", "engine.bench_memory", "--child", _spec(n_bars, n_fast, n_slow)]
    cmd += ["--check"] if check else []
    cmd += ["--chunk-bars", str(chunk_bars)] if chunk_bars else []
    proc = subprocess.run(cmd, cwd=REPO, env=_child_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory case {_spec(n_bars, n_fast, n_slow)} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    m["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    out["machine"] = m
    return out


def format_case(c: dict) -> str:
    """Return the two report lines of one case (figures, then the machine)."""
    m = c["machine"]
    text = (f"{c['n_bars']:,} bars × {c['n_combinations']:,} combinations ({c['n_lines']} lines, chunks of "
            f"{min(c['chunk_bars'], c['n_bars']):,} bars): peak RSS {c['peak_rss_mb']:.0f} MB; baseline "
            f"{c['baseline_rss_mb']:.0f} MB after imports, kernels and candles (peak {c['peak_before_grid_mb']:.0f} MB "
            f"before the grid) → grid {c['grid_mb']:+.0f} MB; grid {c['grid_s']:.3f} s, {c['n_trades']:,} trades")
    if "same_as_whole_series_grid" in c:
        text += f"; metrics equal to the whole-series grid: {'yes' if c['same_as_whole_series_grid'] else 'NO'}"
    return (text + f"\n  machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average (1/5/15 min) "
            f"before {m['load_average']}, after {m['load_average_after']}")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the cases (module docstring) and print them; exit 0, 2 on bad flags, 1 if a check fails."""
    ap = argparse.ArgumentParser(prog="python -m engine.bench memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", metavar="BARS:FAST:SLOW",
                    help="bars × fast × slow SMA periods (repeatable; default 10000000:10:10 and 1000000:100:100)")
    ap.add_argument("--check", action="store_true",
                    help="also run the whole-series grid in each case and compare the metrics (small sizes only)")
    ap.add_argument("--chunk-bars", type=int, metavar="N", help="bars per chunk (default: engine.backtest.chunks)")
    ap.add_argument("--json", action="store_true", help="print the cases as JSON")
    ap.add_argument("--child", metavar="BARS:FAST:SLOW", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        cases = [parse_case(c) for c in ([args.child] if args.child else args.case or [])] or list(DEFAULT_CASES)
        if args.chunk_bars is not None and args.chunk_bars < 3:
            raise ValueError(f"--chunk-bars {args.chunk_bars}: expected at least 3 bars")
    except ValueError as e:
        print(f"engine.bench memory: {e}", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(measure(*cases[0], check=args.check, chunk_bars=args.chunk_bars)))
        return 0
    # a cold numba cache is filled here, so that no measured case holds the compiler's memory
    subprocess.run([sys.executable, "-m", "engine.bench_memory", "--child", "3000:1:2"], cwd=REPO, env=_child_env(),
                   capture_output=True, check=True)
    results = []
    for case in cases:
        c = run_case(*case, check=args.check, chunk_bars=args.chunk_bars)
        results.append(c)
        if not args.json:
            print(format_case(c), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if any(c.get("same_as_whole_series_grid") is False for c in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
