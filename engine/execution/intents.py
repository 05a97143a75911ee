"""Signal engine: a promoted strategy on its last closed candle → an :class:`Intent` (or nothing).

An intent is what a strategy wants before any guard has looked at it: the pair and timeframe, the
side, the signal bar, a reference price (the signal bar's close) and the exit plan to protect the
position with. The signals are the entry set's own (:func:`engine.strategy.signals.evaluate`, the
code research scored), computed on closed candles only: a candle whose close is after the clock is
left out, so an intent never rests on a bar that can still change. The simulator fills such a signal
at the next bar's open; the order plan starts from the reference price.

Two families, as the seed's trading core names them: :class:`MomentumIntent` (crosses and breakouts:
``sma_cross``, ``ema_cross``, ``bollinger_breakout``, ``donchian_breakout``) and
:class:`MeanReversionIntent` (``rsi_revert``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd

from engine.clock import format_ms
from engine.data.candles import check_bars, index_ms
from engine.errors import DataError
from engine.markets import timeframe_to_ms
from engine.strategy import signals
from engine.strategy.exits import ExitPlan
from engine.strategy.promoted import PromotedStrategy

#: Entry sets of the mean-reversion family; every other registered entry set is momentum.
MEAN_REVERSION_SIGNALS = frozenset({"rsi_revert"})


@dataclass(frozen=True)
class Intent:
    """What a strategy wants on one closed candle (long only, spot).

    Attributes
    ----------
    pair, timeframe, entry_set, signal : str
        The promoted strategy (``BTCUSDT``, ``5m``, its entry set and registered signal).
    params : dict
        Its parameters.
    side : "buy" | "sell"
        ``buy`` opens a position (entry signal), ``sell`` closes it (exit signal).
    signal_bar_ms : int
        Open time of the signal bar, epoch ms UTC; it closed at ``signal_bar_ms + timeframe``.
    reference_price : float
        Close of the signal bar, quote per base unit.
    exit_plan : ExitPlan
        The exit rules the strategy was scored with (order plans are built from it).
    reason : str
        In words: which signal fired on which bar.
    """

    family = "intent"

    pair: str
    timeframe: str
    entry_set: str
    signal: str
    side: str
    signal_bar_ms: int
    reference_price: float
    exit_plan: ExitPlan
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the event log (``family`` first, the exit plan as :meth:`ExitPlan.to_dict`)."""
        return {"family": self.family, "pair": self.pair, "timeframe": self.timeframe, "entry_set": self.entry_set,
                "signal": self.signal, "params": dict(self.params), "side": self.side,
                "signal_bar_ms": self.signal_bar_ms, "reference_price": self.reference_price,
                "exit_plan": self.exit_plan.to_dict(), "reason": self.reason}


@dataclass(frozen=True)
class MomentumIntent(Intent):
    """An intent of a cross or breakout entry set."""

    family = "momentum"


@dataclass(frozen=True)
class MeanReversionIntent(Intent):
    """An intent of a mean-reversion entry set (``rsi_revert``)."""

    family = "mean_reversion"


def intent_class(signal: str) -> type[Intent]:
    """:class:`MeanReversionIntent` for the mean-reversion entry sets, else :class:`MomentumIntent`."""
    return MeanReversionIntent if signal in MEAN_REVERSION_SIGNALS else MomentumIntent


def closed_candles(candles: pd.DataFrame, timeframe: str, now_ms: int) -> pd.DataFrame:
    """The candles whose close (open + timeframe) is at or before `now_ms` (epoch ms UTC)."""
    opens = index_ms(candles.index)
    return candles.iloc[: int((opens + timeframe_to_ms(timeframe) <= now_ms).sum())]


def intent_for(strategy: PromotedStrategy, candles: pd.DataFrame, *, now_ms: int) -> Intent | None:
    """Evaluate `strategy` on the last closed candle of `candles`; return its intent, or None.

    Parameters
    ----------
    strategy : PromotedStrategy
        An unexpired promoted strategy (an expired one gives None).
    candles : DataFrame
        The strategy's pair × timeframe candles (DESIGN.md shape), history included: indicators
        are computed over all of them.
    now_ms : int
        The clock, epoch ms UTC.

    Returns
    -------
    Intent or None
        A :class:`MomentumIntent` or :class:`MeanReversionIntent` when the entry signal (side
        ``buy``) or, with ``exit_plan.use_exit_signal``, the exit signal (side ``sell``) fires on
        the last closed candle; None otherwise.

    Raises
    ------
    DataError
        Malformed candles, or no closed candle at `now_ms`.
    """
    if strategy.expires_at_ms <= now_ms:
        return None
    check_bars(candles, where=f"{strategy.pair} {strategy.timeframe} candles")
    closed = closed_candles(candles, strategy.timeframe, now_ms)
    if closed.empty:
        raise DataError(f"{strategy.pair} {strategy.timeframe}: no closed candle at {format_ms(now_ms)}; "
                        "backfill the candles first")
    entries, exits = signals.evaluate(strategy.signal, closed, strategy.params)
    if entries[-1]:
        side, what = "buy", "entry"
    elif exits[-1] and strategy.exit_plan.use_exit_signal:
        side, what = "sell", "exit"
    else:
        return None
    bar_ms = int(index_ms(closed.index[-1:])[0])
    return intent_class(strategy.signal)(pair=strategy.pair, timeframe=strategy.timeframe, entry_set=strategy.entry_set, signal=strategy.signal,
               side=side, signal_bar_ms=bar_ms, reference_price=float(closed["close"].iloc[-1]),
               exit_plan=strategy.exit_plan, params=dict(strategy.params),
               reason=f"{strategy.entry_set} {what} signal on the close of the {strategy.timeframe} bar of "
                      f"{format_ms(bar_ms)}")


def intents_for(strategies: Iterable[PromotedStrategy], candles: Mapping[tuple[str, str], pd.DataFrame], *,
                now_ms: int) -> tuple[list[Intent], list[str]]:
    """Run :func:`intent_for` for every strategy whose (pair, timeframe) candles are in `candles`.

    Returns
    -------
    (intents, skipped)
        The intents, and one line per strategy that could not be evaluated (no candles, malformed
        candles), naming it and why; one bad strategy never stops the others.
    """
    out, skipped = [], []
    for s in strategies:
        frame = candles.get((s.pair, s.timeframe))
        if frame is None:
            skipped.append(f"{s.pair} {s.timeframe} {s.entry_set}: no candles")
            continue
        try:
            intent = intent_for(s, frame, now_ms=now_ms)
        except DataError as e:
            skipped.append(f"{s.pair} {s.timeframe} {s.entry_set}: {e}")
            continue
        if intent is not None:
            out.append(intent)
    return out, skipped
