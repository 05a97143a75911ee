"""Candles on disk: read, validate, write atomically, append, resample, find gaps.

One file per pair and timeframe, ``<data_dir>/ohlcv/<PAIR>/<TF>.csv`` (DESIGN.md, "Candles"):
header ``timestamp,open,high,low,close,volume``, ``timestamp`` = candle open time in integer
milliseconds UTC on the timeframe grid, ascending, unique, closed candles only. In memory a candle
frame has a tz-aware UTC ``DatetimeIndex`` of open times named ``"timestamp"`` and the float64
columns ``open high low close volume`` (contracts, "Candles in memory").

Every write goes to a temporary file in the same folder followed by :func:`os.replace`, under an
inter-process lock (``<TF>.csv.lock``, the ``filelock`` package), so a notebook and the maintainer
never interleave and a crash never leaves a half-written CSV. Each candle file has a sidecar
``<TF>.source.json`` naming where its candles came from (``"binance"``, ``"sample"`` ...); a file
never mixes sources: :func:`append_candles` with a different source replaces the file.

The bundled sample (``engine/sample/ohlcv/<PAIR>/1m.csv.gz``) holds real Binance spot 1m candles;
see ``engine/sample/PROVENANCE.md``. It has two exchange halts (gaps) per pair: resampling keeps
them as absent buckets and :func:`find_gaps` lists them.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from filelock import FileLock

from engine import fileio
from engine.errors import ConfigError, DataError
from engine.markets import TIMEFRAME_MS, folder_to_pair, pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
GapPolicy = Literal["skip", "ffill"]

#: Columns of a candle frame, in file order after ``timestamp``.
CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
#: Exact header line of a candle CSV.
CSV_HEADER = "timestamp," + ",".join(CANDLE_COLUMNS)
#: Folder of the bundled real 1m candles.
SAMPLE_DIR = Path(__file__).resolve().parent / "sample" / "ohlcv"
#: Source name recorded for candles seeded from the bundled sample.
SAMPLE_SOURCE = "sample"
#: Gap policies understood by :func:`apply_gap_policy`.
GAP_POLICIES: tuple[str, ...] = ("skip", "ffill")
#: Seconds a writer waits for the file lock before giving up with a DataError.
LOCK_TIMEOUT_S = 120.0

_TF_FROM_NAME = re.compile(r"^(?P<tf>[0-9]+[mhd])\.csv(\.gz)?$")


# --------------------------------------------------------------------------------------------
# paths, locks, sidecars


def candle_path(data_dir: str | os.PathLike, pair: str, timeframe: str) -> Path:
    """Return the path of the candle CSV of `pair` and `timeframe` under `data_dir`.

    Parameters
    ----------
    data_dir : path
        Root of the data store (``RuntimeConfig.data_dir``).
    pair : str
        ``"BTC/USDT"`` or folder name ``"BTCUSDT"``.
    timeframe : str
        One of ``1m 5m 15m 1h 4h 1d``.

    Returns
    -------
    Path
        ``data_dir/"ohlcv"/"BTCUSDT"/"1m.csv"``.

    Raises
    ------
    ConfigError
        If the pair or the timeframe is not recognised.
    """
    timeframe_to_ms(timeframe)
    return Path(data_dir) / "ohlcv" / pair_to_folder(pair) / f"{timeframe}.csv"


def timeframe_of_path(path: str | os.PathLike) -> str | None:
    """Return the timeframe encoded in a candle file name (``1m.csv`` → ``"1m"``), else None."""
    match = _TF_FROM_NAME.match(Path(path).name)
    if match and match.group("tf") in TIMEFRAME_MS:
        return match.group("tf")
    return None


def lock_path(path: str | os.PathLike) -> Path:
    """Return the lock file guarding candle file `path` (``1m.csv`` → ``1m.csv.lock``)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def candle_lock(path: str | os.PathLike, timeout_s: float = LOCK_TIMEOUT_S) -> FileLock:
    """Return the inter-process lock of candle file `path`.

    Hold it (``with candle_lock(path):``) around a read-modify-write sequence so no other process
    or thread writes the file meanwhile. It is re-entrant within one thread, so the writers of this
    module can be called while holding it. The operating system releases it when the holder dies
    (``fcntl.flock``), so a killed process never leaves the store locked.

    Parameters
    ----------
    path : path
        The candle CSV (need not exist yet; its folder is created).
    timeout_s : float
        Seconds to wait before ``filelock.Timeout`` is raised.
    """
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_file), timeout=timeout_s, is_singleton=True)


