"""States of each (pair, timeframe): MIS / OLD / DAT / OK (DESIGN.md, "States").

- ``MIS``: no CSV of candles.
- ``OLD``: the last candle closed more than ``age_mult`` × timeframe before now.
- ``DAT``: fresh candles, no promoted strategy.
- ``OK``: fresh candles and a promoted, unexpired strategy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from engine.data.store import candle_path, last_candle_ms
from engine.markets import timeframe_to_ms

State = Literal["MIS", "OLD", "DAT", "OK"]


@dataclass(frozen=True)
class PairState:
    """The state of one (pair, timeframe) at a moment."""

    pair: str
    timeframe: str
    state: State
    last_candle_ms: int | None
    rows: int | None

    def as_dict(self) -> dict:
        return {"pair": self.pair, "timeframe": self.timeframe, "state": self.state,
                "last_candle_ms": self.last_candle_ms, "rows": self.rows}


def classify(last_candle_ms: int | None, timeframe: str, now_ms: int, age_mult: float, has_strategy: bool) -> State:
    """Return the state of one (pair, timeframe).

    Parameters
    ----------
    last_candle_ms : int or None
        Open time (epoch ms UTC) of the last stored candle; None when there is no CSV.
    timeframe : str
        ``1m 5m 15m 1h 4h 1d``.
    now_ms : int
        The clock's now (epoch ms UTC).
    age_mult : float
        The candles are OLD when the last candle's close, ``last_candle_ms + tf``, is more than
        ``age_mult × tf`` before `now_ms`.
    has_strategy : bool
        Whether a promoted, unexpired strategy exists for this (pair, timeframe).
    """
    if last_candle_ms is None:
        return "MIS"
    tf_ms = timeframe_to_ms(timeframe)
    if now_ms - (last_candle_ms + tf_ms) > age_mult * tf_ms:
        return "OLD"
    return "OK" if has_strategy else "DAT"


def active_keys(strategies: Iterable[dict], now_ms: int) -> set[tuple[str, str]]:
    """Return the (pair, timeframe) keys that have a promoted strategy unexpired at `now_ms`."""
    return {(s["pair"], s["timeframe"]) for s in strategies if int(s.get("expires_at_ms", 0)) > now_ms}


def compute_states(data_dir: Path, pairs: Iterable[str], timeframes: Iterable[str], strategies: list[dict],
                   now_ms: int, age_mult: float) -> list[PairState]:
    """Return the state of every pair × timeframe, pairs outer, timeframes inner.

    Reads only the tail of each CSV (:func:`engine.data.store.last_candle_ms`) and counts its rows.
    """

    active = active_keys(strategies, now_ms)
    out = []
    for pair in pairs:
        for tf in timeframes:
            path = candle_path(data_dir, pair, tf)
            last = last_candle_ms(path) if path.exists() else None
            rows = _count_rows(path) if last is not None else None
            out.append(PairState(pair, tf, classify(last, tf, now_ms, age_mult, (pair, tf) in active), last, rows))
    return out


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)
