"""Candles on disk: read, validate, write atomically, append, resample, find gaps.
Candles on disk: paths, locks, source sidecars, CSV read, atomic write, append, quarantine.

One file per pair and timeframe, ``<data_dir>/ohlcv/<PAIR>/<TF>.csv`` (DESIGN.md, "Candles"):
header ``timestamp,open,high,low,close,volume``, ``timestamp`` = candle open time in integer
milliseconds UTC on the timeframe grid, ascending, unique, closed candles only.

Every write goes to a temporary file in the same folder followed by :func:`os.replace`, under an
inter-process lock (:func:`engine.fileio.lock_for`, the ``filelock`` package), so a notebook and the
maintainer never interleave and a crash never leaves a half-written CSV. Each candle file has a
sidecar ``<TF>.source.json`` naming where its candles came from (``"binance"``, ``"sample"`` ...);
a file never mixes sources: :func:`append_candles` with a different source replaces the file.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from engine import fileio
from engine.data.housekeeping import move_aside
from engine.data.candles import (CANDLE_COLUMNS, CSV_HEADER, IntArray, _ohlcv_problem, candles_from_arrays,
                                 empty_candles, index_ms, validate_candles)
from engine.errors import DataError
from engine.markets import TIMEFRAME_MS, pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)

#: Seconds a writer waits for the file lock before giving up with a DataError.
LOCK_TIMEOUT_S = 120.0
#: Source kind of the candles the bundled sample writes (they can always be rewritten from it).
SAMPLE_KIND = "sample"

_TF_FROM_NAME = re.compile(r"^(?P<tf>[0-9]+[mhd])\.csv(\.gz)?$")


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


def candle_lock(path: str | os.PathLike, timeout_s: float = LOCK_TIMEOUT_S) -> FileLock:
    """Return the inter-process lock of candle file `path` (:func:`engine.fileio.lock_for`).

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
    return fileio.lock_for(Path(path), timeout_s=timeout_s)


def source_sidecar_path(path: str | os.PathLike) -> Path:
    """Return the sidecar that records the source of candle file `path` (``1m.source.json``)."""
    path = Path(path)
    name = path.name[: -len(".csv")] if path.name.endswith(".csv") else path.name
    return path.with_name(name + ".source.json")


def read_source(path: str | os.PathLike) -> str | None:
    """Return the source recorded for candle file `path` (``"binance"``, ``"sample"``,
    ``"import:BTCUSDT-1m-2021-04.zip"``), or None.

    None means the file has no (readable) sidecar: its source is unknown — typically the user's own
    file — and it is never replaced without being moved aside first.
    """
    sidecar = source_sidecar_path(path)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) and source else None


def _remove_stale_tmp(path: Path) -> None:
    """Delete temporary files a killed writer left next to `path` (call with the lock held)."""
    n = fileio.remove_stale_tmp(path)
    if n:
        logger.debug("%s: removed %d stale temporary files", path, n)


def is_sample(source: str | None) -> bool:
    """True for candles a bundled sample wrote (``sample``, ``sample-long``): they can always be
    written again from it, so replacing them loses nothing."""
    kind = source_kind(source)
    return kind == SAMPLE_KIND or kind.startswith(SAMPLE_KIND + "-")


def source_kind(source: str | None) -> str:
    """Return the kind of a source for the no-mixing rule: ``"import"`` for every
    ``import:<file>``, ``"unknown"`` for None, else the source itself (``"sample"``, ``"binance"``)."""
    if source is None:
        return "unknown"
    return source.split(":", 1)[0]


def _write_source(path: Path, source: str) -> None:
    payload = json.dumps({"source": source, "written_at_ms": int(time.time() * 1000)}) + "\n"
    fileio.atomic_write_bytes(source_sidecar_path(path), payload.encode("utf-8"), lock=False)



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

    The file becomes ``<TF>.csv.corrupt-<YYYYmmddTHHMMSSZ>`` next to it, with its source sidecar
    (:func:`engine.data.housekeeping.move_aside`; one WARNING names both files and the reason).

    Returns
    -------
    Path
        Where the file now is.
    """
    path = Path(path)
    return move_aside(path, "corrupt", f"failed validation ({reason}); it will be rebuilt",
                      companions=[source_sidecar_path(path)])


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
        fileio.atomic_write_bytes(path, payload, lock=False)
        if source is not None:
            _write_source(path, source)
    logger.debug("%s: wrote %d candles (source %s)", path, len(candles), source or "unchanged")


def append_candles(
    path: str | os.PathLike,
    candles: pd.DataFrame,
    *,
    timeframe: str | None = None,
    source: str | None = None,
    replace: bool = False,
) -> int:
    """Merge new candles into the stored file, without duplicates; return the rows added.

    Candles whose open time is already stored are ignored (the stored candle wins); the others
    (newer ones, or ones filling a gap) are merged in time order and the file is rewritten
    atomically under its lock. A file never mixes sources (:func:`source_kind`): when `source`
    is of another kind than the stored file's,

    - a file the bundled sample wrote is replaced (the sample stays bundled; one INFO line);
    - any other file (an exchange's, an import, a file without a source record) is moved aside
      first (``<TF>.csv.replaced-<stamp>``, one WARNING naming both paths) when `replace` is true,
      and otherwise refused with a DataError: nothing stored is lost.

    A stored file that fails validation is moved aside (:func:`quarantine_corrupt`) and rebuilt.

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
    replace : bool
        Move a stored file of another source aside and replace it, instead of refusing.

    Returns
    -------
    int
        Number of candles added to the file (all of them when the file is created or replaced).

    Raises
    ------
    DataError
        If `candles` are invalid, or the stored file holds another source's candles and `replace`
        is false (the message names both sources and the way out).
    """
    path = Path(path)
    if timeframe is None:
        timeframe = timeframe_of_path(path)
    validate_candles(candles, timeframe, where=f"{path} (to be appended)")
    with candle_lock(path):
        existing = read_or_quarantine(path, timeframe)
        if existing is not None and source is not None:
            stored_source = read_source(path)
            if source_kind(stored_source) != source_kind(source):
                if is_sample(stored_source):
                    logger.info("%s: candles from %s replace the bundled sample's (never mixed)", path, source)
                elif replace:
                    move_aside(path, "replaced", f"holds {stored_source or 'candles of unknown source'}; "
                               f"replaced by candles from {source}", companions=[source_sidecar_path(path)])
                else:
                    held = stored_source or f"an unknown source (no {source_sidecar_path(path).name})"
                    raise DataError(
                        f"{path}: holds {len(existing)} candles from {held}; candles from {source} are never "
                        "mixed in. Replace it explicitly (--replace moves the old file aside first), or use "
                        "another data folder."
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

