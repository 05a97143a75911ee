"""Words and numbers for the dashboard: stored values formatted, never recomputed.

Times come from the typed records as epoch ms UTC and are formatted by
:func:`engine.clock.format_ms` (the one time formatter); undefined numbers (NaN, None) show as
``—``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from engine.clock import format_ms
from engine.errors import ConfigError
from engine.markets import TIMEFRAME_MS, folder_to_pair, pair_to_folder
from engine.strategy.exits import ExitPlan

DASH = "—"


def timeframe_order(timeframe: str) -> int:
    """Sort key of a timeframe: its length (unknown timeframes last)."""
    return TIMEFRAME_MS.get(timeframe, 10**12)


def number(v: Any) -> float | None:
    """Return `v` as a finite float, or None (missing, NaN, ±inf, not a number)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def sig(v: float, digits: int = 7) -> float:
    """Round `v` to `digits` significant digits (prices in chart files)."""
    return float(f"{v:.{digits}g}")


def fmt_num(v: Any, decimals: int = 2) -> str:
    """Format a stored number: fixed `decimals`, ``—`` when missing or undefined."""
    f = number(v)
    if f is None:
        return DASH
    return f"{f:.{decimals}f}"


def fmt_signed(v: Any, decimals: int = 2) -> str:
    """Format a stored difference with its sign: ``+1.75``, ``-0.40`` (``—`` when undefined)."""
    f = number(v)
    if f is None:
        return DASH
    return f"{f:+.{decimals}f}"


def fmt_count(n: Any, one: str, many: str | None = None) -> str:
    """``1 trial`` / ``450 trials`` (``—`` when `n` is not an integer)."""
    if isinstance(n, bool) or not isinstance(n, int):
        return DASH
    return f"{n} {one if n == 1 else (many or one + 's')}"


def fmt_dsr(deflated_sharpe: Any, n_trials_slot: Any, n_configs_tried: Any = None) -> str:
    """Format a deflated Sharpe ratio with the trials it counts: ``DSR 0.62 · 450 trials``.

    `n_trials_slot` (every configuration that competed for the pair × timeframe, what the stored
    DSR counts) when the research stage recorded it (> 0); else the row's own `n_configs_tried`,
    which is what reports without a judgement record deflated by (``· 27 tried``).
    """
    if isinstance(n_trials_slot, int) and not isinstance(n_trials_slot, bool) and n_trials_slot > 0:
        return f"DSR {fmt_num(deflated_sharpe, 2)} · {fmt_count(n_trials_slot, 'trial')}"
    tried = n_configs_tried if isinstance(n_configs_tried, int) and not isinstance(n_configs_tried, bool) else DASH
    return f"DSR {fmt_num(deflated_sharpe, 2)} · {tried} tried"


def fmt_ms(ms: int | None) -> str:
    """Format epoch ms as ``2021-05-02 23:59 UTC`` (``—`` for None)."""
    return format_ms(ms)


def fmt_short(ms: int | None, now_ms: int) -> str:
    """``12:02 UTC`` when `ms` falls on the same UTC day as `now_ms`, else :func:`fmt_ms`."""
    if ms is None:
        return DASH
    if ms // 86_400_000 == now_ms // 86_400_000:
        return format_ms(ms)[11:]
    return format_ms(ms)


def fmt_window(first_ms: int | None, last_ms: int | None) -> str:
    """Format a window of candles by their open times: ``2021-04-15 10:22 → 04-20 20:59 UTC``
    (the year once when both ends share it)."""
    if first_ms is None or last_ms is None:
        return DASH
    a, b = format_ms(first_ms), format_ms(last_ms)
    if a[:4] == b[:4]:
        b = b[5:]
    return f"{a[:-4]} → {b}"


def fmt_duration(seconds: float | None) -> str:
    """Format a duration in seconds as ``4.2 s``, ``42 s``, ``3 min 20 s`` or ``2 h 05 min``."""
    s = number(seconds)
    if s is None:
        return DASH
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_relative(ms: int | None, now_ms: int) -> str:
    """Format `ms` relative to `now_ms`: ``in 4 h 10 min`` / ``12 min ago`` (``—`` for None)."""
    if ms is None:
        return DASH
    delta = (ms - now_ms) / 1000
    a = abs(delta)
    if a < 60:
        txt = f"{a:.0f} s"
    elif a < 3600:
        txt = f"{a // 60:.0f} min"
    elif a < 86400 * 2:
        txt = f"{a // 3600:.0f} h {a % 3600 // 60:02.0f} min"
    else:
        txt = f"{a / 86400:.1f} days"
    return f"in {txt}" if delta >= 0 else f"{txt} ago"


