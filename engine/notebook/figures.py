"""Plotly figures for notebook cells: candles with signals and indicators, equity and drawdown,
random-entry twins, in-sample beside out-of-sample.

Each function returns a ``plotly.graph_objects.Figure`` built from engine results; it draws, never
computes a metric. Trace names carry units (``"Equity [USDT]"``). How a figure shows in each
notebook host is set once by :func:`engine.notebook.setup` (the renderer).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.research.reports import SummaryRow

#: Indicator columns drawn in a panel of their own (bounded oscillators), by name prefix.
OSCILLATORS = ("rsi",)


def candles_figure(candles: pd.DataFrame, *, indicators: pd.DataFrame | None = None,
                   entries: np.ndarray | pd.Series | None = None, exits: np.ndarray | pd.Series | None = None,
                   trades: pd.DataFrame | None = None, title: str = "", quote: str = "USDT") -> go.Figure:
    """Return candles with indicator lines, signal markers and trades.

    Parameters
    ----------
    candles : DataFrame
        DESIGN.md candles (UTC index of open times).
    indicators : DataFrame, optional
        One column per line, same index (:func:`engine.notebook.indicator_frame`); columns named
        ``rsi(…)`` go to a lower panel, the others over the price.
    entries, exits : bool arrays, shape (n_bars,), optional
        Signals on the close of each bar: a triangle under the low (entry) or over the high (exit)
        of the signal bar. The simulator fills them at the next bar's open.
    trades : DataFrame, optional
        :attr:`engine.backtest.BacktestResult.trades`: entry and exit fills at their prices.
    title : str
    quote : str
        Quote currency, for the axis label.
    """
    lower = [c for c in (indicators.columns if indicators is not None else []) if str(c).startswith(OSCILLATORS)]
    rows = 2 if lower else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[0.75, 0.25] if rows == 2 else [1.0])
    fig.add_trace(go.Candlestick(x=candles.index, open=candles["open"], high=candles["high"], low=candles["low"],
                                 close=candles["close"], name=f"Price [{quote}]"), row=1, col=1)
    for col in (indicators.columns if indicators is not None else []):
        fig.add_trace(go.Scatter(x=indicators.index, y=indicators[col], name=str(col), mode="lines",
                                 line={"width": 1.2}), row=2 if col in lower else 1, col=1)
    pad = (candles["high"] - candles["low"]).median() or 0.0
    for mask, name, column, sign, symbol, color in ((entries, "Entry signal", "low", -1, "triangle-up", "#2e7d32"),
                                                    (exits, "Exit signal", "high", 1, "triangle-down", "#c62828")):
        if mask is None:
            continue
        m = np.asarray(mask, dtype=bool)
        fig.add_trace(go.Scatter(x=candles.index[m], y=candles[column].to_numpy()[m] + sign * pad, mode="markers",
                                 name=f"{name} ({int(m.sum())})", marker={"symbol": symbol, "size": 9, "color": color}),
                      row=1, col=1)
    if trades is not None and len(trades):
        for when, price, name, color in (("entry_time", "entry_price", "Entry fill", "#1565c0"),
                                         ("exit_time", "exit_price", "Exit fill", "#ef6c00")):
            fig.add_trace(go.Scatter(x=trades[when], y=trades[price], mode="markers", name=f"{name} ({len(trades)})",
                                     marker={"symbol": "circle-open", "size": 8, "color": color}), row=1, col=1)
    fig.update_layout(title=title, height=560 if rows == 2 else 460, xaxis_rangeslider_visible=False,
                      legend={"orientation": "h", "y": -0.08}, margin={"t": 50, "b": 10})
    fig.update_yaxes(title_text=f"Price [{quote}]", row=1, col=1)
    return fig


def equity_figure(equity: pd.Series | Mapping[str, pd.Series], *, title: str = "", quote: str = "USDT") -> go.Figure:
    """Return equity curves (top) and their drawdowns in percent below the running peak (bottom).

    Parameters
    ----------
    equity : Series or mapping of name → Series
        Equity in quote at each bar close (:attr:`BacktestResult.equity`, a search's out-of-sample curve).
    """
    curves = {"Equity": equity} if isinstance(equity, pd.Series) else dict(equity)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05)
    for name, curve in curves.items():
        drawdown_pct = (curve / curve.cummax() - 1.0) * 100.0
        fig.add_trace(go.Scatter(x=curve.index, y=curve, name=f"{name} [{quote}]", mode="lines"), row=1, col=1)
        fig.add_trace(go.Scatter(x=drawdown_pct.index, y=drawdown_pct, name=f"{name} drawdown [%]", mode="lines",
                                 fill="tozeroy"), row=2, col=1)
    fig.update_layout(title=title, height=460, legend={"orientation": "h", "y": -0.12}, margin={"t": 50, "b": 10})
    fig.update_yaxes(title_text=f"Equity [{quote}]", row=1, col=1)
    fig.update_yaxes(title_text="Drawdown [%]", row=2, col=1)
    return fig


def twins_figure(row: SummaryRow) -> go.Figure:
    """Return the histogram of the row's random-entry twins' total returns with the row's own
    out-of-sample return marked (README, "Does it beat chance?")."""
    j = row.judgement
    hist = j.twins_hist or {}
    edges, counts = np.asarray(hist.get("edges", []), float), np.asarray(hist.get("counts", []), float)
    fig = go.Figure()
    if len(edges) > 1 and len(counts):
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                             name=f"{j.n_twins} random-entry twins", marker={"color": "#90a4ae"}))
    value = row.out_of_sample.get("total_return_pct")
    if value is not None and np.isfinite(value):
        fig.add_vline(x=float(value), line={"color": "#c62828", "width": 2},
                      annotation_text=f"{row.entry_set}: {value:.2f} % (p = {j.p_value_vs_random:.3f})")
    fig.update_layout(title=f"{row.pair} {row.timeframe} {row.entry_set}: out-of-sample return against chance",
                      xaxis_title="Total return [%]", yaxis_title="Twins", height=360, margin={"t": 50, "b": 10},
                      showlegend=True)
    return fig


def in_vs_out_figure(rows: Iterable[SummaryRow], metric: str = "sharpe", label: str = "Sharpe (ann.)") -> go.Figure:
    """Return in-sample (mean over folds) beside out-of-sample `metric` per entry set, as grouped bars."""
    rows = list(rows)
    names = [r.entry_set for r in rows]
    fig = go.Figure([go.Bar(x=names, y=[r.in_sample.get(metric) for r in rows], name=f"In-sample {label}"),
                     go.Bar(x=names, y=[r.out_of_sample.get(metric) for r in rows], name=f"Out-of-sample {label}")])
    fig.update_layout(barmode="group", title=f"In-sample vs out-of-sample: {label}", height=360,
                      margin={"t": 50, "b": 10})
    return fig
