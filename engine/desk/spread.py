"""Spreads for ranking pairs: measured from top-of-book snapshots, or estimated from candles (labelled so).

**Measured.** The percentage spread of one snapshot is ``(ask − bid) / mid × 100`` with
``mid = (bid + ask) / 2``. :func:`measured_spreads` takes, per symbol, the snapshots of the last
``window_s`` seconds (a sliding window ending at `now_ms`, default the newest snapshot) and reports
their median spread, the median top-of-book size ``min(bid_size, ask_size)`` (base units) and the
median quote band ``min(bid × bid_size, ask × ask_size)`` (quote currency, taken as USD for USD
stablecoin quotes), with the liquidity filters applied.

**Estimated.** Where no snapshots exist (offline, a pair without recordings), two published
high–low estimators give the spread from OHLC candles; every result says ``source="estimate …"``:

- Corwin & Schultz (2012), "A Simple Way to Estimate Bid-Ask Spreads from Daily High and Low
  Prices", Journal of Finance 67(2), eq. (14), (18)–(20): per pair of consecutive bars
  ``β = Σ_{j=0,1} ln(H_{t+j}/L_{t+j})²``, ``γ = ln(max(H_t, H_{t+1}) / min(L_t, L_{t+1}))²``,
  ``α = (√(2β) − √β)/(3 − 2√2) − √(γ/(3 − 2√2))``, ``S = 2(e^α − 1)/(1 + e^α)``; negative two-bar
  estimates are set to 0 before averaging (their §II.C). The overnight adjustment of the paper is
  not applied: crypto trades around the clock, consecutive candles have no close-to-open gap.
- Abdi & Ranaldo (2017), "A Simple Estimation of Bid-Ask Spreads from Daily Close, High, and Low
  Prices", Review of Financial Studies 30(12), eq. (9) in its two-day form: with the mid-range
  ``η_t = (ln H_t + ln L_t)/2`` and ``c_t = ln C_t``, ``S_t = √max(4 (c_t − η_t)(c_t − η_{t+1}), 0)``,
  averaged over t.

Both return a fraction of price; the functions here return percent. Both are biased upward by
volatility within a bar (Corwin & Schultz §III): compare estimates with estimates, never with a
measured spread, and prefer short bars.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from engine.errors import ConfigError, DataError

SNAPSHOT_COLUMNS = ("timestamp_ms", "symbol", "bid", "ask", "bid_size", "ask_size")
SAMPLE_ORDERBOOK_DIR = Path(__file__).resolve().parents[1] / "sample" / "orderbook"
ESTIMATORS = ("corwin_schultz", "abdi_ranaldo")
ESTIMATOR_LABELS = {"corwin_schultz": "estimate (Corwin-Schultz 2012, from candles)",
                    "abdi_ranaldo": "estimate (Abdi-Ranaldo 2017, from candles)"}
MEASURED = "measured (order-book snapshots)"


def read_snapshots(path: Path | str) -> pd.DataFrame:
    """Read a top-of-book CSV (``timestamp_ms,symbol,bid,ask,bid_size,ask_size``; gzip allowed).

    Returns
    -------
    DataFrame
        Columns :data:`SNAPSHOT_COLUMNS`: int64 ms, str, float64 prices (quote) and sizes (base).

    Raises
    ------
    DataError
        Missing file or columns, a row with a non-positive or crossed quote (bid ≥ ask), or
        timestamps going back — naming the file and the row (1-based, header = row 1).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            frame = pd.read_csv(fh, dtype={"symbol": str})
    except FileNotFoundError:
        raise DataError(f"{path}: no such snapshot file") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: not a snapshot CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in SNAPSHOT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(SNAPSHOT_COLUMNS)}")
    frame = frame[list(SNAPSHOT_COLUMNS)]
    for col in SNAPSHOT_COLUMNS[2:]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    bad = ~(np.isfinite(frame[list(SNAPSHOT_COLUMNS[2:])]).all(axis=1) & (frame["bid"] > 0) & (frame["bid_size"] > 0)
            & (frame["ask_size"] > 0) & (frame["ask"] > frame["bid"]))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        r = {k: float(frame[k].iloc[i]) for k in SNAPSHOT_COLUMNS[2:]}
        raise DataError(f"{path} row {i + 2}: bid {r['bid']!r}, ask {r['ask']!r}, sizes {r['bid_size']!r}/{r['ask_size']!r}: "
                        "expected positive numbers with bid < ask")
    ts = pd.to_numeric(frame["timestamp_ms"], errors="coerce")
    if ts.isna().any() or (ts.diff().fillna(0) < 0).any():
        i = int(np.flatnonzero((ts.isna() | (ts.diff().fillna(0) < 0)).to_numpy())[0])
        raise DataError(f"{path} row {i + 2}: timestamp_ms {frame['timestamp_ms'].iloc[i]!r}: expected integer ms, "
                        "not before the previous row")
    frame["timestamp_ms"] = ts.astype("int64")
    return frame.reset_index(drop=True)


