"""The candle frame contract: columns, index, validation, conversion to and from arrays.

In memory a candle frame has a tz-aware UTC ``DatetimeIndex`` of open times named ``"timestamp"``
and the float64 columns ``open high low close volume`` (DESIGN.md, "Candles"). Every candle that
enters the store, a backtest or an import passes :func:`validate_candles` (one validator, one
wording of its messages).
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.data.candles_nb import first_bad_candle_nb
from engine.errors import DataError
from engine.markets import timeframe_to_ms

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Columns of a candle frame, in file order after ``timestamp``.
CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
#: Exact header line of a candle CSV.
CSV_HEADER = "timestamp," + ",".join(CANDLE_COLUMNS)
#: Index unit → index units per millisecond, for first_bad_candle_nb (1 for "s": whole seconds never share a ms).
_MS_DIVISOR = {"s": 1, "ms": 1, "us": 1_000, "ns": 1_000_000}


def index_ms(candles: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> IntArray:
    """Return the open times of a candle frame (or series, or index) as int64 epoch ms, shape (n,).

    Works whatever the index's time unit (s, ms, us, ns); the one ``index → ms`` converter.

    Raises
    ------
    DataError
        If the index is not a tz-aware DatetimeIndex.
    """
    index = candles if isinstance(candles, pd.Index) else candles.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"candles: index is {type(index).__name__}, expected a UTC DatetimeIndex of open times. "
            "Build frames with engine.data.candles_from_arrays()."
        )
    if index.tz is None:
        raise DataError("candles: index is tz-naive, expected UTC. Use index.tz_localize('UTC').")
    return np.asarray(index.tz_convert("UTC").as_unit("ms").asi8, dtype=np.int64)


def candles_from_arrays(
    timestamp_ms: npt.ArrayLike,
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
) -> pd.DataFrame:
    """Return a candle frame from arrays of open times (epoch ms, int) and OHLCV values.

    Parameters
    ----------
    timestamp_ms : int array, shape (n,)
        Candle open times, epoch milliseconds UTC.
    open_, high, low, close, volume : float arrays, shape (n,)
        Prices in quote currency, volume in base currency.

    Returns
    -------
    DataFrame
        Index ``timestamp`` (UTC DatetimeIndex), float64 columns ``open high low close volume``.
        Not validated: call :func:`validate_candles`.
    """
    index = pd.DatetimeIndex(
        pd.to_datetime(np.asarray(timestamp_ms, dtype=np.int64), unit="ms", utc=True), name="timestamp"
    )
    data = {
        "open": np.asarray(open_, dtype=np.float64),
        "high": np.asarray(high, dtype=np.float64),
        "low": np.asarray(low, dtype=np.float64),
        "close": np.asarray(close, dtype=np.float64),
        "volume": np.asarray(volume, dtype=np.float64),
    }
    return pd.DataFrame(data, index=index)


def empty_candles() -> pd.DataFrame:
    """Return a candle frame with no rows (the right index type and columns)."""
    return candles_from_arrays([], [], [], [], [], [])


def _ohlcv_problem(
    ts: IntArray, o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray,
    step_ms: int | None,
) -> tuple[int, str, str, str] | None:
    """Return (row index, column, value found, expected) of the first invalid candle, or None."""
    n = len(ts)
    checks: list[tuple[np.ndarray, str, np.ndarray, str]] = []
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        checks.append((~np.isfinite(col), name, col, "a finite number"))
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c)):
        checks.append((col <= 0, name, col, "a price > 0"))
    checks.append((v < 0, "volume", v, "volume >= 0"))
    checks.append((h < lo, "high", h, "high >= low"))
    checks.append((lo > np.minimum(o, c), "low", lo, "low <= min(open, close)"))
    checks.append((h < np.maximum(o, c), "high", h, "high >= max(open, close)"))
    if step_ms is not None:
        checks.append((ts % step_ms != 0, "timestamp", ts, f"a multiple of {step_ms} ms (timeframe grid)"))
    if n > 1:
        bad = np.zeros(n, dtype=bool)
        bad[1:] = ts[1:] <= ts[:-1]
        checks.append((bad, "timestamp", ts, "a timestamp after the previous row's (ascending, unique)"))
    first: tuple[int, str, str, str] | None = None
    for mask, name, col, expected in checks:
        hits = np.flatnonzero(mask)
        if len(hits) and (first is None or hits[0] < first[0]):
            value = col[hits[0]]
            shown = str(int(value)) if name == "timestamp" else repr(float(value))
            if name == "low" and expected.startswith("low <="):
                shown += f" (open {float(o[hits[0]])!r}, close {float(c[hits[0]])!r}, high {float(h[hits[0]])!r})"
            if name == "high" and expected == "high >= low":
                shown += f" (low {float(lo[hits[0]])!r})"
            elif name == "high" and expected.startswith("high >="):
                shown += f" (open {float(o[hits[0]])!r}, close {float(c[hits[0]])!r}, low {float(lo[hits[0]])!r})"
            first = (int(hits[0]), name, shown, expected)
    return first


def check_bars(candles: pd.DataFrame, *, where: str = "candles") -> None:
    """Check what a backtest relies on: a non-empty frame, OHLC columns, a UTC index, valid candles.

    The same rules and messages as :func:`validate_candles`, but the frame may hold other columns
    (signals, indicators) and ``volume`` may be absent; the timeframe grid is not checked.

    Raises
    ------
    DataError
        Naming `where`, the row (0-based), the value found and what was expected.
    """
    if not isinstance(candles, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame of candles, found {type(candles).__name__}")
    missing = [c for c in ("open", "high", "low", "close") if c not in candles.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; expected open, high, low, close, volume")
    if len(candles) == 0:
        raise DataError(f"{where}: no candles; backfill or load candles first")
    index = candles.index
    index_ms(index[:1])  # a tz-aware DatetimeIndex, or the DataError of index_ms
    arrays = [np.ascontiguousarray(candles[c], dtype=np.float64) for c in ("open", "high", "low", "close")]
    volume = (np.ascontiguousarray(candles["volume"], dtype=np.float64) if "volume" in candles
              else np.zeros(len(index)))
    # one pass over the whole frame; the message is worded on the bad row (and the one before it)
    bad = first_bad_candle_nb(np.ascontiguousarray(index.asi8), _MS_DIVISOR[index.unit], *arrays, volume)
    if bad >= 0:
        start = max(bad - 1, 0)
        rows = slice(start, bad + 1)
        problem = _ohlcv_problem(index_ms(index[rows]), *(a[rows] for a in arrays), volume[rows], None)
        if problem is None:  # the scan and the worded rules disagree (a test forbids it): the full check decides
            start, problem = 0, _ohlcv_problem(index_ms(index), *arrays, volume, None)
        if problem is not None:
            row, column, found, expected = problem
            raise DataError(f"{where} row {start + row}: {column} {found}, expected {expected}. "
                            "Sort, de-duplicate, drop or refetch that candle.")


def validate_candles(candles: pd.DataFrame, timeframe: str | None = None, *, where: str = "candles",
                     first_line: int | None = None) -> None:
    """Check that a candle frame follows the candle contract; raise DataError on the first breach.

    Checks: columns exactly ``open high low close volume``; UTC DatetimeIndex; timestamps
    ascending and unique and (with `timeframe`) on the timeframe grid; finite numbers, prices > 0,
    ``high >= low``, ``low <= min(open, close) <= max(open, close) <= high``; ``volume >= 0``.

    Parameters
    ----------
    candles : DataFrame
        Candle frame (see module docstring).
    timeframe : str, optional
        When given, open times must be multiples of its length.
    where : str
        Name used in messages (a file path, ``"BTCUSDT 1m from binance"``).
    first_line : int, optional
        When the frame comes from a file: the file line of its first candle (2 below a header).
        Messages then name the line (``line 812``) instead of the 0-based row.

    Raises
    ------
    DataError
        Naming `where`, the row (0-based position), the value found and what was expected.
    """
    if list(candles.columns) != list(CANDLE_COLUMNS):
        raise DataError(
            f"{where}: columns {list(candles.columns)}, expected {list(CANDLE_COLUMNS)}. "
            "Select and order the columns before storing."
        )
    step_ms = timeframe_to_ms(timeframe) if timeframe is not None else None
    ts = index_ms(candles)
    arrays = [np.asarray(candles[c], dtype=np.float64) for c in CANDLE_COLUMNS]
    problem = _ohlcv_problem(ts, *arrays, step_ms)
    if problem is not None:
        row, column, found, expected = problem
        at = f"line {row + first_line}" if first_line is not None else f"row {row}"
        raise DataError(
            f"{where} {at}: {column} {found}, expected {expected}. "
            "Drop or refetch that candle before storing."
        )

