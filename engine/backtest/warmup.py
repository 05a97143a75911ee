"""Compile the simulation kernels once, saying so: the first run of a fresh install (or a new
Colab runtime) spends a quarter to half a minute in numba's compiler (about 16 s on 2 cores), and
a silent stretch looks like a hang.

:func:`kernels_cached` tells whether numba's on-disk cache already holds the kernels (``*.nbi``
index files beside the kernel modules, or under ``NUMBA_CACHE_DIR``); :func:`compile_kernels`
runs the single-run kernel, the grid kernel and then every entry set once on a few hundred
bundled candles, which compiles (or loads) exactly the specialisations research uses, and logs a
line before each step, so the line on screen names what is compiling.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Modules whose numba kernels a cycle compiles.
KERNEL_DIRS = ("backtest", "strategy", "data")
COMPILE_NOTE = "compiling simulation kernels once, about half a minute; later runs start in seconds"


def kernels_cached() -> bool:
    """True when numba's cache holds index files of the engine's kernels (a warm start)."""
    engine = Path(__file__).resolve().parents[1]
    cache = os.environ.get("NUMBA_CACHE_DIR")
    roots = [Path(cache)] if cache else [engine / d / "__pycache__" for d in KERNEL_DIRS]
    for root in roots:
        if root.is_dir() and any(root.rglob("*core*.nbi")):
            return True
    return False


def compile_kernels(*, progress: bool = False) -> float:
    """Compile (or load from the cache) the kernels every entry set uses; return the seconds spent.

    Logs :data:`COMPILE_NOTE` first, then one line per step; with `progress` a tqdm bar on a terminal.
    """
    from engine.backtest import run_backtest, run_grid
    from engine.data.sample import load_sample
    from engine.strategy import signals
    from engine.strategy.exits import Costs, ExitPlan

    t0 = time.perf_counter()
    logger.warning(COMPILE_NOTE)
    candles = load_sample("BTCUSDT").iloc[:400]
    lower = load_sample("BTCUSDT").iloc[:1200]
    five = load_sample("BTCUSDT", "5m").iloc[:240]
    plans = (ExitPlan(), ExitPlan.only(sl_atr_mult=2.0, trail_atr_mult=3.0, tp_ladder="1:100"))

    def single() -> None:  # the recording kernel, with and without lower-timeframe candles
        params = signals.get_signal("sma_cross").defaults
        run_backtest(candles, "sma_cross", params, plans[0], Costs(), timeframe="1m")
        run_backtest(five, "sma_cross", params, plans[0], Costs(), timeframe="5m", lower_candles=lower)

    def grid() -> None:
        run_grid(candles, "sma_cross", [signals.get_signal("sma_cross").defaults], plans[0], Costs(), timeframe="1m")

    def entry_set(name: str) -> None:  # its indicators and rules, under both exit plans
        params = signals.get_signal(name).defaults
        signals.evaluate(name, candles, params)
        for plan in plans:
            run_backtest(candles, name, params, plan, Costs(), timeframe="1m")
            run_backtest(five, name, params, plan, Costs(), timeframe="5m", lower_candles=lower)
            run_grid(candles, name, [params], plan, Costs(), timeframe="1m")

    steps = [("the single-run kernel", single), ("the grid kernel", grid)]
    steps += [(f"entry set {name}", lambda name=name: entry_set(name)) for name in signals.SIGNALS]
    bar = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        if sys.stderr.isatty() or "ipykernel" in sys.modules:
            bar = tqdm(total=len(steps), desc="compiling kernels", unit="step", file=sys.stderr)
    for k, (what, step) in enumerate(steps, start=1):
        logger.info("compiling %s (%d/%d, %.0f s so far)", what, k, len(steps), time.perf_counter() - t0)
        if bar is not None:
            bar.set_postfix_str(what)
        step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    spent = time.perf_counter() - t0
    logger.warning("kernels ready in %.0f s", spent)
    return spent
