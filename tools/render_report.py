"""Render the SCALP dashboard from the files the maintainer stored.

The renderer only reads stored files and formats them; it never recomputes a metric
(STYLE.md §13). Inputs (shapes in /work/notes/contracts.md, Part C):

========================================  ==================================================
``reports_dir/status.json``               header (mode, clock, cycle), state grid, gaps, errors
``reports_dir/summary.json``              summary table, IS vs OOS side by side
``reports_dir/watchlist.json``            watchlist table
``strategies_path`` (strategies.yml)      promoted strategy cards
``reports_dir/curves/<P>_<TF>_<E>.json``  equity curve + drawdown, trades (entries / exits)
``data_dir/ohlcv/<PAIR>/<TF>.csv``        last :data:`RECENT_CANDLES` candles for the candlestick
``logs_dir/maintainer.log``               last :data:`LOG_TAIL_LINES` lines
``reports_dir/dryrun_plans.json`` …       later stages (:data:`OPTIONAL_SECTIONS`), shown if present
========================================  ==================================================

A missing or unreadable file hides its section (or shows "not yet"); the problem is listed on the
page and logged as a WARNING. Rendering never raises because of an input file.

Outputs, all in ``runtime.public_dir`` (the only folder the HTTP server serves):

- ``dashboard.html``: the page (CSS and JS inline), < 300 KB on bundled-sample-sized inputs;
- ``plotly-<version>.min.js``: plotly.js from the installed plotly package (offline), written once;
  its versioned name lets the browser cache it for a year;
- ``charts/<PAIR>_<TF>_<ENTRYSET>.<hash>.json``: chart data per promoted strategy, loaded when the
  card scrolls into view; content-hashed names, so they are cached too;
- ``version.json``: ``{"version", "generated_at_ms"}``, polled by the open page, which reloads itself
  (keeping its scroll position, sort and filter) when a new render lands.

Charts are downsampled for display (at most :data:`MAX_CURVE_POINTS` points, keeping each bucket's
minimum and maximum equity and deepest drawdown); the metrics shown are the stored ones.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import html
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if __name__ == "__main__" and __package__ in (None, ""):  # `python tools/render_report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

logger = logging.getLogger(__name__)

#: Default repository root (this file lives in <repo>/tools/).
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: Candles shown in each candlestick chart (read from the tail of data_dir/ohlcv/<PAIR>/<TF>.csv).
RECENT_CANDLES = 200
#: Maximum points per equity/drawdown series sent to the browser (display only).
MAX_CURVE_POINTS = 400
#: Lines of logs_dir/maintainer.log shown.
LOG_TAIL_LINES = 80
#: Rows of a later-stage table shown.
MAX_OPTIONAL_ROWS = 50
#: Seconds between two polls of version.json by the open page.
POLL_INTERVAL_S = 15
#: Later-stage files in reports_dir: (file name, section title). Shown only when present.
OPTIONAL_SECTIONS: tuple[tuple[str, str], ...] = (
    ("dryrun_plans.json", "Dry-run plans"),
    ("paper_pnl.json", "Paper PnL"),
    ("testnet_budget.json", "Testnet budget"),
)
STATE_CODES: tuple[tuple[str, str], ...] = (
    ("OK", "fresh candles and a promoted, unexpired strategy"),
    ("DAT", "fresh candles, no promoted strategy"),
    ("OLD", "last candle older than age_mult × timeframe"),
    ("MIS", "no candle file"),
)
#: Summary-table metrics: (key in in_sample / out_of_sample, column label with unit, decimals).
TABLE_METRICS: tuple[tuple[str, str, int], ...] = (
    ("total_return_pct", "Return [%]", 2),
    ("profit_factor", "Profit factor", 2),
    ("sharpe", "Sharpe (ann.)", 2),
    ("max_drawdown_pct", "Max DD [%]", 2),
    ("n_trades", "Trades", 0),
    ("win_rate_pct", "Win rate [%]", 1),
)
#: Card metrics (out-of-sample headline, in-sample beside it).
CARD_METRICS: tuple[tuple[str, str, int], ...] = TABLE_METRICS + (
    ("expectancy_pct", "Expectancy [%/trade]", 3),
    ("exposure_pct", "Exposure [%]", 1),
)
#: Metrics where a smaller value is better (the table sorts them ascending on the first tap).
_LOWER_IS_BETTER = frozenset({"max_drawdown_pct"})
_TF_ORDER = {"1m": 0, "5m": 1, "15m": 2, "1h": 3, "4h": 4, "1d": 5}


# --------------------------------------------------------------------------------------------
# small readers: each returns a value or None, and records what went wrong
# --------------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """Everything the page shows, as read from disk (None = file missing or unreadable)."""

    status: dict | None = None
    summary: dict | None = None
    watchlist: dict | None = None
    strategies: list[dict] = field(default_factory=list)
    log_tail: list[str] | None = None
    optional: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _read_json(path: Path, inputs: Inputs, *, expect: type = dict) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        inputs.missing.append(path.name)
        return None
    except OSError as e:
        inputs.problems.append(f"{path.name}: cannot read ({e.strerror or e})")
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        inputs.problems.append(f"{path.name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
        return None
    if not isinstance(data, expect):
        inputs.problems.append(f"{path.name}: expected a JSON {expect.__name__}, found {type(data).__name__}")
        return None
    return data


def _read_strategies(path: Path, inputs: Inputs) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        inputs.missing.append(path.name)
        return []
    except OSError as e:
        inputs.problems.append(f"{path.name}: cannot read ({e.strerror or e})")
        return []
    try:
        import yaml

        data = yaml.safe_load(text)
    except Exception as e:  # yaml.YAMLError and friends: shown on the page, never raised
        inputs.problems.append(f"{path.name}: not valid YAML ({str(e).splitlines()[0]})")
        return []
    if data is None:
        return []
    items = data.get("strategies") if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        inputs.problems.append(f"{path.name} → strategies: expected a list, found {type(items).__name__}")
        return []
    good = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("pair") and item.get("timeframe"):
            good.append(item)
        else:
            inputs.problems.append(f"{path.name} → strategies[{i}]: expected a mapping with pair and timeframe")
    return good


def tail_lines(path: str | os.PathLike[str], n: int = LOG_TAIL_LINES, *, max_bytes: int = 256 * 1024) -> list[str]:
    """Return the last `n` lines of a text file, reading at most `max_bytes` from its end.

    Parameters
    ----------
    path : path-like
        Text file (UTF-8; undecodable bytes are replaced).
    n : int
        Number of lines wanted.
    max_bytes : int
        Upper bound on bytes read.

    Returns
    -------
    list of str
        Up to `n` lines without their line endings, oldest first.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        start = max(0, end - max_bytes)
        block = 8192
        pos = end
        data = b""
        while pos > start and data.count(b"\n") <= n:
            step = min(block, pos - start)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            block *= 2
    lines = data.decode("utf-8", errors="replace").splitlines()
    if pos > 0 and lines:
        lines = lines[1:]  # first line may be cut
    return lines[-n:]


