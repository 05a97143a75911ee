"""Reading candle CSVs: the whole file (validated), only its tail, or only its last timestamp.

The one candle CSV reader of the project (DESIGN.md, "Candles"): header
``timestamp,open,high,low,close,volume``, integer millisecond open times on the timeframe grid (a
whole-number float such as ``1617321600000.0``, as pandas writes a float column, is that integer),
ascending and unique, closed candles only; plain or ``.gz``. Reading never takes a lock, so a
read-only data folder can be read. A malformed file raises a DataError naming the file, the row,
the value found, what was expected and how to fix it.
"""
from __future__ import annotations

import gzip
import io
import os
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.candles import (CANDLE_COLUMNS, CSV_HEADER, IntArray, _ohlcv_problem, candles_from_arrays,
                                 empty_candles)
from engine.errors import DataError
from engine.markets import TIMEFRAME_MS, timeframe_to_ms


_TF_FROM_NAME = re.compile(r"^(?P<tf>[0-9]+[mhd])\.csv(\.gz)?$")
#: Parsed candle files kept in this process, keyed by what identifies a file's content on disk.
_PARSED: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
#: Files kept (the least recently read is dropped first): a month of 1m candles is about 2 MB.
PARSED_CACHE_FILES = 64


def timeframe_of_path(path: str | os.PathLike) -> str | None:
    """Return the timeframe encoded in a candle file name (``1m.csv`` → ``"1m"``), else None."""
    match = _TF_FROM_NAME.match(Path(path).name)
    if match and match.group("tf") in TIMEFRAME_MS:
        return match.group("tf")
    return None


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

    Notes
    -----
    A file is parsed and validated once per process while it stays the same on disk (same device,
    inode, size and modification time: the store replaces files atomically, so a rewrite is a new
    inode); later reads return a copy of the parsed frame (pandas copy-on-write: changing it never
    changes the cache). :data:`PARSED_CACHE_FILES` files are kept.
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    try:
        st = path.stat()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, timeframe)
    except OSError:
        key = None  # missing or unreadable: the read below says why
    if key is not None and key in _PARSED:
        _PARSED.move_to_end(key)
        return _PARSED[key].copy(deep=False)
    frame = _read_candles_file(path, timeframe)
    if key is not None:
        _PARSED[key] = frame
        while len(_PARSED) > PARSED_CACHE_FILES:
            _PARSED.popitem(last=False)
        return frame.copy(deep=False)
    return frame


def _read_candles_file(path: Path, timeframe: str | None) -> pd.DataFrame:
    fix = f"Delete or move {path.name} aside and re-run the backfill (it is rebuilt)."
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such candle file. Run the backfill (or seed from the sample).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}). {fix}") from e
    text_head = raw[:200].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not raw or raw.isspace():  # isspace stops at the first other byte: no copy of the file
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
    return _parse_candle_bytes(raw, path, timeframe, fix)


def _parse_candle_bytes(raw: bytes, path: Path, timeframe: str | None, fix: str, first_row: int = 1,
                        rows_of: str = "") -> pd.DataFrame:
    """Parse and validate CSV bytes (header + complete rows) into a candle frame.

    `first_row` is the 1-based data-row number of the first row in `raw` and `rows_of` a note
    after it (``" of the last 200"``), so messages name rows as the file counts them.
    """
    def row_name(i: int) -> str:
        return f"row {first_row + i}{rows_of}"

    step_ms = timeframe_to_ms(timeframe) if timeframe is not None else None
    fast = _read_fast(raw)
    if fast is not None:  # well-formed numbers: only the candle rules are left to check
        problem = _ohlcv_problem(fast[0], *fast[1:], step_ms)
        if problem is not None:
            row, column, found, expected = problem
            raise DataError(f"{path} {row_name(row)}: {column} {found}, expected {expected}. {fix}")
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
            f"{path} {row_name(row)}: timestamp {ts_text[row]!r}, expected an integer number of "
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
                f"{path} {row_name(row)}: {col} {frame[col].iloc[row]!r}, expected a finite number. {fix}"
            )
        values.append(num)
    problem = _ohlcv_problem(ts, *values, step_ms)
    if problem is not None:
        row, column, found, expected = problem
        raise DataError(f"{path} {row_name(row)}: {column} {found}, expected {expected}. {fix}")
    return candles_from_arrays(ts, *values)


