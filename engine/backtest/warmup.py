"""Compile the simulation kernels once, saying so: the first run of a fresh install (or a new
Colab runtime) spends a quarter to half a minute in numba's compiler (about 16 s on 2 cores), and
a silent stretch looks like a hang.

:func:`kernels_cached` tells whether numba's on-disk cache already holds the kernels (``*.nbi``
index files beside the kernel modules, or under ``NUMBA_CACHE_DIR``); :func:`compile_kernels`
runs the single-run kernel, the grid kernel and then every entry set once on a few hundred
bundled candles, which compiles (or loads) exactly the specialisations research uses, and logs a
line before each step, so the line on screen names what is compiling.

numba's cache checks only the source file of the function it compiled, not the files it inlines:
a kernel of ``kernel_nb.py`` built with an older ``core_nb.py`` would load from the cache and run
the old rules. So the cache is stamped with a hash of every kernel source (:func:`sources_stamp`);
:func:`kernels_cached` deletes the engine's cached kernels when the stamp differs (after an update
or an edit) and says the cache is cold, and :func:`compile_kernels` writes the stamp once done.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Modules whose numba kernels a cycle compiles.
KERNEL_DIRS = ("backtest", "strategy", "data", "research")
#: File beside the cached kernels holding the hash of the sources they were compiled from.
STAMP_FILE = "scalp-kernels.stamp"
_ENGINE = Path(__file__).resolve().parents[1]


def sources_stamp() -> str:
    """Return the SHA-256 (hex) of every kernel source (``engine/<dir>/*_nb.py``, by path and content)."""
    digest = hashlib.sha256()
    for d in KERNEL_DIRS:
        for path in sorted((_ENGINE / d).glob("*_nb.py")):
            digest.update(f"{d}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_roots() -> list[Path]:
    cache = os.environ.get("NUMBA_CACHE_DIR")
    return [Path(cache)] if cache else [_ENGINE / d / "__pycache__" for d in KERNEL_DIRS]


def _stamp_path() -> Path:
    cache = os.environ.get("NUMBA_CACHE_DIR")
    return Path(cache) / STAMP_FILE if cache else _ENGINE / "backtest" / "__pycache__" / STAMP_FILE
COMPILE_NOTE = "compiling simulation kernels once, about half a minute; later runs start in seconds"


def kernels_cached() -> bool:
    """True when numba's cache holds the engine's kernels compiled from the current sources (a warm start).

    When cached kernels exist but were compiled from other sources (the stamp differs or is
    missing), they are deleted (``*.nbi``/``*.nbc`` of the engine's kernels only; a WARNING says
    so) and the answer is False: stale kernels would run old rules.
    """
    roots = [r for r in _cache_roots() if r.is_dir()]
    if not any(any(r.rglob("*core*.nbi")) for r in roots):
        return False
    try:
        stamp = _stamp_path().read_text(encoding="utf-8").strip()
    except OSError:
        stamp = ""
    if stamp == sources_stamp():
        return True
    ours = {path.stem for d in KERNEL_DIRS for path in (_ENGINE / d).glob("*_nb.py")}
    removed = 0
    for root in roots:
        for pattern in ("*.nbi", "*.nbc"):
            for f in root.rglob(pattern):
                if f.name.split(".")[0] in ours:  # the engine's kernel modules, no other cache entry
                    try:
                        f.unlink()
                        removed += 1
                    except OSError:
                        pass
    logger.warning("numba cache: %d cached kernel files were compiled from other sources; deleted, "
                   "compiling again", removed)
    return False


def write_stamp() -> None:
    """Record that the cached kernels were compiled from the current sources (:func:`sources_stamp`)."""
    path = _stamp_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sources_stamp() + "\n", encoding="utf-8")
    except OSError as e:  # a read-only install: the next start compiles or loads again, no harm
        logger.warning("numba cache stamp not written to %s: %s", path, e)


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

    def judging() -> None:
        # the PBO blocks' whole-series grid, as the chance twins run it (their random keys, a
        # fraction of a second to compile, compile in the first research job)
        from engine.backtest.blocks import run_grid_blocks

        run_grid_blocks(candles, "sma_cross", [signals.get_signal("sma_cross").defaults], plans[0], Costs(),
                        timeframe="1m", edges=[0, 200, 400])

    steps = [("the single-run kernel", single), ("the grid kernel", grid), ("the PBO blocks", judging)]
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
    write_stamp()
    spent = time.perf_counter() - t0
    logger.warning("kernels ready in %.0f s", spent)
    return spent