def read_recent_candles(path: str | os.PathLike[str], n: int = RECENT_CANDLES) -> dict[str, list] | None:
    """Return the last `n` candles of a candle CSV as columns, or None when there are none.

    Parameters
    ----------
    path : path-like
        ``data_dir/ohlcv/<PAIR>/<TF>.csv`` with header ``timestamp,open,high,low,close,volume``
        (timestamp = open time in integer ms UTC).
    n : int
        Number of candles wanted.

    Returns
    -------
    dict or None
        ``{"t": [ms...], "o": [...], "h": [...], "l": [...], "c": [...]}``, ascending, up to `n`
        rows; rows that do not parse are skipped (the datastore reports them, not the dashboard).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    """
    lines = tail_lines(path, n + 1, max_bytes=max(64 * 1024, (n + 2) * 200))
    cols: dict[str, list] = {"t": [], "o": [], "h": [], "l": [], "c": []}
    for line in lines:
        parts = line.split(",")
        if len(parts) < 5:
            continue
        try:
            t = int(float(parts[0]))
            o, h, lo, c = (float(x) for x in parts[1:5])
        except ValueError:
            continue  # header or a bad row
        if not all(math.isfinite(v) for v in (o, h, lo, c)):
            continue
        cols["t"].append(t)
        cols["o"].append(_sig(o))
        cols["h"].append(_sig(h))
        cols["l"].append(_sig(lo))
        cols["c"].append(_sig(c))
    if not cols["t"]:
        return None
    for k in cols:
        cols[k] = cols[k][-n:]
    return cols


# --------------------------------------------------------------------------------------------
# formatting helpers (jinja filters)
# --------------------------------------------------------------------------------------------
def _sig(v: float, digits: int = 7) -> float:
    return float(f"{v:.{digits}g}")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def fmt_num(v: Any, decimals: int = 2) -> str:
    """Format a stored number for display: fixed decimals, ``—`` when missing or undefined."""
    f = _num(v)
    if f is None:
        return "—"
    if decimals == 0:
        return f"{f:.0f}"
    return f"{f:.{decimals}f}"