def fmt_value(v: Any) -> str:
    """Format a parameter value: ``2`` for 2.0, lists comma-separated, None as ``—``."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {fmt_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return DASH
    return str(v)


def fmt_params(params: Mapping[str, Any]) -> str:
    """Format signal parameters as ``fast 9 · slow 21`` (``—`` when there are none)."""
    if not params:
        return DASH
    return " · ".join(f"{k} {fmt_value(v)}" for k, v in params.items())


#: Metrics of a one-line summary (:func:`fmt_metrics_line`): (key, label, decimals, unit).
LINE_METRICS: tuple[tuple[str, str, int, str], ...] = (
    ("total_return_pct", "return", 2, " %"),
    ("sharpe", "Sharpe", 2, ""),
    ("n_trades", "trades", 0, ""),
    ("max_drawdown_pct", "max DD", 2, " %"),
)


def fmt_metrics_line(metrics: Mapping[str, Any]) -> str:
    """Format stored metrics in one line: ``return -1.23 % · Sharpe 0.50 · trades 12 · max DD 2.10 %``
    (keys of :data:`LINE_METRICS` that are present; ``—`` for undefined values, or for no metric)."""
    parts = [f"{label} {fmt_num(metrics[k], d)}{unit if number(metrics[k]) is not None else ''}"
             for k, label, d, unit in LINE_METRICS if k in metrics]
    return " · ".join(parts) or DASH


def fmt_exit_plan(plan: ExitPlan) -> str:
    """Format an exit plan in one line: ``TP 0.9%×50 1.4%×30 · SL -0.5% · breakeven · max hold 240 bars``."""
    out = []
    if plan.tp_ladder:
        out.append("TP " + " ".join(f"{p:g}%×{a:g}" for p, a in plan.tp_ladder))
    if plan.sl_pct is not None:
        out.append(f"SL {plan.sl_pct:g}%")
    if plan.sl_atr_mult is not None:
        out.append(f"SL {plan.sl_atr_mult:g}×ATR")
    if plan.breakeven:
        out.append("breakeven")
    if plan.trail_pct is not None:
        out.append(f"trail {plan.trail_pct:g}%")
    if plan.trail_atr_mult is not None:
        out.append(f"trail {plan.trail_atr_mult:g}×ATR")
    if plan.max_hold_bars is not None:
        out.append(f"max hold {plan.max_hold_bars} bars")
    return " · ".join(out) or ("signal exit only" if plan.use_exit_signal else "no exit rule")


def fmt_volume(v: Any) -> str:
    """Format a quote volume as ``2.1 B`` / ``350.0 M`` / ``12.0 k``."""
    f = number(v)
    if f is None:
        return DASH
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(f) >= div:
            return f"{f / div:.1f} {unit}"
    return f"{f:.0f}"


def symbol(pair: str) -> str:
    """``BTCUSDT`` → ``BTC/USDT`` (a name whose quote is not recognised is shown as it is)."""
    if "/" in pair:
        return pair
    try:
        return folder_to_pair(pair)
    except ConfigError:
        return pair


def folder(pair: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT`` (a name that is not a pair is shown upper-cased without ``/``)."""
    try:
        return pair_to_folder(pair)
    except ConfigError:
        return pair.replace("/", "").upper()


def slug(*parts: Any) -> str:
    """An HTML id / file name made of `parts`: ``BTCUSDT_1m_ema_cross`` (at most 80 characters)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "_".join(str(p) for p in parts)).strip("-")[:80] or "x"


def cell_text(key: str, v: Any) -> str:
    """Format one value of a later-stage table: ``*_ms`` integers as times, floats with 2 or 4
    decimals, the rest as text (at most 120 characters)."""
    if key.endswith("_ms") and isinstance(v, int) and not isinstance(v, bool):
        return format_ms(v)
    if isinstance(v, float):
        return fmt_num(v, 2 if abs(v) >= 1 else 4)
    return fmt_value(v)[:120]
