"""python -m engine.bench memory: its code path on a small case (not timed), its candles and its flags."""
from __future__ import annotations

import re

import numpy as np

from engine import bench, bench_memory
from engine.backtest import check_candles


def test_memory_benchmark_prints_each_case_and_matches_the_whole_series_grid(capsys):
    # 20,000 bars in chunks of 3,000: seven chunks, positions open across their edges; --check
    # runs the whole-series grid in the same subprocess and compares every combination's metrics
    assert bench.main(["memory", "--case", "20000:3:4", "--check", "--chunk-bars", "3000"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    figures = re.fullmatch(
        r"20,000 bars × 12 combinations \(7 lines, chunks of 3,000 bars\): peak RSS (\d+) MB; baseline (\d+) MB after "
        r"imports, kernels and candles \(peak (\d+) MB before the grid\) → grid [+-]\d+ MB; grid \d+\.\d{3} s, "
        r"([\d,]+) trades; metrics equal to the whole-series grid: yes", lines[0])
    assert figures, lines[0]
    peak, baseline, peak_before, trades = figures.groups()
    assert int(peak) >= int(peak_before) > 0 and int(baseline) > 0 and int(trades.replace(",", "")) > 100
    assert re.fullmatch(r"  machine: .+, \d+ cores, Python [\d.]+; load average \(1/5/15 min\) before \[.+\], "
                        r"after \[.+\]", lines[1]), lines[1]


def test_memory_benchmark_candles_are_the_time_benchmarks():
    built, repeated = bench_memory.chained_candles(50_000), bench.repeated_candles(50_000)
    assert built.equals(repeated) and built.index.equals(repeated.index) and built.index.dtype == repeated.index.dtype
    # the frame uses the arrays it was given: every column contiguous, none copied by the backtest's checks
    bars = check_candles(built)
    assert all(np.shares_memory(getattr(bars, c), built[c].to_numpy()) for c in ("open", "high", "low", "close"))
    assert bench_memory.sma_grid(10, 10) == bench.grid_params()
    assert all(p["fast"] < p["slow"] for p in bench_memory.sma_grid(100, 100))


def test_bad_memory_flags_exit_2_with_one_line(capsys):
    for argv in (["memory", "--case", "10:1:1"], ["memory", "--case", "1e6"], ["memory", "--chunk-bars", "2"]):
        assert bench.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("engine.bench memory: --"), err
