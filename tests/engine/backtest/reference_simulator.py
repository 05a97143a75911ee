"""Plain-Python reference of the simulator's fill rules, used only by tests.

Written from the rules in the docstring of :func:`engine.backtest.kernel_nb.simulate_nb`, independently
of the kernel (objects and lists instead of a state vector, one function per step of a bar), so
that the property tests can compare the two trade for trade. Slow; use small frames only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.strategy.exits import Costs, ExitPlan

SAMPLE_BTC = "engine/sample/ohlcv/BTCUSDT/1m.csv.gz"


def load_sample_slice(pair: str = "BTCUSDT", start: int = 0, n: int = 3000) -> pd.DataFrame:
    """Return rows ``start:start+n`` of a bundled 1m sample as a candle frame (test helper)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    df = pd.read_csv(root / "engine" / "sample" / "ohlcv" / pair / "1m.csv.gz", nrows=start + n)
    df = df.iloc[start:start + n]
    idx = pd.DatetimeIndex(pd.to_datetime(df["timestamp"].to_numpy(), unit="ms", utc=True), name="timestamp")
    return pd.DataFrame({c: df[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")},
                        index=idx)


def frame(rows: list[tuple[float, float, float, float]], start: str = "2021-04-02 00:00", freq: str = "1min") -> pd.DataFrame:
    """Return a candle frame from ``(open, high, low, close)`` rows (volume 1.0)."""
    idx = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC", name="timestamp")
    arr = np.asarray(rows, dtype=np.float64)
    return pd.DataFrame({"open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3],
                         "volume": np.ones(len(rows))}, index=idx)


@dataclass
class Leg:
    trade: int
    bar: int
    price: float
    qty: float
    fee: float
    reason: str
    level: float  # price before slippage


@dataclass
class Trade:
    entry_bar: int
    entry_price: float
    qty: float
    entry_fee: float
    remaining: float
    sl: float
    peak: float
    steps_done: int = 0
    legs: list[Leg] = field(default_factory=list)
    exit_bar: int = -1
    pnl: float = 0.0


@dataclass
class Outcome:
    trades: list[Trade]
    equity: list[float]
    cash: list[float]
    position: list[float]
    ambiguous: int = 0
    target_first: int = 0
    stop_first: int = 0
    unresolved: int = 0
    rejected: int = 0


def reference_backtest(o, h, l, c, entries, exits, plan: ExitPlan, costs: Costs, *, cash: float = 10_000.0,
                       atr=None, lower: list[list[tuple[float, float, float]]] | None = None) -> Outcome:
    """Simulate like the kernel; `lower[t]` = list of (open, high, low) lower candles of bar t."""
    fee = costs.fee_bps / 10_000.0
    slip = costs.slippage_bps / 10_000.0
    steps = [(p / 100.0, a / 100.0) for p, a in plan.tp_ladder]
    n = len(o)
    out = Outcome([], [], [], [])
    pos: Trade | None = None
    flat_at_prev_close = True
    lot = plan.lot_size_base

    def target(tr: Trade, k: int) -> float:
        return tr.entry_price * (1.0 + steps[k][0]) if k < len(steps) else math.inf

    def sell(tr: Trade, level: float, q: float, reason: str, t: int) -> None:
        nonlocal cash
        price = level * (1.0 - slip)
        f = q * price * fee
        cash += q * price - f
        tr.remaining -= q
        tr.legs.append(Leg(len(out.trades), t, price, q, f, reason, level))

    def sell_rest(tr: Trade, level: float, reason: str, t: int) -> None:
        sell(tr, level, tr.remaining, reason, t)
        tr.remaining = 0.0

    def step_qty(tr: Trade, k: int) -> float:
        if k == len(steps) - 1:
            return tr.remaining
        q = tr.qty * steps[k][1]
        if lot is not None:
            q = math.floor(q / lot + 1e-9) * lot
        return min(q, tr.remaining)

    def take_step(tr: Trade, level: float, t: int) -> None:
        k = tr.steps_done
        q = step_qty(tr, k)
        if q > 0:
            sell(tr, level, q, f"tp{k + 1}", t)
        tr.steps_done += 1

    def bar_stop(tr: Trade, t: int) -> tuple[float, str]:
        cands = [(tr.sl, "sl")]
        if plan.breakeven and tr.steps_done >= 1:
            cands.append((tr.entry_price * (1.0 + plan.breakeven_offset_pct / 100.0), "be"))
        if plan.trail_pct is not None:
            cands.append((tr.peak * (1.0 - plan.trail_pct / 100.0), "trail"))
        elif plan.trail_atr_mult is not None:
            v = tr.peak - plan.trail_atr_mult * atr[t - 1]
            cands.append((v if not math.isnan(v) else -math.inf, "trail"))
        best = cands[0]
        for cand in cands[1:]:
            if cand[0] > best[0]:
                best = cand
        return best

    def intrabar(tr: Trade, t: int, stop: float, why: str) -> None:
        s_hit = l[t] <= stop
        t_hit = h[t] >= target(tr, tr.steps_done)
        if s_hit and t_hit:
            out.ambiguous += 1
            first = None
            subs = lower[t] if lower is not None and t < len(lower) else []
            for so, sh, sl_ in subs:
                if so <= stop:
                    first = first or "stop"
                    sell_rest(tr, so, why, t)
                    break
                while tr.steps_done < len(steps) and so >= target(tr, tr.steps_done):
                    first = first or "target"
                    take_step(tr, so, t)
                if tr.remaining <= 0:
                    break
                lvl = target(tr, tr.steps_done)
                if sl_ <= stop:
                    first = first or ("both" if sh >= lvl else "stop")
                    sell_rest(tr, stop, why, t)
                    break
                if sh >= lvl:
                    first = first or "target"
                    while tr.steps_done < len(steps) and sh >= target(tr, tr.steps_done):
                        take_step(tr, target(tr, tr.steps_done), t)
                    if tr.remaining <= 0:
                        break
            if first == "target":
                out.target_first += 1
            elif first == "stop":
                out.stop_first += 1
            else:
                out.unresolved += 1
                if tr.remaining > 0:
                    sell_rest(tr, stop, why, t)
        elif s_hit:
            sell_rest(tr, stop, why, t)
        elif t_hit:
            while tr.steps_done < len(steps) and h[t] >= target(tr, tr.steps_done):
                take_step(tr, target(tr, tr.steps_done), t)

    for t in range(n):
        stop, why = -math.inf, "sl"
        active = pos
        # at the open
        if pos is not None:
            stop, why = bar_stop(pos, t)
            if o[t] <= stop:
                sell_rest(pos, o[t], why, t)
            else:
                while pos.steps_done < len(steps) and o[t] >= target(pos, pos.steps_done):
                    take_step(pos, o[t], t)
                if pos.remaining > 0:
                    if plan.use_exit_signal and exits[t - 1] and not entries[t - 1]:
                        sell_rest(pos, o[t], "signal", t)
                    elif plan.max_hold_bars is not None and t - pos.entry_bar >= plan.max_hold_bars:
                        sell_rest(pos, o[t], "time", t)
        just_entered = False
        if (pos is None or pos.remaining <= 0) and pos is None and flat_at_prev_close and t >= 1 and entries[t - 1]:
            price = o[t] * (1.0 + slip)
            q = cash / (price * (1.0 + fee)) if cash > 0 else 0.0
            if lot is not None:
                q = math.floor(q / lot + 1e-9) * lot
                if q * price * (1.0 + fee) > cash:
                    q -= lot
            if cash <= 0 or q <= 0:
                out.rejected += 1
            else:
                f = q * price * fee
                cash = cash - q * price - f
                if plan.sl_pct is not None:
                    sl = price * (1.0 + plan.sl_pct / 100.0)
                elif plan.sl_atr_mult is not None:
                    sl = price - plan.sl_atr_mult * atr[t - 1]
                    sl = -math.inf if math.isnan(sl) else sl
                else:
                    sl = -math.inf
                pos = Trade(t, price, q, f, q, sl, price)
                active = pos
                just_entered = True
                stop, why = bar_stop(pos, t)
                if plan.check_entry_bar and o[t] <= stop:  # stop closer than the slippage: through it at the open
                    sell_rest(pos, o[t], why, t)
        # inside the bar
        if pos is not None and pos.remaining > 0 and (plan.check_entry_bar or not just_entered):
            intrabar(pos, t, stop, why)
        if pos is not None and pos.remaining > 0 and t == n - 1:
            sell_rest(pos, c[t], "end", t)
        if active is not None and active.remaining <= 0:
            active.exit_bar = t
            proceeds = sum(g.qty * g.price - g.fee for g in active.legs)
            active.pnl = proceeds - (active.qty * active.entry_price + active.entry_fee)
            out.trades.append(active)
            pos = None
        if pos is not None and h[t] > pos.peak:
            pos.peak = h[t]
        flat_at_prev_close = pos is None
        held = pos.remaining if pos is not None else 0.0
        out.cash.append(cash)
        out.position.append(held)
        out.equity.append(cash + held * c[t])
    return out