def to_ms(value: Any) -> int | None:
    """Convert a stored time to epoch milliseconds UTC.

    Accepts integer/float epoch ms (or epoch seconds when below 1e11), numeric strings, and ISO
    8601 strings (``2021-05-02T23:59:00Z``; naive means UTC). Anything else → None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, dt.datetime):
        d = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int(d.timestamp() * 1000)
    if isinstance(value, dt.date):
        return to_ms(dt.datetime(value.year, value.month, value.day))
    f = _num(value)
    if f is not None:
        return int(f if abs(f) >= 1e11 else f * 1000)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return to_ms(d)
    return None


def fmt_ms(value: Any, *, seconds: bool = False) -> str:
    """Format a time as ``2021-05-02 23:59 UTC`` (``—`` when missing)."""
    ms = to_ms(value)
    if ms is None:
        return "—"
    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _fmt_short(ms: int | None, now_ms: int) -> str:
    """``12:02 UTC`` when `ms` falls on the same UTC day as `now_ms`, else the full date."""
    if ms is None:
        return "—"
    if ms // 86_400_000 == now_ms // 86_400_000:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%H:%M UTC")
    return fmt_ms(ms)


def fmt_duration(seconds: Any) -> str:
    """Format a duration in seconds as ``42 s``, ``3 min 20 s`` or ``2 h 05 min``."""
    s = _num(seconds)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_relative(ms: int | None, now_ms: int) -> str:
    """Format `ms` relative to `now_ms`: ``in 4 h 10 min`` / ``12 min ago`` (``—`` when None)."""
    if ms is None:
        return "—"
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


def fmt_params(params: Any) -> str:
    """Format entry-signal parameters as ``fast 9 · slow 21``."""
    if not isinstance(params, Mapping) or not params:
        return "—" if not params else str(params)
    return " · ".join(f"{k} {fmt_value(v)}" for k, v in params.items())


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {fmt_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "—"
    return str(v)


def fmt_exit_plan(plan: Any) -> str:
    """Format an exit plan (ExitPlan.to_dict()) in one line: ``TP 0.9%×50 1.4%×50 · SL -0.5% · …``."""
    if not isinstance(plan, Mapping) or not plan:
        return "—"
    out = []
    ladder = plan.get("tp_ladder")
    if ladder:
        try:
            out.append("TP " + " ".join(f"{float(p):g}%×{float(a):g}" for p, a in ladder))
        except (TypeError, ValueError):
            out.append(f"TP {fmt_value(ladder)}")
    if plan.get("sl_pct") is not None:
        out.append(f"SL {fmt_value(plan['sl_pct'])}%")
    if plan.get("sl_atr_mult") is not None:
        out.append(f"SL {fmt_value(plan['sl_atr_mult'])}×ATR")
    if plan.get("breakeven"):
        out.append("breakeven")
    if plan.get("trail_pct") is not None:
        out.append(f"trail {fmt_value(plan['trail_pct'])}%")
    if plan.get("trail_atr_mult") is not None:
        out.append(f"trail {fmt_value(plan['trail_atr_mult'])}×ATR")
    if plan.get("max_hold_bars") is not None:
        out.append(f"max hold {fmt_value(plan['max_hold_bars'])} bars")
    known = {"tp_ladder", "sl_pct", "sl_atr_mult", "breakeven", "trail_pct", "trail_atr_mult",
             "max_hold_bars", "atr_period", "breakeven_offset_pct", "use_exit_signal",
             "check_entry_bar", "lot_size_base"}
    if not out:
        out = [f"{k} {fmt_value(v)}" for k, v in plan.items() if k not in known] or ["signal exit only"]
    return " · ".join(out)


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _folder(pair: Any) -> str:
    return str(pair or "").replace("/", "").upper()


def _symbol(pair: Any) -> str:
    p = str(pair or "")
    if "/" in p:
        return p
    try:
        from engine.markets import folder_to_pair

        return folder_to_pair(p)
    except Exception:  # unknown quote: show the folder name
        return p


def _slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "_".join(str(p) for p in parts)).strip("-")[:80] or "x"


# --------------------------------------------------------------------------------------------
# chart data
# --------------------------------------------------------------------------------------------
def downsample_curve(ts: list, equity: list, drawdown: list | None, max_points: int = MAX_CURVE_POINTS
                     ) -> tuple[list[int], list[float], list[float] | None]:
    """Reduce an equity curve for display, keeping each bucket's extremes.

    Parameters
    ----------
    ts : list of int, length n
        Bar-close times in epoch ms.
    equity : list of float, length n
        Equity in quote currency.
    drawdown : list of float or None, length n
        Drawdown in percent (sign as stored; shown as a negative area).
    max_points : int
        Upper bound on returned points.

    Returns
    -------
    (ts, equity, drawdown)
        At most `max_points` points: per bucket the bars of minimum and maximum equity (in time
        order), drawdown taken as the deepest in the bucket; first and last bar always kept.
        Non-finite values are dropped.
    """
    n = min(len(ts), len(equity), len(drawdown) if drawdown is not None else len(ts))
    keep = [i for i in range(n) if _num(ts[i]) is not None and _num(equity[i]) is not None]
    tms = [int(_num(ts[i])) for i in keep]
    eq = [float(equity[i]) for i in keep]
    dd = [abs(_num(drawdown[i]) or 0.0) for i in keep] if drawdown is not None else None
    m = len(tms)
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
            if dd is not None:
                worst = max(dd[lo:hi])
                dd_out.extend([worst] * len(picks))
    t_out = [tms[i] for i in idx]
    e_out = [round(eq[i], 2) for i in idx]
    if dd is not None:
        d_src = dd_out if m > max_points else dd
        d_out = [round(-abs(v), 3) for v in d_src]
    else:
        d_out = None
    return t_out, e_out, d_out


def _curve_path(strategy: Mapping, reports_dir: Path, repo_root: Path) -> Path:
    ref = strategy.get("curve")
    if isinstance(ref, str) and ref:
        p = Path(ref)
        cands = [p] if p.is_absolute() else [reports_dir / p, reports_dir / "curves" / p, repo_root / p]
        for c in cands:
            if c.is_file():
                return c
        return cands[0]
    name = f"{_folder(strategy.get('pair'))}_{strategy.get('timeframe')}_{strategy.get('entry_set')}.json"
    return reports_dir / "curves" / name


def build_chart_payload(strategy: Mapping, reports_dir: Path, data_dir: Path | None, repo_root: Path,
                        inputs: Inputs) -> tuple[dict | None, list[str]]:
    """Build the chart data of one promoted strategy (equity + drawdown, recent candles + trades).

    Returns
    -------
    (payload, notes)
        payload is ``{"equity": {"t","e","d"} | None, "candles": {"t","o","h","l","c"} | None,
        "entries": {"t","p","txt"}, "exits": {"t","p","txt"}, "n_trades_window": int}`` or None when
        there is nothing to draw; notes are short human-readable reasons for what is missing.
    """
    notes: list[str] = []
    curve_file = _curve_path(strategy, reports_dir, repo_root)
    curve = None
    if curve_file.is_file():
        sub = Inputs()
        curve = _read_json(curve_file, sub)
        inputs.problems.extend(sub.problems)
        if curve is None:
            notes.append("curve file unreadable")
    else:
        notes.append("no equity curve stored yet")
    equity = None
    trades: list = []
    if curve:
        ts, eq, dd = curve.get("timestamps_ms"), curve.get("equity_quote"), curve.get("drawdown_pct")
        if isinstance(ts, list) and isinstance(eq, list) and ts and eq:
            t, e, d = downsample_curve(ts, eq, dd if isinstance(dd, list) else None)
            if t:
                equity = {"t": t, "e": e, "d": d}
        if equity is None:
            notes.append("equity curve empty")
        trades = curve.get("trades") if isinstance(curve.get("trades"), list) else []
    candles = None
    if data_dir is not None:
        cpath = Path(data_dir) / "ohlcv" / _folder(strategy.get("pair")) / f"{strategy.get('timeframe')}.csv"
        try:
            candles = read_recent_candles(cpath)
        except FileNotFoundError:
            notes.append("no candle file")
        except OSError as e:
            notes.append(f"candle file unreadable ({e.strerror or e})")
        if candles is None and cpath.exists():
            notes.append("candle file holds no candles")
    entries = {"t": [], "p": [], "txt": []}
    exits = {"t": [], "p": [], "txt": []}
    if candles:
        first, last = candles["t"][0], candles["t"][-1]
        for tr in trades:
            if not isinstance(tr, Mapping):
                continue
            em, ep = to_ms(tr.get("entry_ms")), _num(tr.get("entry_price"))
            xm, xp = to_ms(tr.get("exit_ms")), _num(tr.get("exit_price"))
            if em is not None and ep is not None and first <= em <= last:
                entries["t"].append(em)
                entries["p"].append(_sig(ep))
                entries["txt"].append(f"entry {_sig(ep)}")
            if xm is not None and xp is not None and first <= xm <= last:
                pnl = _num(tr.get("pnl_quote"))
                reason = str(tr.get("reason") or "exit")
                exits["t"].append(xm)
                exits["p"].append(_sig(xp))
                exits["txt"].append(f"{reason} {_sig(xp)}" + (f" · PnL {pnl:+.2f}" if pnl is not None else ""))
    if equity is None and candles is None:
        return None, notes
    return {"equity": equity, "candles": candles, "entries": entries, "exits": exits,
            "n_trades_window": len(entries["t"]), "n_trades_total": len(trades)}, notes


# --------------------------------------------------------------------------------------------
# page model
# --------------------------------------------------------------------------------------------
def load_inputs(runtime: Any, strategies_path: Path) -> Inputs:
    """Read every dashboard input of `runtime` (see the module docstring); never raises for a file."""
    inputs = Inputs()
    reports = Path(runtime.reports_dir)
    inputs.status = _read_json(reports / "status.json", inputs)
    inputs.summary = _read_json(reports / "summary.json", inputs)
    inputs.watchlist = _read_json(reports / "watchlist.json", inputs)
    inputs.strategies = _read_strategies(Path(strategies_path), inputs)
    log_path = Path(runtime.logs_dir) / "maintainer.log"
    try:
        inputs.log_tail = tail_lines(log_path)
    except FileNotFoundError:
        inputs.missing.append(log_path.name)
    except OSError as e:
        inputs.problems.append(f"{log_path.name}: cannot read ({e.strerror or e})")
    for name, title in OPTIONAL_SECTIONS:
        p = reports / name
        if p.exists():
            data = _read_json(p, inputs, expect=object)
            if data is not None:
                inputs.optional.append((name, title, data))
    return inputs


def _metric_cells(metrics: Any) -> dict[str, Any]:
    return metrics if isinstance(metrics, Mapping) else {}


def _table_from_json(data: Any) -> dict:
    """Turn a later-stage JSON file into {"kv": [(k, v)], "columns": [...], "rows": [[...]], "more": n}."""
    kv, rows_src = [], None
    if isinstance(data, list):
        rows_src = data
    elif isinstance(data, Mapping):
        for k, v in data.items():
            if isinstance(v, list) and rows_src is None and all(isinstance(x, Mapping) for x in v):
                rows_src = v
            elif not isinstance(v, (list, Mapping)):
                kv.append((str(k), _cell_text(k, v)))
            else:
                kv.append((str(k), fmt_value(v)[:200]))
    columns: list[str] = []
    rows: list[list[str]] = []
    more = 0
    if rows_src:
        for r in rows_src:
            if isinstance(r, Mapping):
                for k in r:
                    if k not in columns and len(columns) < 12:
                        columns.append(str(k))
        for r in rows_src[:MAX_OPTIONAL_ROWS]:
            if isinstance(r, Mapping):
                rows.append([_cell_text(c, r.get(c)) for c in columns])
        more = max(0, len(rows_src) - MAX_OPTIONAL_ROWS)
    return {"kv": kv, "columns": columns, "rows": rows, "more": more}


def _cell_text(key: Any, v: Any) -> str:
    k = str(key)
    if k.endswith("_ms") and to_ms(v) is not None:
        return fmt_ms(v)
    if isinstance(v, float):
        return fmt_num(v, 2 if abs(v) >= 1 else 4)
    return fmt_value(v)[:120]


def build_page(runtime: Any, inputs: Inputs, *, repo_root: Path, now_ms: int) -> dict:
    """Turn read inputs into the template context (plain dicts and strings)."""
    status = inputs.status or {}
    summary = inputs.summary or {}
    clock = status.get("clock") if isinstance(status.get("clock"), Mapping) else (
        summary.get("clock") if isinstance(summary.get("clock"), Mapping) else {})
    cycle = status.get("cycle") if isinstance(status.get("cycle"), Mapping) else {}
    source = status.get("data_source") or summary.get("data_source")
    if source is None:
        mode, mode_class = "waiting for the first cycle", "mode-none"
    elif str(source).lower() in ("offline sample", "sample", "offline"):
        mode, mode_class = "offline sample", "mode-offline"
    else:
        mode, mode_class = f"live data · {source}", "mode-live"
    clock_kind = clock.get("kind")
    header = {
        "mode": mode, "mode_class": mode_class,
        "clock_kind": {"replay": "replay clock", "wall": "wall clock"}.get(clock_kind, clock_kind or "clock"),
        "clock_label": clock.get("label") or (fmt_ms(clock.get("now_ms")) if clock.get("now_ms") else "not yet"),
        "clock_now": fmt_ms(clock.get("now_ms")),
        "last_ms": to_ms(cycle.get("finished_at_ms") or cycle.get("started_at_ms")),
        "next_ms": to_ms(cycle.get("next_run_ms")),
        "duration": fmt_duration(cycle.get("duration_s")),
        "has_cycle": bool(cycle),
    }
    header["last_txt"] = _fmt_short(header["last_ms"], now_ms)
    header["next_txt"] = _fmt_short(header["next_ms"], now_ms)

    # promoted strategies (keys used to mark summary rows)
    promoted_keys = set()
    for s in inputs.strategies:
        promoted_keys.add((_folder(s.get("pair")), str(s.get("timeframe")), str(s.get("entry_set"))))

    # state grid
    grid = None
    states = status.get("states") if isinstance(status.get("states"), list) else None
    if states:
        tfs = [str(t) for t in _list(status.get("timeframes"))]
        pairs = [str(p) for p in _list(status.get("pairs"))]
        cells: dict[tuple[str, str], dict] = {}
        for st in states:
            if not isinstance(st, Mapping):
                continue
            p, tf = str(st.get("pair")), str(st.get("timeframe"))
            if _folder(p) not in [_folder(x) for x in pairs]:
                pairs.append(p)
            if tf not in tfs:
                tfs.append(tf)
            code = str(st.get("state") or "?").upper()
            last = to_ms(st.get("last_candle_ms"))
            detail = f"{_symbol(p)} {tf}: {code}"
            detail += f" · last candle {fmt_ms(last)}" if last else " · no candles stored"
            if st.get("rows") is not None:
                detail += f" · {fmt_value(st.get('rows'))} rows"
            cells[(_folder(p), tf)] = {"code": code if code in dict(STATE_CODES) else "UNK", "label": code,
                                       "detail": detail}
        tfs.sort(key=lambda t: _TF_ORDER.get(t, 99))
        grid_rows = []
        for p in pairs:
            row = []
            for tf in tfs:
                c = cells.get((_folder(p), tf)) or {"code": "UNK", "label": "?",
                                                    "detail": f"{_symbol(p)} {tf}: no state reported"}
                row.append(c)
            grid_rows.append({"pair": _symbol(p), "cells": row})
        counts = {code: sum(1 for c in cells.values() if c["code"] == code) for code, _ in STATE_CODES}
        grid = {"tfs": tfs, "rows": grid_rows, "counts": counts}

    # summary table
    table = None
    rows_src = summary.get("rows") if isinstance(summary.get("rows"), list) else None
    if rows_src is not None:
        rows = []
        for r in rows_src:
            if not isinstance(r, Mapping):
                continue
            key = (_folder(r.get("pair") or r.get("symbol")), str(r.get("timeframe")), str(r.get("entry_set")))
            oos, ins = _metric_cells(r.get("out_of_sample")), _metric_cells(r.get("in_sample"))
            cells_ = []
            for k, _, dec in TABLE_METRICS:
                cells_.append((fmt_num(oos.get(k), dec), fmt_num(ins.get(k), dec)))
            # beside the OOS Sharpe: its deflated Sharpe ratio and how many configurations were tried
            notes = [None] * len(TABLE_METRICS)
            if r.get("n_configs_tried") is not None or r.get("deflated_sharpe") is not None:
                notes[[k for k, _, _ in TABLE_METRICS].index("sharpe")] = (
                    f"DSR {fmt_num(r.get('deflated_sharpe'), 2)} · {r.get('n_configs_tried', '—')} tried")
            rows.append({"pair": _symbol(r.get("symbol") or r.get("pair")), "tf": key[1],
                         "entry_set": key[2], "params": fmt_params(r.get("params")),
                         "promoted": key in promoted_keys, "cells": cells_, "notes": notes})
        rows.sort(key=lambda x: (x["pair"], _TF_ORDER.get(x["tf"], 99), x["entry_set"]))
        table = {"rows": rows, "metrics": [(label, dec, k in _LOWER_IS_BETTER) for k, label, dec in TABLE_METRICS],
                 "tfs": sorted({r["tf"] for r in rows}, key=lambda t: _TF_ORDER.get(t, 99)),
                 "generated": fmt_ms(summary.get("generated_at_ms")), "config_id": summary.get("config_id")}

    # cards: promotion stamps promoted_at / expires_at with the cycle's clock (the replay clock
    # offline), so "expires in" is measured against that clock; only a wall clock ticks on the page
    clock_now_ms = to_ms(clock.get("now_ms"))
    clock_is_wall = clock.get("kind") != "replay"
    ref_ms = now_ms if clock_is_wall or clock_now_ms is None else clock_now_ms
    header["clock_is_wall"] = clock_is_wall
    cards = []
    for s in inputs.strategies:
        oos, ins = _metric_cells(s.get("metrics")), _metric_cells(s.get("in_sample"))
        exp_ms = to_ms(s.get("expires_at")) or to_ms(s.get("expires_at_ms"))  # the ISO time rules
        expired = exp_ms is not None and exp_ms <= ref_ms
        cards.append({
            "id": _slug(_folder(s.get("pair")), s.get("timeframe"), s.get("entry_set")),
            "pair": _symbol(s.get("pair")), "tf": str(s.get("timeframe")),
            "entry_set": str(s.get("entry_set") or "—"), "signal": s.get("signal"),
            "params": fmt_params(s.get("params")), "exit_plan": fmt_exit_plan(s.get("exit_plan")),
            "risk_mode": s.get("risk_mode"),
            "metrics": [(label, fmt_num(oos.get(k), dec), fmt_num(ins.get(k), dec)) for k, label, dec in CARD_METRICS],
            "promoted_txt": fmt_ms(to_ms(s.get("promoted_at_ms")) or s.get("promoted_at")),
            "expires_ms": exp_ms, "expires_txt": fmt_ms(exp_ms), "expired": expired,
            "expires_rel": (("expired " if expired else "expires ") + fmt_relative(exp_ms, ref_ms)
                            + ("" if clock_is_wall else " (replay clock)")) if exp_ms else "no expiry",
            "strategy": s,
        })

    # watchlist
    watch = None
    wl = inputs.watchlist or {}
    if isinstance(wl.get("pairs"), list):
        watch = {"source": wl.get("source"), "rank_by": wl.get("rank_by"),
                 "generated": fmt_ms(wl.get("generated_at_ms")),
                 "rows": [{"rank": i + 1, "pair": _symbol(p.get("symbol") or p.get("pair")),
                           "volume": _fmt_volume(p.get("quote_volume_24h")),
                           "spread": fmt_num(p.get("spread_pct"), 3)}
                          for i, p in enumerate(wl["pairs"]) if isinstance(p, Mapping)]}

    errors = [e for e in _list(status.get("errors")) if isinstance(e, Mapping)] if inputs.status else None
    gaps = [g for g in _list(status.get("gaps")) if isinstance(g, Mapping)] if inputs.status else None
    gap_rows = [{"pair": _symbol(g.get("pair")), "tf": g.get("timeframe"), "from": fmt_ms(g.get("from_ms")),
                 "to": fmt_ms(g.get("to_ms")), "n": fmt_value(g.get("n_missing"))} for g in gaps or []]
    err_rows = [{"pair": _symbol(e.get("pair")) if e.get("pair") else "—", "tf": e.get("timeframe") or "—",
                 "stage": e.get("stage") or "—", "message": str(e.get("message") or "")[:500]} for e in errors or []]

    optional = [{"id": _slug(name.split(".")[0]), "title": title, "file": name, **_table_from_json(data)}
                for name, title, data in inputs.optional]
    return {"header": header, "grid": grid, "legend": STATE_CODES, "table": table, "cards": cards,
            "watch": watch, "gaps": gap_rows if gaps is not None else None,
            "errors": err_rows if errors is not None else None, "log_tail": inputs.log_tail,
            "optional": optional, "problems": inputs.problems,
            "status_missing": inputs.status is None, "summary_missing": inputs.summary is None,
            "strategies_count": len(inputs.strategies)}


def _fmt_volume(v: Any) -> str:
    f = _num(v)
    if f is None:
        return "—"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(f) >= div:
            return f"{f / div:.1f} {unit}"
    return f"{f:.0f}"


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _atomic_write(path: Path, data: bytes) -> None:
    from engine.fileio import atomic_write_bytes

    atomic_write_bytes(path, data, lock=False, mode=0o644)  # the render lock is held; files are served


def plotly_filename() -> str:
    """Return the versioned file name of plotly.js in the public folder (``plotly-7.1.0.min.js``)."""
    import plotly

    return f"plotly-{plotly.__version__}.min.js"


def ensure_plotly_js(public_dir: Path) -> Path:
    """Write plotly.js from the installed plotly package into `public_dir` once; remove old versions.

    Returns
    -------
    Path
        ``public_dir / plotly_filename()``.
    """
    name = plotly_filename()
    path = public_dir / name
    if not path.is_file() or path.stat().st_size < 100_000:
        from plotly.offline import get_plotlyjs

        _atomic_write(path, get_plotlyjs().encode("utf-8"))
        logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    for old in public_dir.glob("plotly-*.min.js"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path


def write_dashboard_urls(urls_dir: str | os.PathLike[str], local_url: str | None,
                         ngrok_url: str | None = None) -> Path:
    """Write ``dashboard_url.txt`` listing the dashboard URLs.

    Parameters
    ----------
    urls_dir : path-like
        Folder of the file: the repo root by default (``runtime.urls_dir``; gitignored there).
    local_url : str or None
        Local URL with the token path (``DashboardServer.url``).
    ngrok_url : str or None
        Public tunnel URL with the token path, when a tunnel is up.

    Returns
    -------
    Path
        The file written (atomically), one ``label: url`` line each::

            local: http://127.0.0.1:8888/<token>/dashboard.html
            ngrok: https://….ngrok-free.app/<token>/dashboard.html
    """
    lines = []
    if local_url:
        lines.append(f"local: {local_url}")
    if ngrok_url:
        lines.append(f"ngrok: {ngrok_url}")
    if not lines:
        lines.append("local: not serving yet")
    path = Path(urls_dir) / "dashboard_url.txt"
    _atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = fmt_num
    env.filters["ms"] = fmt_ms
    return env


_GENERATED_PLACEHOLDER = "\x00GENERATED\x00"
_VERSION_PLACEHOLDER = "\x00VERSION\x00"


def render(runtime: Any, *, strategies_path: str | os.PathLike[str] | None = None,
           repo_root: str | os.PathLike[str] | None = None,
           urls: Mapping[str, str | None] | None = None) -> Path:
    """Render the dashboard into ``runtime.public_dir`` and return the path of dashboard.html.

    Parameters
    ----------
    runtime : RuntimeConfig or any object with ``reports_dir``, ``logs_dir``, ``public_dir``
        (Path-like); ``data_dir`` is used for the candlestick charts when present.
    strategies_path : path-like, optional
        Promoted strategies. Default: ``runtime.strategies_file`` when the runtime has it, else
        engine/config/strategies.yml under `repo_root`.
    repo_root : path-like, optional
        Repository root (default: the one holding this file).
    urls : mapping, optional
        ``{"local": url, "ngrok": url_or_None}``; when given, ``dashboard_url.txt`` is rewritten
        in ``runtime.urls_dir`` (when the runtime has it) or `repo_root` (see
        :func:`write_dashboard_urls`).

    Returns
    -------
    Path
        ``runtime.public_dir / "dashboard.html"``.

    Notes
    -----
    Input files are never a reason to raise: a missing one hides its section, an unreadable one
    is listed under "Report problems" on the page and logged as a WARNING. Concurrent renders
    take a file lock next to the public folder. Writes are atomic (temporary file + os.replace);
    ``version.json`` is written last, so a polling page only reloads onto a complete render.

    Raises
    ------
    OSError
        If the public folder cannot be written.
    """
    import filelock

    t0 = time.perf_counter()
    repo_root = Path(repo_root) if repo_root is not None else REPO_ROOT
    if strategies_path is None:
        strategies_path = getattr(runtime, "strategies_file", None) or repo_root / "engine" / "config" / "strategies.yml"
    strategies_path = Path(strategies_path)
    public = Path(runtime.public_dir)
    public.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(public.parent / f".{public.name}.render.lock"))
    with lock:
        now_ms = int(time.time() * 1000)
        inputs = load_inputs(runtime, strategies_path)
        try:
            page = build_page(runtime, inputs, repo_root=repo_root, now_ms=now_ms)
        except Exception as e:  # a report of a shape nobody expected: show what is left, never crash
            logger.exception("dashboard: cannot use the reports as they are")
            inputs.problems.append(f"reports of an unexpected shape ({type(e).__name__}: {e}); "
                                   "states, strategies and the summary are hidden until the next cycle")
            inputs = Inputs(log_tail=inputs.log_tail, problems=inputs.problems)
            page = build_page(runtime, inputs, repo_root=repo_root, now_ms=now_ms)
        data_dir = getattr(runtime, "data_dir", None)
        charts_dir = public / "charts"
        referenced: set[str] = set()
        for card in page["cards"]:
            payload, notes = build_chart_payload(card["strategy"], Path(runtime.reports_dir),
                                                 Path(data_dir) if data_dir else None, repo_root, inputs)
            card["chart_notes"] = notes
            card["chart_file"] = None
            if payload is not None:
                blob = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
                digest = hashlib.sha256(blob).hexdigest()[:10]
                name = f"{card['id']}.{digest}.json"
                if not (charts_dir / name).is_file():
                    _atomic_write(charts_dir / name, blob)
                referenced.add(name)
                card["chart_file"] = f"charts/{name}"
                card["has_equity"] = payload["equity"] is not None
                card["has_candles"] = payload["candles"] is not None
                card["n_trades_window"] = payload["n_trades_window"]
                card["n_marks"] = len(payload["entries"]["t"]) + len(payload["exits"]["t"])
                card["n_candles"] = len(payload["candles"]["t"]) if payload["candles"] else 0
            del card["strategy"]
        plotly_name = ensure_plotly_js(public).name
        for p in inputs.problems:
            logger.warning("dashboard input: %s", p)
        env = _environment()
        html_text = env.get_template("dashboard.html.j2").render(
            page=page, plotly_js=plotly_name, poll_s=POLL_INTERVAL_S,
            generated=_GENERATED_PLACEHOLDER, version=_VERSION_PLACEHOLDER, now_ms=now_ms,
            page_quote=str(getattr(runtime, "quote", None) or "quote"),
        )
        # the version ignores the render time: identical inputs → same version → no reload
        version = hashlib.sha256(html_text.encode("utf-8")).hexdigest()[:12]
        generated_txt = fmt_ms(now_ms, seconds=True)
        html_text = html_text.replace(_VERSION_PLACEHOLDER, version).replace(
            _GENERATED_PLACEHOLDER, html.escape(generated_txt))
        out = public / "dashboard.html"
        _atomic_write(out, html_text.encode("utf-8"))
        _atomic_write(public / "version.json",
                      json.dumps({"version": version, "generated_at_ms": now_ms}).encode("utf-8"))
        # chart files of earlier renders: kept 10 minutes for pages that have not reloaded yet
        if charts_dir.is_dir():
            for f in charts_dir.glob("*.json"):
                if f.name not in referenced and time.time() - f.stat().st_mtime > 600:
                    f.unlink(missing_ok=True)
    if urls is not None:
        write_dashboard_urls(getattr(runtime, "urls_dir", None) or repo_root, urls.get("local"), urls.get("ngrok"))
    logger.info("rendered %s (%.0f KB, %d summary rows, %d promoted, %d problems) in %.2f s",
                out, out.stat().st_size / 1024, len(page["table"]["rows"]) if page["table"] else 0,
                len(page["cards"]), len(inputs.problems), time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Render the dashboard once from the runtime config; print the path of dashboard.html.

    Exit status 0 on success, 2 on a bad config (one line on stderr), 1 on an unexpected failure.
    """
    parser = argparse.ArgumentParser(
        prog="render_report.py",
        description="Render notebooks/scalp_data/public/dashboard.html from the stored reports.")
    parser.add_argument("--config", type=Path, default=None, help="config.yaml (default: engine/config/config.yaml)")
    parser.add_argument("--strategies", type=Path, default=None,
                        help="promoted strategies file (default: engine/config/strategies.yml)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from engine.errors import EngineError

    try:
        from engine.config import REPO_ROOT as repo_root, load_runtime

        runtime = load_runtime(args.config) if args.config else load_runtime()
        from engine.publish.server import dashboard_url, load_or_create_token, token_path

        out = render(runtime, strategies_path=args.strategies, repo_root=repo_root)
        token = load_or_create_token(token_path(runtime))
        local = dashboard_url(runtime.html_host, runtime.html_port, token)
        urls_dir = Path(getattr(runtime, "urls_dir", None) or repo_root)
        ngrok = None  # keep a tunnel link bot.py wrote: this CLI does not know about tunnels
        try:
            for line in (urls_dir / "dashboard_url.txt").read_text(encoding="utf-8").splitlines():
                if line.startswith("ngrok: "):
                    ngrok = line[len("ngrok: "):].strip() or None
        except OSError:
            pass
        urls_file = write_dashboard_urls(urls_dir, local, ngrok)
    except EngineError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(out)
    print(f"URL (while bot.py serves): see {urls_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