def _read_fast(raw: bytes) -> tuple[IntArray, ...] | None:
    """Parse a candle CSV whose fields are all well-formed numbers; None if any is not.

    The slow path of read_candles then finds the offending row and value for the message.
    """
    try:  # the C parser reads the integer stamps itself: no Python call per row
        frame = pd.read_csv(
            io.BytesIO(raw), dtype={"timestamp": np.int64, **{c: np.float64 for c in CANDLE_COLUMNS}},
            engine="c", na_filter=True,
        )
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        return None
    if list(frame.columns) != ["timestamp", *CANDLE_COLUMNS]:
        return None
    arrays = [frame["timestamp"].to_numpy(dtype=np.int64)]
    for col in CANDLE_COLUMNS:
        values = frame[col].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            return None
        arrays.append(values)
    return tuple(arrays)


def last_candle_ms(path: str | os.PathLike) -> int | None:
    """Return the open time (ms) of the last candle of a CSV by reading only its tail.

    Cheap (reads at most 4 KiB; a ``.gz`` file is decompressed whole, ~10 ms for a month of 1m
    candles); does not validate the file. None if the file does not exist or holds no candle row.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
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


def read_tail_candles(path: str | os.PathLike, n: int, timeframe: str | None = None) -> pd.DataFrame:
    """Read and validate the last `n` candles of a candle CSV, reading only the end of the file.

    For charts of recent candles (the dashboard): a month of 1m candles costs a few KiB, not the
    whole file. A ``.gz`` file is decompressed whole. The rows read are validated as
    :func:`read_candles` validates a whole file (grid of `timeframe`, OHLC relations), with rows
    named from the end (``row 3 of the last 200``).

    Parameters
    ----------
    path : path
        A candle CSV with the header ``timestamp,open,high,low,close,volume``.
    n : int
        Candles wanted (≥ 1); fewer when the file holds fewer.
    timeframe : str, optional
        As for :func:`read_candles` (default: from the file name).

    Returns
    -------
    DataFrame
        As :func:`read_candles`: UTC DatetimeIndex of open times, float64 OHLCV, ascending; empty
        when the file holds only the header.

    Raises
    ------
    DataError
        If the file is missing, has another header, ends in a truncated row, or a row read is
        malformed.
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    fix = f"Delete or move {path.name} aside and re-run the backfill (it is rebuilt)."
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw, whole = handle.read(), True
        else:
            with open(path, "rb") as handle:
                head = handle.readline()
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                want = (n + 2) * 128  # candle rows are well under 128 bytes
                while True:
                    start = max(0, size - want)
                    handle.seek(start)
                    raw = handle.read()
                    whole = start == 0
                    if whole or raw.count(b"\n") > n + 1:
                        break
                    want *= 4
    except FileNotFoundError:
        raise DataError(f"{path}: no such candle file. Run the backfill (or seed from the sample).") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}). {fix}") from e
    if whole:
        head, _, raw = raw.partition(b"\n")
        head += b"\n"
    elif b"\n" in raw:
        raw = raw.split(b"\n", 1)[1]  # the first line read may be cut
    if head.decode("utf-8", "replace").strip() != CSV_HEADER:
        raise DataError(f"{path} row 0 (header): found {head[:80].decode('utf-8', 'replace').strip()!r}, "
                        f"expected {CSV_HEADER!r}. {fix}")
    if raw and not raw.endswith(b"\n"):
        last = raw.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
        raise DataError(f"{path}: last line {last!r} has no line end (truncated write), expected a complete row. {fix}")
    lines = raw.splitlines(keepends=True)[-n:] if n > 0 else []
    return _parse_candle_bytes(CSV_HEADER.encode() + b"\n" + b"".join(lines), path, timeframe, fix,
                               first_row=1, rows_of=f" of the last {len(lines)}")


def _read_tail(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        return handle.read()