def sample_snapshot_files() -> list[Path]:
    """The bundled recordings (``engine/sample/orderbook/*.csv.gz``, see its PROVENANCE.md)."""
    return sorted(SAMPLE_ORDERBOOK_DIR.glob("*.csv.gz"))


def spread_pct(bid: np.ndarray | float, ask: np.ndarray | float) -> np.ndarray | float:
    """``(ask − bid) / mid × 100``, percent of the mid price."""
    return (np.asarray(ask) - np.asarray(bid)) / ((np.asarray(ask) + np.asarray(bid)) / 2.0) * 100.0


@dataclass(frozen=True)
class SpreadStat:
    """One symbol's spread for ranking.

    Attributes
    ----------
    symbol : str
        ``BTCUSDT``.
    spread_pct : float
        Median quoted spread over the window (measured) or the estimator's average (estimate), percent.
    source : str
        :data:`MEASURED` or one of :data:`ESTIMATOR_LABELS` — shown wherever the number appears.
    n : int
        Snapshots in the window, or candle pairs of the estimate.
    span_s : float
        Seconds the window's snapshots cover (or the candles), for the record.
    top_size_base, quote_band_quote : float or None
        Median ``min(bid_size, ask_size)`` (base) and ``min(bid × bid_size, ask × ask_size)`` (quote);
        None for estimates (candles have no book).
    reasons : tuple of str
        Why a liquidity filter left it out (empty: it passed).
    """

    symbol: str
    spread_pct: float
    source: str
    n: int
    span_s: float
    top_size_base: float | None = None
    quote_band_quote: float | None = None
    reasons: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.reasons and math.isfinite(self.spread_pct)

    @property
    def is_estimate(self) -> bool:
        return self.source != MEASURED

    def to_json(self) -> dict:
        return {"symbol": self.symbol, "spread_pct": self.spread_pct, "source": self.source, "n": self.n,
                "span_s": self.span_s, "top_size_base": self.top_size_base, "quote_band_quote": self.quote_band_quote,
                "passed": self.passed, "reasons": list(self.reasons)}


