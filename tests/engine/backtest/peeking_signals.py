"""Signals that peek in the ways the lookahead check must catch (test fixtures, importable)."""
from __future__ import annotations

import numpy as np
import pandas as pd

_CACHE: dict = {}


def cached_peek(candles: pd.DataFrame):
    """Peeks one bar ahead, but caches its values on its first call and looks them up by time
    afterwards: checked full-series first, every cut agrees with the cache and the peek is missed."""
    if "entries" not in _CACHE:
        close = candles["close"].to_numpy()
        up = np.r_[close[1:] > close[:-1], False]  # the NEXT close: a peek
        _CACHE["entries"] = pd.Series(up, index=candles.index)
    entries = _CACHE["entries"].reindex(candles.index, fill_value=False).to_numpy()
    return entries, np.zeros(len(candles), dtype=bool)


def sparse_oracle(candles: pd.DataFrame, n_entries: int = 20, ahead: int = 5):
    """About `n_entries` entries in the whole series, each on a bar whose close `ahead` bars later
    is the highest of the series' top moves: rare, so random cuts rarely land on one."""
    close = candles["close"].to_numpy()
    gain = np.full(len(close), -np.inf)
    gain[:-ahead] = close[ahead:] / close[:-ahead]
    order = np.argsort(-gain, kind="stable")
    entries = np.zeros(len(close), dtype=bool)
    entries[order[:n_entries][np.isfinite(gain[order[:n_entries]])]] = True
    return entries, np.zeros(len(close), dtype=bool)


def backfilled_warmup(candles: pd.DataFrame, warmup: int = 40):
    """A 40-bar mean whose warm-up is back-filled with the first full value (bar 39's mean, which
    uses bars 0..39): bars 0..38 see later bars."""
    close = candles["close"]
    mean = close.rolling(warmup).mean().bfill()
    return (close > mean).to_numpy(), (close < mean).to_numpy()
