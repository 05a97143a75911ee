"""The lookahead gate: every entry set in use is checked before research, and a failing one is left out.

Research never searches an entry set whose signals change when later bars are removed
(:func:`engine.backtest.lookahead.check_lookahead`: cuts on the bars where a signal fires, an
early ladder and random bars with a seed drawn per run and recorded; every cut series is evaluated
before the full series, each in a fresh call). The check runs once per entry set on the candles of
the first pair × timeframe with data, and its result is cached in ``<reports_dir>/lookahead.json``
by the hash of the signal code (the files that compute it) and of the candles it ran on: a cycle
on unchanged code and data does not check again; new code, new parameters or new candles do.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from engine.backtest.lookahead import check_lookahead
from engine.config import EntriesConfig, EntrySet
from engine.data.store import candle_path, read_tail_candles
from engine.errors import ConfigError, DataError, LookaheadError
from engine.fileio import write_json
from engine.markets import pair_to_folder
from engine.research.reports import StageError

logger = logging.getLogger(__name__)

LOOKAHEAD_FILE = "lookahead.json"

#: Bars of the most recent candles the gate checks on (enough for the sparse-oracle cuts).
CHECK_BARS = 5_000

#: Modules whose source decides a built-in entry set's signals.
SIGNAL_MODULES = ("engine.strategy.signals", "engine.strategy.indicators_nb", "engine.strategy.rules_nb")


@dataclass
class GateResult:
    """What the gate decided this cycle.

    Attributes
    ----------
    entries : EntriesConfig
        The entry sets to research (the failing ones disabled).
    checks : list of dict
        One per entry set in use: ``{"entry_set", "passed", "cached", "seed", "n_bars", "n_cuts",
        "message", "code_hash", "data_hash"}`` (also written to lookahead.json).
    errors : list of StageError
        One ``lookahead`` error per failing entry set (the message names the bar and the cut).
    """

    entries: EntriesConfig
    checks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[StageError] = field(default_factory=list)


def code_hash(entry_set: EntrySet) -> str:
    """sha256 (16 hex) of the code and parameters that compute `entry_set`'s signals: the source files
    of :data:`SIGNAL_MODULES`, its signal name and parameters."""
    h = hashlib.sha256(f"{entry_set.signal}|{json.dumps(entry_set.params, sort_keys=True)}".encode())
    for name in SIGNAL_MODULES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def data_hash(candles: pd.DataFrame) -> str:
    """sha256 (16 hex) of the candles' open times and OHLCV values."""
    h = hashlib.sha256(np.ascontiguousarray(candles.index.asi8).tobytes())
    h.update(np.ascontiguousarray(candles[["open", "high", "low", "close"]].to_numpy(np.float64)).tobytes())
    return h.hexdigest()[:16]


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and isinstance(data.get("checks"), dict) else {"checks": {}}
    except (OSError, ValueError):
        return {"checks": {}}  # missing or unreadable: check again (the cache only saves time)


def screen_entry_sets(entries: EntriesConfig, candles: pd.DataFrame | None, reports_dir: Path, *,
                      where: str = "", seed: int | None = None) -> GateResult:
    """Check every enabled entry set of `entries` for lookahead on the last :data:`CHECK_BARS` of
    `candles`; return the entry sets to research with the failing ones disabled.

    Parameters
    ----------
    candles : DataFrame or None
        Candles of one pair × timeframe (DESIGN.md shape); None when no candle file exists yet
        (then nothing is checked and nothing is excluded).
    reports_dir : Path
        Holds the cache ``lookahead.json`` (rewritten atomically).
    where : str
        What the candles are (``"BTCUSDT 1m"``), for the messages.
    seed : int, optional
        Seed of the random cuts; by default a new one per run (recorded in the cache and the checks).

    Returns
    -------
    GateResult

    Notes
    -----
    A failing entry set is logged with one ERROR line naming the bar and the cut, and reported as a
    ``lookahead`` :class:`StageError` (shown on the dashboard). A check that cannot run (too few
    bars, bad parameters) excludes nothing and is logged as a warning: research reports those
    problems itself.
    """
    result = GateResult(entries)
    if candles is None or len(candles) < 3:
        return result
    candles = candles.iloc[-CHECK_BARS:]
    cache_path = Path(reports_dir) / LOOKAHEAD_FILE
    cache = _read_cache(cache_path)
    d_hash = data_hash(candles)
    excluded = []
    for es in entries.enabled():
        key, c_hash = es.name, code_hash(es)
        hit = cache["checks"].get(key)
        if isinstance(hit, dict) and hit.get("code_hash") == c_hash and hit.get("data_hash") == d_hash:
            check = {**hit, "cached": True}
        else:
            check = {"entry_set": es.name, "code_hash": c_hash, "data_hash": d_hash, "cached": False, "data": where}
            try:
                rep = check_lookahead(es.signal, candles, es.params, seed=seed, name=es.name)
                check.update(passed=True, seed=rep.seed, n_bars=rep.n_bars, n_cuts=len(rep.cuts), message=str(rep))
            except LookaheadError as e:
                check.update(passed=False, message=str(e))
            except (ConfigError, DataError) as e:
                logger.warning("lookahead check of %s skipped: %s", es.name, e)
                continue
        result.checks.append(check)
        if not check["passed"]:
            excluded.append(es.name)
            msg = f"{es.name} excluded from research: {check['message']} (checked on {check.get('data') or where})"
            logger.error("lookahead: %s", msg)
            result.errors.append(StageError("lookahead", msg))
    if excluded:
        result.entries = replace(entries, entry_sets={
            name: (replace(es, enabled=False) if name in excluded else es) for name, es in entries.entry_sets.items()})
    try:
        write_json(cache_path, {"checks": {c["entry_set"]: {k: v for k, v in c.items() if k != "cached"}
                                           for c in result.checks}})
    except OSError as e:  # the cache only saves time; the cycle goes on
        logger.warning("lookahead cache not written: %s", e)
    return result


def first_candles(data_dir: Path, pairs: Sequence[str], timeframes: Sequence[str]) -> tuple[pd.DataFrame | None, str]:
    """Return the last :data:`CHECK_BARS` candles of the first pair × timeframe that has a readable
    candle file, and its name."""
    for tf in timeframes:
        for p in pairs:
            path = candle_path(Path(data_dir), pair_to_folder(p), tf)
            if path.exists():
                try:
                    return read_tail_candles(path, CHECK_BARS, tf), f"{pair_to_folder(p)} {tf}"
                except DataError:
                    continue
    return None, ""
