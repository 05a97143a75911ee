"""Curve files (``curves/<PAIR>_<TF>_<SET>.json``): the out-of-sample equity curve of a candidate."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.data.candles import index_ms
from engine.fileio import json_safe
from engine.markets import pair_to_folder
from engine.records import Fields

#: Equity points kept per curve file (the dashboard needs no more).
CURVE_POINTS = 600


def curve_name(pair: str, timeframe: str, entry_set: str) -> str:
    """File name of a candidate's curve: ``BTCUSDT_5m_ema_cross.json``."""
    return f"{pair_to_folder(pair)}_{timeframe}_{entry_set}.json"


@dataclass(frozen=True)
class CurveTrade:
    """One round trip on a curve: entry/exit open time of the fill bar (ms) and price (quote,
    slippage included), ``reason`` (all exit legs, ``"tp1+tp2+be"``), net ``pnl_quote``."""

    entry_ms: int
    entry_price: float
    exit_ms: int
    exit_price: float
    reason: str
    pnl_quote: float

    def to_json(self) -> dict[str, Any]:
        return {"entry_ms": self.entry_ms, "entry_price": self.entry_price, "exit_ms": self.exit_ms,
                "exit_price": self.exit_price, "reason": self.reason, "pnl_quote": self.pnl_quote}

    @classmethod
    def from_json(cls, f: Fields) -> CurveTrade:
        return cls(f.int("entry_ms"), f.float("entry_price"), f.int("exit_ms"), f.float("exit_price"),
                   f.str("reason"), f.float("pnl_quote"))


@dataclass(frozen=True)
class Curve:
    """The out-of-sample equity curve of a candidate (``curves/<PAIR>_<TF>_<SET>.json``).

    Attributes
    ----------
    timestamps_ms : tuple of int, shape (n,)
        Bar open times (epoch ms UTC), ascending; at most :data:`CURVE_POINTS` bars, evenly
        spaced, first and last bar always kept.
    equity_quote : tuple of float, shape (n,)
        Equity in quote currency at each of those bars' close.
    drawdown_pct : tuple of float, shape (n,)
        Drawdown from the running peak of the full curve, percent, **positive** (DESIGN.md,
        "Metrics": 3.2 = 3.2 % below the peak; 0 at a new high).
    trades : tuple of CurveTrade
        Every trade of the test windows.
    """

    timestamps_ms: tuple[int, ...]
    equity_quote: tuple[float, ...]
    drawdown_pct: tuple[float, ...]
    trades: tuple[CurveTrade, ...] = ()

    @classmethod
    def from_equity(cls, equity: pd.Series, trades: pd.DataFrame, *, max_points: int | None = CURVE_POINTS) -> Curve:
        """Return the curve of an equity series and its trades (the one producer of curve files).

        Parameters
        ----------
        equity : Series of float
            Equity (quote) at each bar close; index = candle open times (UTC DatetimeIndex).
        trades : DataFrame
            Columns ``entry_ms entry_price exit_ms exit_price exit_reasons pnl_quote``
            (:data:`engine.backtest.results.TRADE_COLUMNS`).
        max_points : int or None
            Bars kept (evenly spaced, the last always); None keeps every bar. The drawdown is
            taken from the running peak of the full series before thinning.
        """
        values = equity.to_numpy(dtype=np.float64)
        times = index_ms(equity) if len(values) else np.array([], dtype=np.int64)
        if len(values):
            peak = np.maximum.accumulate(values)
            drawdown = (peak - values) / peak * 100.0
            step = 1 if max_points is None else max(1, int(math.ceil(len(values) / max_points)))
            keep = np.unique(np.r_[np.arange(0, len(values), step), len(values) - 1])
        else:
            drawdown, keep = values, np.array([], dtype=int)
        rows = tuple(CurveTrade(int(t.entry_ms), float(t.entry_price), int(t.exit_ms), float(t.exit_price),
                                str(t.exit_reasons), float(t.pnl_quote))
                     for t in trades.itertuples(index=False))
        return cls(tuple(int(x) for x in times[keep]), tuple(float(x) for x in values[keep]),
                   tuple(float(x) for x in drawdown[keep]), rows)

    def to_json(self) -> dict[str, Any]:
        return json_safe({"timestamps_ms": list(self.timestamps_ms), "equity_quote": list(self.equity_quote),
                          "drawdown_pct": list(self.drawdown_pct), "trades": [t.to_json() for t in self.trades]})

    @classmethod
    def from_json(cls, f: Fields) -> Curve:
        ts, eq, dd = f.ints("timestamps_ms"), f.numbers("equity_quote"), f.numbers("drawdown_pct", minimum=0.0)
        if not len(ts) == len(eq) == len(dd):
            f.fail("equity_quote", f"{len(eq)} values", f"one per timestamp ({len(ts)}), as drawdown_pct ({len(dd)})")
        return cls(ts, eq, dd, tuple(CurveTrade.from_json(t) for t in f.items("trades")))