def _check_positive(name: str, value: float, *, zero_ok: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{name} = {value!r}: expected a number {'≥' if zero_ok else '>'} 0")
    return float(value)


def measured_spreads(snapshots: pd.DataFrame, *, window_s: float = 60.0, now_ms: int | None = None,
                     min_top_size: float = 0.0, min_quote_band_usd: float = 0.0) -> list[SpreadStat]:
    """Median quoted spread per symbol over the window ``(now − window_s, now]``, with the filters.

    Parameters
    ----------
    snapshots : DataFrame
        :data:`SNAPSHOT_COLUMNS` (:func:`read_snapshots`, or snapshots collected online).
    window_s : float
        Sliding window, seconds (> 0; the seed's default 60).
    now_ms : int, optional
        End of the window (epoch ms); default the newest snapshot.
    min_top_size : float
        Least median ``min(bid_size, ask_size)``, base units (0 = no filter).
    min_quote_band_usd : float
        Least median ``min(bid × bid_size, ask × ask_size)``, quote currency (0 = no filter).

    Returns
    -------
    list of SpreadStat
        One per symbol with a snapshot in the window, in symbol order.

    Raises
    ------
    ConfigError
        A window, filter or time that is not a number ≥ 0 (window > 0).
    """
    window_ms = _check_positive("spread_window_s", window_s, zero_ok=False) * 1000.0
    min_top_size = _check_positive("min_top_size", min_top_size)
    min_band = _check_positive("min_quote_band_usd", min_quote_band_usd)
    if snapshots.empty:
        return []
    end = int(snapshots["timestamp_ms"].max()) if now_ms is None else int(now_ms)
    inside = snapshots[(snapshots["timestamp_ms"] > end - window_ms) & (snapshots["timestamp_ms"] <= end)]
    out = []
    for symbol, g in inside.groupby("symbol", sort=True):
        bid, ask = g["bid"].to_numpy(), g["ask"].to_numpy()
        size = float(np.median(np.minimum(g["bid_size"].to_numpy(), g["ask_size"].to_numpy())))
        band = float(np.median(np.minimum(bid * g["bid_size"].to_numpy(), ask * g["ask_size"].to_numpy())))
        reasons = []
        if size < min_top_size:
            reasons.append(f"top-of-book size {size:.6g} < min_top_size {min_top_size:g} (base)")
        if band < min_band:
            reasons.append(f"quote band {band:.2f} < min_quote_band_usd {min_band:g}")
        ts = g["timestamp_ms"].to_numpy()
        out.append(SpreadStat(str(symbol), float(np.median(spread_pct(bid, ask))), MEASURED, len(g),
                              (int(ts[-1]) - int(ts[0])) / 1000.0, size, band, tuple(reasons)))
    return out


def corwin_schultz_pct(high: np.ndarray, low: np.ndarray) -> float:
    """Corwin–Schultz (2012) spread estimate over consecutive bars, percent (NaN with < 2 bars).

    Parameters
    ----------
    high, low : float arrays, shape (n,)
        Highs and lows of consecutive bars (quote per base unit, > 0).
    """
    h, lo = np.asarray(high, dtype=np.float64), np.asarray(low, dtype=np.float64)
    if h.shape != lo.shape or h.ndim != 1:
        raise DataError(f"high/low: shapes {h.shape} and {lo.shape}, expected two arrays of one length")
    if len(h) < 2:
        return math.nan
    if not (np.all(lo > 0) and np.all(h >= lo)):
        raise DataError("high/low: expected prices > 0 with high ≥ low")
    hl = np.log(h / lo) ** 2
    beta = hl[:-1] + hl[1:]
    gamma = np.log(np.maximum(h[:-1], h[1:]) / np.minimum(lo[:-1], lo[1:])) ** 2
    k = 3.0 - 2.0 * math.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    s = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    return float(np.mean(np.maximum(s, 0.0)) * 100.0)


def abdi_ranaldo_pct(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> float:
    """Abdi–Ranaldo (2017) two-bar spread estimate, averaged, percent (NaN with < 2 bars)."""
    h, lo, c = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    if not (h.shape == lo.shape == c.shape) or h.ndim != 1:
        raise DataError(f"high/low/close: shapes {h.shape}, {lo.shape}, {c.shape}, expected three arrays of one length")
    if len(h) < 2:
        return math.nan
    if not (np.all(lo > 0) and np.all(h >= lo)):
        raise DataError("high/low/close: expected prices > 0 with high ≥ low")
    eta = (np.log(h) + np.log(lo)) / 2.0
    lc = np.log(c)
    s2 = 4.0 * (lc[:-1] - eta[:-1]) * (lc[:-1] - eta[1:])
    return float(np.mean(np.sqrt(np.maximum(s2, 0.0))) * 100.0)


def estimated_spreads(candles: Mapping[str, pd.DataFrame], *, method: str = "corwin_schultz",
                      bars: int = 1440) -> list[SpreadStat]:
    """Estimate each pair's spread from its last `bars` candles (labelled as an estimate).

    Parameters
    ----------
    candles : mapping
        ``BTCUSDT`` → OHLCV frame (DESIGN.md shape).
    method : {"corwin_schultz", "abdi_ranaldo"}
    bars : int
        Candles used (the newest), ≥ 2.
    """
    if method not in ESTIMATORS:
        raise ConfigError(f"estimator {method!r}: expected one of {', '.join(ESTIMATORS)}")
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 2:
        raise ConfigError(f"bars = {bars!r}: expected an integer ≥ 2")
    out = []
    for symbol in sorted(candles):
        c = candles[symbol].iloc[-bars:]
        if method == "corwin_schultz":
            value = corwin_schultz_pct(c["high"].to_numpy(), c["low"].to_numpy())
        else:
            value = abdi_ranaldo_pct(c["high"].to_numpy(), c["low"].to_numpy(), c["close"].to_numpy())
        span = (c.index[-1] - c.index[0]).total_seconds() if len(c) > 1 else 0.0
        out.append(SpreadStat(symbol, value, ESTIMATOR_LABELS[method], max(len(c) - 1, 0), span))
    return out


def rank(stats: Iterable[SpreadStat], top: int) -> list[SpreadStat]:
    """The `top` symbols that passed the filters, lowest spread first.

    Ties (equal spreads) go to the deeper book (larger quote band), then to the symbol name, so the
    order never depends on input order.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"--top {top!r}: expected an integer ≥ 1")
    ok = [s for s in stats if s.passed]
    ok.sort(key=lambda s: (s.spread_pct, -(s.quote_band_quote or 0.0), s.symbol))
    return ok[:top]
