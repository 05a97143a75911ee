"""Where research time goes: seconds per stage of the (pair, timeframe) jobs, and the kernel's part.

Each job times its stages with :func:`stage` and hands :func:`take`'s figures back with its rows;
the research stage adds them up over its jobs and writes them to summary.json
(``research_stages_s``), which ``tools/bench_cycle.py`` prints. Stages, in the order a job runs
them (wall seconds, summed over jobs, so over processes when several run):

- ``read``: the candle CSVs (and the 1m ones for intrabar refinement), the gap policy;
- ``prepare``: checking the candles, their arrays and their 1m map (once per job);
- ``search``: the walk-forward folds: in-sample grid or optuna search, out-of-sample backtests;
- ``chance``: the random-entry twins of every row (:mod:`engine.research.chance`);
- ``judge``: PBO over the slot's configurations, the holdout backtest;
- ``kernel``: the part of all of the above spent inside the simulation kernels
  (:func:`engine.backtest.kernel_nb.kernel_seconds`), not a stage of its own;
- ``lines``: the part spent computing the kernels' signal inputs in numba: indicator lines, the
  ATR, the twins' random keys (:func:`engine.strategy.signals.line_seconds`). ``kernel`` +
  ``lines`` is what ``python -m engine.bench`` calls a backtest's kernel ("indicators included").
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Mapping

from engine.backtest.kernel_nb import kernel_seconds
from engine.strategy.signals import line_seconds

#: The stages of a job, in order; ``kernel`` and ``lines`` are inside them.
STAGES = ("read", "prepare", "search", "chance", "judge")

_seconds: dict[str, float] = {}
_marks = {"kernel": kernel_seconds(), "lines": line_seconds()}


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the wall seconds of the ``with`` block to stage `name` of this process's current job."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _seconds[name] = _seconds.get(name, 0.0) + time.perf_counter() - t0


def take() -> dict[str, float]:
    """Return the seconds per stage since the last call (with ``kernel`` and ``lines``), and start
    counting anew."""
    out = {name: _seconds.get(name, 0.0) for name in STAGES}
    for name, now in (("kernel", kernel_seconds()), ("lines", line_seconds())):
        out[name] = now - _marks[name]
        _marks[name] = now
    _seconds.clear()
    return out


def add(totals: Mapping[str, float], more: Mapping[str, float]) -> dict[str, float]:
    """Return the stage-wise sum of two profiles (missing stages count 0)."""
    return {k: totals.get(k, 0.0) + more.get(k, 0.0) for k in (*STAGES, "kernel", "lines")}