def source_sidecar_path(path: str | os.PathLike) -> Path:
    """Return the sidecar that records the source of candle file `path` (``1m.source.json``)."""
    path = Path(path)
    name = path.name[: -len(".csv")] if path.name.endswith(".csv") else path.name
    return path.with_name(name + ".source.json")


def read_source(path: str | os.PathLike) -> str | None:
    """Return the source recorded for candle file `path` (``"binance"``, ``"sample"``), or None.

    None means the file has no (readable) sidecar: its source is unknown, and an append with a
    named source replaces it rather than mixing.
    """
    sidecar = source_sidecar_path(path)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) and source else None


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` atomically (:func:`engine.fileio.atomic_write_bytes`); the caller
    takes :func:`candle_lock` when several writers may race."""
    fileio.atomic_write_bytes(Path(path), payload, lock=False)


def _remove_stale_tmp(path: Path) -> None:
    """Delete temporary files a killed writer left next to `path` (call with the lock held)."""
    n = fileio.remove_stale_tmp(path)
    if n:
        logger.debug("%s: removed %d stale temporary files", path, n)


def _write_source(path: Path, source: str) -> None:
    payload = json.dumps({"source": source, "written_at_ms": int(time.time() * 1000)}) + "\n"
    atomic_write_bytes(source_sidecar_path(path), payload.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# frames and validation


def index_ms(candles: pd.DataFrame) -> IntArray:
    """Return the open times of a candle frame as int64 epoch milliseconds, shape (n,).

    Raises
    ------
    DataError
        If the index is not a tz-aware DatetimeIndex.
    """
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"candles: index is {type(index).__name__}, expected a UTC DatetimeIndex of open times. "
            "Build frames with engine.datastore.candles_from_arrays()."
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


def validate_candles(candles: pd.DataFrame, timeframe: str | None = None, *, where: str = "candles") -> None:
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
        raise DataError(
            f"{where} row {row}: {column} {found}, expected {expected}. "
            "Drop or refetch that candle before storing."
        )


def read_candles(path: str | os.PathLike, timeframe: str | None = None) -> pd.DataFrame:
    """Read and validate a candle CSV (plain or ``.gz``).

    Parameters
    ----------
    path : path
        ``<data_dir>/ohlcv/<PAIR>/<TF>.csv`` or a bundled ``1m.csv.gz``.
    timeframe : str, optional
        Timeframe whose grid the timestamps must lie on; by default taken from the file name
        (``5m.csv`` → ``"5m"``), and the grid is not checked if the name does not say.

    Returns
    -------
    DataFrame
        Index ``timestamp`` (UTC DatetimeIndex of open times), float64 ``open high low close
        volume``; ascending, unique. Empty (0 rows) for a file holding only the header.

    Raises
    ------
    DataError
        If the file is missing or empty, the header differs, or a row is malformed: the message
        names the file, the row (1-based data row; line = row + 1), the value found, what was
        expected and how to fix it.
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    fix = f"Delete or move {path.name} aside and re-run the backfill (it is rebuilt)."
    try:
        if path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such candle file. Run the backfill (or seed from the sample).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}). {fix}") from e
    text_head = raw[:200].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not raw.strip():
        raise DataError(f"{path}: file is empty, expected header {CSV_HEADER!r}. {fix}")
    if text_head != CSV_HEADER:
        raise DataError(f"{path} row 0 (header): found {text_head!r}, expected {CSV_HEADER!r}. {fix}")
    if not raw.endswith(b"\n"):
        last = raw.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
        n_rows = raw.count(b"\n")
        raise DataError(
            f"{path} row {n_rows}: last line {last!r} has no line end (truncated write), "
            f"expected a complete row. {fix}"
        )
    step_ms = timeframe_to_ms(timeframe) if timeframe is not None else None
    fast = _read_fast(raw)
    if fast is not None:  # well-formed numbers: only the candle rules are left to check
        problem = _ohlcv_problem(fast[0], *fast[1:], step_ms)
        if problem is not None:
            row, column, found, expected = problem
            raise DataError(f"{path} row {row + 1}: {column} {found}, expected {expected}. {fix}")
        return candles_from_arrays(*fast)
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: malformed CSV ({str(e).strip()}), expected 6 fields per row. {fix}") from e
    n = len(frame)
    if n == 0:
        return empty_candles()
    ts_text = frame["timestamp"].to_numpy(dtype=object)
    ts_num = pd.to_numeric(frame["timestamp"], errors="coerce")
    bad_ts = ~np.asarray([isinstance(t, str) and t.strip().lstrip("-").isdigit() for t in ts_text])
    if bad_ts.any():
        row = int(np.flatnonzero(bad_ts)[0])
        raise DataError(
            f"{path} row {row + 1}: timestamp {ts_text[row]!r}, expected an integer number of "
            f"milliseconds (candle open time, UTC). {fix}"
        )
    ts = ts_num.to_numpy(dtype=np.int64)
    values = []
    for col in CANDLE_COLUMNS:
        num = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path} row {row + 1}: {col} {frame[col].iloc[row]!r}, expected a finite number. {fix}"
            )
        values.append(num)
    problem = _ohlcv_problem(ts, *values, step_ms)
    if problem is not None:
        row, column, found, expected = problem
        raise DataError(f"{path} row {row + 1}: {column} {found}, expected {expected}. {fix}")
    return candles_from_arrays(ts, *values)


def _read_fast(raw: bytes) -> tuple[IntArray, ...] | None:
    """Parse a candle CSV whose fields are all well-formed numbers; None if any is not.

    The slow path of read_candles then finds the offending row and value for the message.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(raw), dtype={"timestamp": str, **{c: np.float64 for c in CANDLE_COLUMNS}},
            engine="c", na_filter=True,
        )
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        return None
    if list(frame.columns) != ["timestamp", *CANDLE_COLUMNS]:
        return None
    stamps = frame["timestamp"]
    if stamps.isna().any() or not stamps.str.fullmatch(r"-?[0-9]{1,19}").all():
        return None
    arrays = [stamps.astype(np.int64).to_numpy(dtype=np.int64)]
    for col in CANDLE_COLUMNS:
        values = frame[col].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            return None
        arrays.append(values)
    return tuple(arrays)


def quarantine_corrupt(path: str | os.PathLike, reason: str) -> Path:
    """Move a stored candle file that failed validation aside, so it is rebuilt, never used.

    The file becomes ``<TF>.csv.corrupt-<YYYYmmddTHHMMSSZ>`` next to it (a ``-N`` suffix is added
    if that name exists) and its source sidecar is removed. One WARNING line names both files and
    the reason. Take :func:`candle_lock` around the call when other writers may be active.

    Returns
    -------
    Path
        Where the file now is.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    k = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{k}")
        k += 1
    os.replace(path, target)
    with contextlib.suppress(OSError):
        source_sidecar_path(path).unlink()
    logger.warning("%s failed validation (%s); moved aside to %s, it will be rebuilt", path, reason, target.name)
    return target


def read_or_quarantine(path: str | os.PathLike, timeframe: str | None = None) -> pd.DataFrame | None:
    """Return the stored candles of `path`, None if there is no file or it was corrupt.

    A file that fails :func:`read_candles` is moved aside with :func:`quarantine_corrupt` (one
    WARNING log line) and None is returned, so the caller rebuilds it. Holds the file's lock.
    """
    path = Path(path)
    with candle_lock(path):
        if not path.exists():
            return None
        try:
            return read_candles(path, timeframe)
        except DataError as e:
            quarantine_corrupt(path, str(e))
            return None


def _to_csv_bytes(candles: pd.DataFrame) -> bytes:
    ts = index_ms(candles)
    out = pd.DataFrame({"timestamp": ts})
    for col in CANDLE_COLUMNS:
        out[col] = np.asarray(candles[col], dtype=np.float64)
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_candles(
    path: str | os.PathLike,
    candles: pd.DataFrame,
    *,
    timeframe: str | None = None,
    source: str | None = None,
) -> None:
    """Write a candle frame to `path` atomically (temporary file + ``os.replace``) under its lock.

    Parameters
    ----------
    path : path
        Destination CSV; its folder is created.
    candles : DataFrame
        Candle frame; validated first (nothing is written if it is invalid).
    timeframe : str, optional
        Grid to check; by default from the file name.
    source : str, optional
        Where the candles came from (``"binance"``, ``"sample"``); recorded in the sidecar
        ``<TF>.source.json``. The sidecar is removed before the CSV is replaced and written after,
        so a crash in between leaves "source unknown", never a wrong source.

    Raises
    ------
    DataError
        If the candles are invalid, or the lock cannot be taken within ``LOCK_TIMEOUT_S``.
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    validate_candles(candles, timeframe, where=f"{path} (to be written)")
    payload = _to_csv_bytes(candles)
    with candle_lock(path):
        _remove_stale_tmp(path)
        if source is not None:
            with contextlib.suppress(FileNotFoundError):
                source_sidecar_path(path).unlink()
        atomic_write_bytes(path, payload)
        if source is not None:
            _write_source(path, source)
    logger.debug("%s: wrote %d candles (source %s)", path, len(candles), source or "unchanged")


def append_candles(
    path: str | os.PathLike,
    candles: pd.DataFrame,
    *,
    timeframe: str | None = None,
    source: str | None = None,
) -> int:
    """Merge new candles into the stored file, without duplicates; return the rows added.

    Candles whose open time is already stored are ignored (the stored candle wins); the others
    (newer ones, or ones filling a gap) are merged in time order and the file is rewritten
    atomically under its lock. If `source` is given and differs from the recorded source (or the
    existing file has none), the file is **replaced** by `candles` instead (one INFO line), so a
    file never mixes sources. A stored file that fails validation is moved aside
    (:func:`quarantine_corrupt`) and rebuilt from `candles`.

    Parameters
    ----------
    path : path
        Candle CSV.
    candles : DataFrame
        New candles (validated).
    timeframe : str, optional
        Grid to check; by default from the file name.
    source : str, optional
        Source of `candles`, see :func:`write_candles`.

    Returns
    -------
    int
        Number of candles added to the file (all of them when the file is created or replaced).

    Raises
    ------
    DataError
        If `candles` are invalid.
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    validate_candles(candles, timeframe, where=f"{path} (to be appended)")
    with candle_lock(path):
        existing = read_or_quarantine(path, timeframe)
        if existing is not None and source is not None:
            stored_source = read_source(path)
            if stored_source != source:
                logger.info(
                    "%s: source switches from %s to %s; replacing the file (%d stored candles dropped), "
                    "never mixing sources", path, stored_source or "unknown", source, len(existing),
                )
                existing = None
        if existing is None or len(existing) == 0:
            if len(candles) == 0 and existing is not None:
                return 0
            write_candles(path, candles, timeframe=timeframe, source=source)
            return len(candles)
        new_ms = index_ms(candles)
        keep = ~np.isin(new_ms, index_ms(existing))
        n_new = int(keep.sum())
        if n_new == 0:
            return 0
        merged = pd.concat([existing, candles.iloc[np.flatnonzero(keep)]]).sort_index(kind="stable")
        write_candles(path, merged, timeframe=timeframe)
        return n_new


def last_candle_ms(path: str | os.PathLike) -> int | None:
    """Return the open time (ms) of the last candle of a CSV by reading only its tail.

    Cheap (reads at most 4 KiB; a ``.gz`` file is decompressed whole, ~10 ms for a month of 1m
    candles); does not validate the file. None if the file does not exist or holds no candle row.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rb") as handle:
                tail = handle.read()[-4096:]
        else:
            tail = _read_tail(path)
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        field = line.split(b",", 1)[0].strip()
        if field.isdigit():
            return int(field)
        if field == b"timestamp":
            return None
    return None


def _read_tail(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        return handle.read()


# --------------------------------------------------------------------------------------------
# resampling, gaps


def _infer_step_ms(ts: IntArray) -> int | None:
    if len(ts) < 2:
        return None
    return int(np.diff(ts).min())


def resample_candles(
    candles: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None
) -> pd.DataFrame:
    """Aggregate candles to a higher timeframe the standard way, aligned to UTC boundaries.

    Each bucket ``[t, t + step)`` with ``t`` a multiple of the target length (epoch-aligned, so
    UTC midnight is a boundary) gets first open, max high, min low, last close, summed volume,
    labelled with its open time ``t``. Buckets with no source candle (exchange halts) are absent,
    never bridged. A bucket holding the source's first candle but starting before it, or holding
    its last candle but ending after it, is incomplete and dropped (logged at DEBUG); buckets
    inside the range that are only partly covered because of a halt are kept, as the exchange's
    own higher-timeframe candles are.

    Parameters
    ----------
    candles : DataFrame
        Valid candle frame of a lower timeframe (e.g. 1m).
    timeframe : str
        Target timeframe; must be a multiple of the source timeframe.
    source_timeframe : str, optional
        Timeframe of `candles`; inferred as the smallest step between open times if omitted.

    Returns
    -------
    DataFrame
        Candle frame of `timeframe`.

    Raises
    ------
    DataError
        If the target is shorter than, or not a multiple of, the source timeframe.

    Notes
    -----
    Binance's own 5m candles differ from the sum of its 1m candles in a few bars of the bundled
    window (engine/sample/PROVENANCE.md §1.3); this function reproduces the aggregation of 1m.
    """
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles)
    if len(ts) == 0:
        return empty_candles()
    src = timeframe_to_ms(source_timeframe) if source_timeframe else (_infer_step_ms(ts) or step)
    if step < src or step % src != 0:
        raise DataError(
            f"resample to {timeframe}: source step {src} ms, expected a target that is a multiple "
            "of the source timeframe. Resample from a lower timeframe."
        )
    o = np.asarray(candles["open"], dtype=np.float64)
    h = np.asarray(candles["high"], dtype=np.float64)
    lo = np.asarray(candles["low"], dtype=np.float64)
    c = np.asarray(candles["close"], dtype=np.float64)
    v = np.asarray(candles["volume"], dtype=np.float64)
    bucket = ts - ts % step
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    out_ts = bucket[starts]
    out = candles_from_arrays(
        out_ts,
        o[starts],
        np.maximum.reduceat(h, starts),
        np.minimum.reduceat(lo, starts),
        c[ends],
        np.add.reduceat(v, starts),
    )
    keep = np.ones(len(out_ts), dtype=bool)
    if ts[0] > out_ts[0]:
        keep[0] = False
        logger.debug("resample to %s: first bucket %d starts before the data; dropped", timeframe, out_ts[0])
    if ts[-1] + src < out_ts[-1] + step:
        keep[-1] = False
        logger.debug("resample to %s: last bucket %d is unfinished; dropped", timeframe, out_ts[-1])
    return out.iloc[np.flatnonzero(keep)]


def find_gaps(candles: pd.DataFrame | npt.ArrayLike, timeframe: str) -> list[tuple[int, int, int]]:
    """Return the runs of missing candles between the first and the last candle.

    Parameters
    ----------
    candles : DataFrame or int array
        Candle frame, or ascending open times in epoch ms.
    timeframe : str
        Timeframe of the candles.

    Returns
    -------
    list of (from_ms, to_ms, n_missing)
        Open times of the first and the last missing candle of each run (inclusive) and the
        number of missing candles, in time order. Empty when the series is contiguous.
    """
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles) if isinstance(candles, pd.DataFrame) else np.asarray(candles, dtype=np.int64)
    if len(ts) < 2:
        return []
    diffs = np.diff(ts)
    where = np.flatnonzero(diffs > step)
    return [
        (int(ts[i] + step), int(ts[i + 1] - step), int(diffs[i] // step - 1)) for i in where
    ]


def apply_gap_policy(candles: pd.DataFrame, timeframe: str, policy: str) -> pd.DataFrame:
    """Apply a gap policy before a backtest, so gaps are never bridged silently.

    Parameters
    ----------
    candles : DataFrame
        Valid candle frame of `timeframe`.
    timeframe : str
        Its timeframe.
    policy : {"skip", "ffill"}
        ``"skip"``: return the candles unchanged; bars on either side of a gap are consecutive
        bars of the backtest. ``"ffill"``: insert each missing candle with open = high = low =
        close = the previous close and volume 0 (a flat, no-trade bar).

    Returns
    -------
    DataFrame
        Candle frame; with ``"ffill"`` on the full grid from the first to the last candle.
        One INFO line says how many candles were inserted.

    Raises
    ------
    ConfigError
        If `policy` is not one of ``skip ffill``.
    """
    if policy not in GAP_POLICIES:
        raise ConfigError(f"gap policy {policy!r}: expected one of {' '.join(GAP_POLICIES)}")
    gaps = find_gaps(candles, timeframe)
    if policy == "skip" or not gaps:
        if gaps:
            logger.debug("%d gaps (%d missing candles) kept as gaps (policy skip)", len(gaps), sum(g[2] for g in gaps))
        return candles
    step = timeframe_to_ms(timeframe)
    ts = index_ms(candles)
    full = np.arange(ts[0], ts[-1] + step, step, dtype=np.int64)
    pos = np.searchsorted(ts, full, side="right") - 1  # last real candle at or before each slot
    present = ts[pos] == full
    close = np.asarray(candles["close"], dtype=np.float64)[pos]
    cols = {}
    for col in ("open", "high", "low"):
        cols[col] = np.where(present, np.asarray(candles[col], dtype=np.float64)[pos], close)
    volume = np.where(present, np.asarray(candles["volume"], dtype=np.float64)[pos], 0.0)
    logger.info(
        "%d gaps: forward-filled %d candles (flat at previous close, volume 0; policy ffill)",
        len(gaps), int((~present).sum()),
    )
    return candles_from_arrays(full, cols["open"], cols["high"], cols["low"], close, volume)


# --------------------------------------------------------------------------------------------
# bundled sample


def sample_pairs() -> list[str]:
    """Return the folder names of the bundled sample's pairs, sorted (``["ADAUSDT", ...]``)."""
    return sorted(p.name for p in SAMPLE_DIR.iterdir() if (p / "1m.csv.gz").is_file())


@functools.lru_cache(maxsize=32)
def _sample_1m(folder: str) -> pd.DataFrame:
    return read_candles(SAMPLE_DIR / folder / "1m.csv.gz", "1m")


def load_sample(pair: str, timeframe: str = "1m") -> pd.DataFrame:
    """Return the bundled real Binance candles of `pair`, resampled from 1m when needed.

    Parameters
    ----------
    pair : str
        ``"BTC/USDT"`` or ``"BTCUSDT"``; one of :func:`sample_pairs`.
    timeframe : str
        ``"1m"`` (as shipped) or a higher timeframe built by :func:`resample_candles`.

    Returns
    -------
    DataFrame
        Candle frame, 2021-04-02 00:00 → 2021-05-02 23:59 UTC (1m), with the two exchange halts
        as gaps. A fresh copy each call.

    Raises
    ------
    DataError
        If the pair is not bundled.

    References
    ----------
    engine/sample/PROVENANCE.md and MANIFEST.json (source repository, commit, checks).
    """
    folder = pair_to_folder(pair)
    if not (SAMPLE_DIR / folder / "1m.csv.gz").is_file():
        raise DataError(
            f"sample pair {folder!r}: not bundled, expected one of {', '.join(sample_pairs())}."
        )
    one_minute = _sample_1m(folder)
    if timeframe == "1m":
        return one_minute.copy()
    return resample_candles(one_minute, timeframe, source_timeframe="1m")


# former private names, kept for callers written against them
_atomic_write_bytes = atomic_write_bytes
_index_ms = index_ms


def sample_symbol(pair: str) -> str:
    """Return the ccxt symbol of a bundled pair folder (``"BTCUSDT"`` → ``"BTC/USDT"``)."""
    return folder_to_pair(pair_to_folder(pair))
