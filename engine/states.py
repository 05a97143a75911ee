"""States of each (pair, timeframe): MIS / OLD / DAT / OK (DESIGN.md, "States").

- ``MIS``: no CSV of candles.
- ``OLD``: the last candle closed more than ``age_mult`` × timeframe before now.
- ``DAT``: fresh candles, no promoted strategy.
- ``OK``: fresh candles and a promoted, unexpired strategy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from engine.data.store import candle_path, last_candle_ms, read_source
from engine.markets import timeframe_to_ms
from engine.records import Fields
from engine.strategy.promoted import PromotedStrategy, active_keys

State = Literal["MIS", "OLD", "DAT", "OK"]
STATES: tuple[str, ...] = ("MIS", "OLD", "DAT", "OK")


@dataclass(frozen=True)
class PairState:
    """The state of one (pair, timeframe) at a moment.

    Attributes
    ----------
    pair, timeframe : str
        Folder name (``BTCUSDT``) and timeframe.
    state : "MIS" | "OLD" | "DAT" | "OK"
    last_candle_ms : int or None
        Open time of the last stored candle (epoch ms UTC); None without a CSV.
    rows : int or None
        Candles in the CSV; None without one.
    source : str or None
        The source recorded for the candle file (``binance``, ``sample``, ``import:<file>``), or None
        without a file or a record: the dashboard shows it per pair, so a cycle on mixed sources
        says so.
    """

    pair: str
    timeframe: str
    state: State
    last_candle_ms: int | None
    rows: int | None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return ``{"pair", "timeframe", "state", "last_candle_ms", "rows", "source"}`` (status.json → states)."""
        return {"pair": self.pair, "timeframe": self.timeframe, "state": self.state,
                "last_candle_ms": self.last_candle_ms, "rows": self.rows, "source": self.source}

    @classmethod
    def from_json(cls, f: Fields) -> PairState:
        """Read the form :meth:`to_json` writes; the reader's error names file and key."""
        return cls(f.str("pair"), f.str("timeframe"), f.str("state", choices=STATES),
                   f.int("last_candle_ms", optional=True, minimum=None), f.int("rows", optional=True),
                   f.str("source", optional=True))


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


def compute_states(data_dir: Path, pairs: Iterable[str], timeframes: Iterable[str],
                   strategies: Iterable[PromotedStrategy], now_ms: int, age_mult: float) -> list[PairState]:
    """Return the state of every pair × timeframe, pairs outer, timeframes inner.

    A (pair, timeframe) with fresh candles is ``OK`` when one of `strategies` is promoted for it
    and unexpired at `now_ms` (:func:`engine.strategy.promoted.active_keys`). Reads only the tail
    of each CSV (:func:`engine.data.store.last_candle_ms`) and counts its rows.
    """

    active = active_keys(strategies, now_ms)
    out = []
    for pair in pairs:
        for tf in timeframes:
            path = candle_path(data_dir, pair, tf)
            last = last_candle_ms(path) if path.exists() else None
            rows = _count_rows(path) if last is not None else None
            out.append(PairState(pair, tf, classify(last, tf, now_ms, age_mult, (pair, tf) in active), last, rows,
                                 read_source(path) if last is not None else None))
    return out


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for _ in f) - 1, 0)
