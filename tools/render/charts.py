"""Chart data: a promoted strategy's equity curve and drawdown, recent candles and trades (plotly,
loaded per card), and the random-entry twins' histogram (a small inline SVG, no script).

The numbers are the stored ones; only the number of points changes (display downsampling), and the
histogram's stored bins become rectangles.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import pandas as pd

from engine.data.candles import index_ms
from engine.research.reports import Curve
from tools.render.format import fmt_ms, fmt_num, number, sig

#: Maximum points per equity/drawdown series sent to the browser (display only).
MAX_CURVE_POINTS = 400


def downsample_curve(ts: Sequence[int], equity: Sequence[float], drawdown: Sequence[float] | None,
                     max_points: int = MAX_CURVE_POINTS) -> tuple[list[int], list[float], list[float] | None]:
    """Reduce an equity curve for display, keeping each bucket's extremes.

    Parameters
    ----------
    ts : sequence of int, length n
        Bar times in epoch ms, ascending.
    equity : sequence of float, length n
        Equity in quote currency.
    drawdown : sequence of float or None, length n
        Drawdown in percent below the running peak, positive as stored (:class:`Curve`).
    max_points : int
        Upper bound on returned points.

    Returns
    -------
    (ts, equity, drawdown)
        At most `max_points` points: per bucket the bars of minimum and maximum equity (in time
        order), the drawdown of both the deepest in the bucket; first and last bar always kept.
        Equity rounded to 0.01. The drawdown comes back **negated** (-3.2 for 3.2 % below the
        peak), rounded to 0.001, because the chart draws it as an area below zero.
    """
    m = len(ts)
    eq = [float(x) for x in equity]
    dd = [float(x) for x in drawdown] if drawdown is not None else None
    if m <= max_points:
        idx = list(range(m))
        dd_out = dd
    else:
        buckets = max(1, (max_points - 2) // 2)  # two points per bucket, plus first and last bar
        size = m / buckets
        idx, dd_out = [], [] if dd is not None else None
        for b in range(buckets):
            lo, hi = int(b * size), int((b + 1) * size) if b < buckets - 1 else m
            if hi <= lo:
                continue
            seg = range(lo, hi)
            i_min = min(seg, key=eq.__getitem__)
            i_max = max(seg, key=eq.__getitem__)
            picks = sorted({i_min, i_max} | ({0} if b == 0 else set()) | ({m - 1} if b == buckets - 1 else set()))
            idx.extend(picks)
            if dd is not None and dd_out is not None:
                dd_out.extend([max(dd[lo:hi])] * len(picks))
    t_out = [int(ts[i]) for i in idx]
    e_out = [round(eq[i], 2) for i in idx]
    d_out = [-round(v, 3) for v in dd_out] if dd_out is not None else None
    return t_out, e_out, d_out


def candle_columns(candles: pd.DataFrame) -> dict[str, list]:
    """Return candles as chart columns ``{"t": [ms], "o", "h", "l", "c"}`` (prices to 7 digits)."""
    t = index_ms(candles).tolist()
    return {"t": t, **{k: [sig(float(v)) for v in candles[col].to_numpy()]
                       for k, col in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"))}}


def build_chart_payload(curve: Curve | None, candles: pd.DataFrame | None) -> dict[str, Any] | None:
    """Return the chart data of one promoted strategy, or None when there is nothing to draw.

    Returns
    -------
    dict or None
        ``{"equity": {"t", "e", "d"} | None, "candles": {"t","o","h","l","c"} | None,
        "entries": {"t","p","txt"}, "exits": {"t","p","txt"}, "n_trades_window", "n_trades_total",
        "fit": [from_ms, to_ms] | None}``: the downsampled curve (:func:`downsample_curve`; ``d``
        negated for drawing), the recent candles, a mark for each stored trade entry and exit inside
        the candle window, and the range the candlestick chart opens on (:func:`fit_range`).
    """
    equity = None
    trades = curve.trades if curve is not None else ()
    if curve is not None and curve.timestamps_ms:
        t, e, d = downsample_curve(curve.timestamps_ms, curve.equity_quote, curve.drawdown_pct)
        equity = {"t": t, "e": e, "d": d}
    cols = candle_columns(candles) if candles is not None and len(candles) else None
    entries: dict[str, list] = {"t": [], "p": [], "txt": []}
    exits: dict[str, list] = {"t": [], "p": [], "txt": []}
    if cols:
        first, last = cols["t"][0], cols["t"][-1]
        for tr in trades:
            if first <= tr.entry_ms <= last:
                entries["t"].append(tr.entry_ms)
                entries["p"].append(sig(tr.entry_price))
                entries["txt"].append(f"entry {sig(tr.entry_price)}")
            if first <= tr.exit_ms <= last:
                exits["t"].append(tr.exit_ms)
                exits["p"].append(sig(tr.exit_price))
                exits["txt"].append(f"{tr.reason} {sig(tr.exit_price)} · PnL {tr.pnl_quote:+.2f}")
    if equity is None and cols is None:
        return None
    return {"equity": equity, "candles": cols, "entries": entries, "exits": exits,
            "n_trades_window": len(entries["t"]), "n_trades_total": len(trades),
            "fit": fit_range(cols["t"], entries["t"], exits["t"]) if cols else None}


#: Trades the candlestick chart opens fitted to (the last ones inside the candle window).
FIT_TRADES = 5
#: Candles of margin either side of the fitted trades.
FIT_MARGIN_BARS = 12


def fit_range(candle_ms: Sequence[int], entry_ms: Sequence[int], exit_ms: Sequence[int],
              n_trades: int = FIT_TRADES, margin_bars: int = FIT_MARGIN_BARS) -> list[int]:
    """Return the chart's opening x range ``[from_ms, to_ms]``: the last `n_trades` entries and the
    exits after them, with `margin_bars` candles either side, clipped to the candles; the last 200
    candles when no trade falls in the window."""
    if len(candle_ms) < 2:
        return [int(candle_ms[0]), int(candle_ms[-1])] if candle_ms else [0, 0]
    bar = int(candle_ms[1] - candle_ms[0])
    if not entry_ms and not exit_ms:
        return [int(candle_ms[max(0, len(candle_ms) - 200)]), int(candle_ms[-1]) + bar]
    last_entries = list(entry_ms)[-n_trades:]
    start = last_entries[0] if last_entries else min(exit_ms)
    marks = sorted([*last_entries, *(t for t in exit_ms if t >= start)])
    lo = max(int(candle_ms[0]), marks[0] - margin_bars * bar)
    hi = min(int(candle_ms[-1]) + bar, marks[-1] + margin_bars * bar)
    return [lo, hi]


#: Size of a card's equity sparkline in SVG user units (it scales to the card's width).
SPARK_WIDTH, SPARK_HEIGHT, SPARK_DD_HEIGHT, SPARK_POINTS = 300, 64, 18, 120


def sparkline(curve: Curve | None) -> dict[str, Any] | None:
    """Return a card's equity and drawdown sparkline (inline SVG, no script), or None without a curve.

    Returns
    -------
    dict or None
        ``{"w", "h", "eq_path", "dd_path", "dd_top", "first", "last" (UTC times of the ends),
        "start", "end" (equity at the ends, quote), "max_dd" (percent)}``: the equity in the upper
        ``SPARK_HEIGHT - SPARK_DD_HEIGHT`` units, the drawdown as an area hanging from ``dd_top``;
        the stored curve downsampled to :data:`SPARK_POINTS` (extremes kept, :func:`downsample_curve`).
    """
    if curve is None or len(curve.timestamps_ms) < 2:
        return None
    t, e, d = downsample_curve(curve.timestamps_ms, curve.equity_quote, curve.drawdown_pct, SPARK_POINTS)
    t0, t1 = t[0], t[-1]
    lo, hi = min(e), max(e)
    top_h = SPARK_HEIGHT - SPARK_DD_HEIGHT - 4
    span_t, span_e = (t1 - t0) or 1, (hi - lo) or 1.0

    def x(ms: int) -> float:
        return round((ms - t0) / span_t * SPARK_WIDTH, 1)

    eq = " ".join(f"{'M' if i == 0 else 'L'}{x(ms)},{round(2 + (hi - v) / span_e * (top_h - 4), 1)}"
                  for i, (ms, v) in enumerate(zip(t, e)))
    dd_top = SPARK_HEIGHT - SPARK_DD_HEIGHT
    deepest = min(d) if d else 0.0
    dd_path = None
    if d and deepest < 0:
        pts = " ".join(f"L{x(ms)},{round(dd_top + v / deepest * (SPARK_DD_HEIGHT - 1), 1)}" for ms, v in zip(t, d))
        dd_path = f"M0,{dd_top} {pts} L{SPARK_WIDTH},{dd_top} Z"
    return {"w": SPARK_WIDTH, "h": SPARK_HEIGHT, "eq_path": eq, "dd_path": dd_path, "dd_top": dd_top,
            "first": fmt_ms(t0), "last": fmt_ms(t1), "start": fmt_num(e[0], 2), "end": fmt_num(e[-1], 2),
            "max_dd": fmt_num(-deepest if d else None, 2)}


#: Size of the twins histogram in SVG user units (it scales to the card's width).
HIST_WIDTH, HIST_HEIGHT, HIST_AXIS = 240, 56, 12


def twins_histogram(hist: Any, value: Any) -> dict[str, Any] | None:
    """Return the drawing of the random-entry twins' histogram with the row's return marked.

    Parameters
    ----------
    hist : mapping
        ``{"edges": [n + 1 numbers, ascending], "counts": [n integers ≥ 0]}``, the stored
        ``judgement.twins_hist`` (returns of the twins in percent).
    value : float
        The row's out-of-sample total return, percent (NaN/None: no mark).

    Returns
    -------
    dict or None
        ``{"w", "h", "axis_y", "bars": [{"x", "y", "w", "h", "n", "lo", "hi"}], "mark_x" (None: no
        mark), "mark_off" ("left" | "right" | None: the return lies off the twins' range and is
        drawn at that edge), "lo", "hi"}`` in SVG units (bar heights scaled to the largest count,
        rounded to 0.1), the range ends formatted; None when `hist` is not of that shape (empty
        when the research stage drew no twins).
    """
    if not isinstance(hist, Mapping):
        return None
    edges, counts = hist.get("edges"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or len(counts) < 1 \
            or len(edges) != len(counts) + 1:
        return None
    e = [number(x) for x in edges]
    if any(x is None for x in e) or any(b <= a for a, b in pairwise(e)) \
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        return None
    lo, hi, top = e[0], e[-1], max(counts) or 1
    plot_h = HIST_HEIGHT - HIST_AXIS

    def x_of(v: float) -> float:
        return round((v - lo) / (hi - lo) * HIST_WIDTH, 1)

    bars = []
    for i, c in enumerate(counts):
        x0, x1 = x_of(e[i]), x_of(e[i + 1])
        h = round(c / top * (plot_h - 2), 1)
        bars.append({"x": x0, "y": round(plot_h - h, 1), "w": round(max(x1 - x0 - 1, 0.5), 1), "h": h, "n": c,
                     "lo": fmt_num(e[i], 2), "hi": fmt_num(e[i + 1], 2)})
    v = number(value)
    mark_x = mark_off = None
    if v is not None:
        mark_off = "left" if v < lo else "right" if v > hi else None
        mark_x = 1.0 if v < lo else HIST_WIDTH - 1.0 if v > hi else min(max(x_of(v), 1.0), HIST_WIDTH - 1.0)
    return {"w": HIST_WIDTH, "h": HIST_HEIGHT, "axis_y": plot_h, "bars": bars, "mark_x": mark_x,
            "mark_off": mark_off, "lo": fmt_num(lo, 2), "hi": fmt_num(hi, 2)}
