"""Bring your own candles: import OHLCV files into the store, validated, resampled, with their source.

Formats (detected from the file, reported in the result):

- CSV, plain or gzip (``.csv``, ``.csv.gz``, ``.txt``), with or without a header line. With a header,
  the columns are found by name (``timestamp``/``date``/``time``/``open_time`` and ``open high low
  close volume``, any case, extra columns ignored); without one, the first six columns are
  ``timestamp, open, high, low, close, volume``. Timestamps may be epoch seconds, milliseconds or
  microseconds (told apart by their size: ``< 1e11`` s, ``< 1e14`` ms, ``< 1e17`` µs) or ISO 8601
  text (a time without an offset is taken as UTC).
- Binance public-data kline archives (https://data.binance.vision, ``BTCUSDT-1m-2021-04.zip`` and the
  daily ``BTCUSDT-1m-2021-04-01.zip``): a zip holding one CSV of 12 columns, the first six as above;
  the open time is in milliseconds, in microseconds from 2025 on.
- freqtrade data files (``BTC_USDT-5m.feather``, ``BTC_USDT-5m.json``, ``.json.gz``): feather with the
  columns ``date open high low close volume``; json as a list of ``[ms, open, high, low, close, volume]``.

The pair and timeframe come from ``--pair``/``--tf``, else from the file name (the Binance and
freqtrade naming schemes above), else the timeframe from the spacing of the candles. Every row passes
the store's validator (:func:`engine.data.candles.validate_candles`); a bad row stops that file with a
message naming the file, the row and the value. Candles are stored as ``<data_dir>/ohlcv/<PAIR>/<TF>.csv``
with the source ``import:<file name>`` in the sidecar, merged with earlier imports of the same pair and
timeframe, never with candles of another source unless `replace` (the old file is moved aside first),
and resampled to the configured higher timeframes.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from engine.clock import format_ms
from engine.data import store
from engine.data.candles import candles_from_arrays, index_ms, validate_candles
from engine.data.resample import find_gaps, resample_candles
from engine.errors import ConfigError, DataError
from engine.markets import TIMEFRAME_MS, pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)

_BINANCE_NAME = re.compile(r"^(?P<pair>[A-Z0-9]{2,20})-(?P<tf>[0-9]+[smhdwM])-\d{4}-\d{2}(-\d{2})?\.(zip|csv|csv\.gz)$")
_FREQTRADE_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]{1,15})_(?P<quote>[A-Z0-9]{2,10})-(?P<tf>[0-9]+[smhdwM])(-(spot|futures|mark|index))?"
    r"\.(feather|json|json\.gz|jsongz)$")
_TIME_COLUMNS = ("timestamp", "date", "time", "datetime", "open_time", "open time", "opentime", "ts")
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ImportResult:
    """What one import stored for one pair × timeframe.

    Attributes
    ----------
    pair, timeframe : str
        Folder name (``BTCUSDT``) and timeframe of the stored file.
    path : str
        The candle CSV written.
    files : tuple of str
        The imported file names the candles came from (resampled files name their base file).
    source : str
        Recorded source, ``import:<file name>``.
    rows : int
        Candles in the stored file afterwards.
    rows_added : int
        Candles this import added.
    first_ms, last_ms : int
        Open times of the first and last stored candle (epoch ms UTC).
    n_gaps, n_missing : int
        Runs of missing candles inside the stored range, and how many candles they miss.
    timestamp_unit : str
        How the timestamps were read: ``ms``, ``s``, ``us``, ``ns``, ``ISO 8601`` or ``datetime``.
    resampled_from : str or None
        The timeframe this file was aggregated from, or None for the imported timeframe itself.
    """

    pair: str
    timeframe: str
    path: str
    files: tuple[str, ...]
    source: str
    rows: int
    rows_added: int
    first_ms: int
    last_ms: int
    n_gaps: int
    n_missing: int
    timestamp_unit: str
    resampled_from: str | None = None

    def to_json(self) -> dict:
        """Return a JSON-ready mapping (``files`` as a list)."""
        d = asdict(self)
        d["files"] = list(self.files)
        return d


@dataclass(frozen=True)
class _Parsed:
    name: str
    where: str  # the file (and the CSV inside a zip) for messages
    pair: str
    timeframe: str
    candles: pd.DataFrame
    unit: str
    first_line: int  # file line of the first candle (2 below a header); messages name lines


def _open_bytes(path: Path) -> tuple[bytes, str]:
    """Return (CSV or JSON bytes, inner name) of a plain, gzip or zip file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw), path.name[:-3] if path.name.endswith(".gz") else path.name
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file ({e})") from e
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [m for m in zf.namelist() if m.lower().endswith((".csv", ".txt"))]
                if len(members) != 1:
                    raise DataError(f"{path}: expected one CSV inside the zip, found {len(members)} ({zf.namelist()[:5]})")
                return zf.read(members[0]), members[0]
        except zipfile.BadZipFile as e:
            raise DataError(f"{path}: not a readable zip file ({e})") from e
    return raw, path.name


def _timestamps_ms(values: pd.Series, where: str, first_line: int) -> tuple[np.ndarray, str]:
    """Return (int64 epoch ms, unit read) from a column of numbers, ISO 8601 text or datetimes."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.DatetimeIndex(values)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        return stamps.as_unit("ms").asi8.astype(np.int64), "datetime"
    text = values.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        first = float(abs(numeric.iloc[0])) if len(numeric) else 0.0
        unit, per_ms = (("s", 1 / 1000) if first < 1e11 else ("ms", 1) if first < 1e14
                        else ("us", 1000) if first < 1e17 else ("ns", 1_000_000))
        if pd.api.types.is_integer_dtype(numeric):  # exact integer arithmetic (ns do not fit a float)
            raw = numeric.to_numpy(dtype=np.int64)
            ms = raw * 1000 if per_ms < 1 else raw // per_ms
            frac = np.zeros(len(raw), dtype=bool) if per_ms <= 1 else raw % per_ms != 0
        else:
            scaled = numeric.to_numpy(dtype=np.float64) / per_ms
            frac = scaled != np.floor(scaled)
            ms = scaled.astype(np.int64)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise DataError(f"{where} line {row + first_line}: timestamp {text.iloc[row]!r} read as {unit} is not a "
                            "whole millisecond, expected candle open times")
        return ms.astype(np.int64), unit
    stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    # numbers with a stray text row, or text with a row that is no time: name the first odd one out
    bad = numeric.isna().to_numpy() if numeric.notna().sum() > len(text) // 2 else stamps.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where} line {row + first_line}: timestamp {text.iloc[row]!r}, expected epoch s/ms/µs "
                        "or an ISO 8601 time like 2021-04-01T00:00:00Z")
    return pd.DatetimeIndex(stamps).as_unit("ms").asi8.astype(np.int64), "ISO 8601"


def _frame_from_table(table: pd.DataFrame, where: str, first_line: int) -> tuple[pd.DataFrame, str]:
    """Pick the timestamp and OHLCV columns of a parsed table; return (candle frame, unit)."""
    names = {str(c).strip().lower(): c for c in table.columns}
    if all(n in names for n in _VALUE_COLUMNS) and any(n in names for n in _TIME_COLUMNS):
        ts_col = names[next(n for n in _TIME_COLUMNS if n in names)]
        cols = [names[n] for n in _VALUE_COLUMNS]
    elif table.shape[1] >= 6:
        ts_col, cols = table.columns[0], list(table.columns[1:6])
    else:
        raise DataError(f"{where}: {table.shape[1]} columns {list(table.columns)[:8]}, expected timestamp, open, "
                        "high, low, close, volume (a header naming them, or the first six columns in that order)")
    ts, unit = _timestamps_ms(table[ts_col], where, first_line)
    values = []
    for name, col in zip(_VALUE_COLUMNS, cols):
        num = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where} line {row + first_line}: {name} {table[col].iloc[row]!r}, expected a finite number")
        values.append(num)
    return candles_from_arrays(ts, *values), unit


def _has_header(first_line: str) -> bool:
    first = first_line.split(",")[0].strip().strip('"').lower()
    return first in _TIME_COLUMNS or first in _VALUE_COLUMNS


def parse_file(path: Path | str, *, pair: str | None = None, timeframe: str | None = None) -> _Parsed:
    """Read one file of candles (any supported format) into a validated candle frame.

    Raises
    ------
    DataError
        If the file cannot be read or a row is malformed (naming the file and the row).
    ConfigError
        If the pair or the timeframe cannot be told from the flags, the name or the candles.
    """
    path = Path(path)
    name = path.name
    where = str(path)
    if name.endswith(".feather"):
        try:
            table = pd.read_feather(path)
        except (OSError, ValueError, ImportError) as e:
            raise DataError(f"{path}: not a readable feather file ({e})") from e
        first_line = 1  # a feather table has no lines: the number is the 1-based row
        candles, unit = _frame_from_table(table, where, first_line)
    elif name.endswith((".json", ".json.gz", ".jsongz")):
        raw, _ = _open_bytes(path)
        try:
            rows = json.loads(raw)
        except ValueError as e:
            raise DataError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= 6 for r in rows):
            raise DataError(f"{path}: expected a JSON list of [timestamp_ms, open, high, low, close, volume] rows "
                            "(freqtrade's json data format)")
        first_line = 1  # the number is the 1-based position in the JSON list
        candles, unit = _frame_from_table(pd.DataFrame([r[:6] for r in rows]), where, first_line)
    else:
        raw, inner = _open_bytes(path)
        text = raw.decode("utf-8", "replace")
        if not text.strip():
            raise DataError(f"{path}: file is empty, expected candle rows")
        header = _has_header(text.split("\n", 1)[0])
        try:
            table = pd.read_csv(io.StringIO(text), header=0 if header else None, dtype=str,
                                keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(f"{path}: malformed CSV ({str(e).strip()})") from e
        if inner != name:
            where = f"{path} ({inner})"
        first_line = 2 if header else 1
        candles, unit = _frame_from_table(table, where, first_line)
    pair_name, tf = _pair_and_timeframe(path, candles, pair, timeframe)
    validate_candles(candles, tf, where=where, first_line=first_line)
    return _Parsed(name=name, where=where, pair=pair_name, timeframe=tf, candles=candles, unit=unit,
                   first_line=first_line)


def _pair_and_timeframe(path: Path, candles: pd.DataFrame, pair: str | None, timeframe: str | None) -> tuple[str, str]:
    name = path.name
    from_name = _BINANCE_NAME.match(name) or _FREQTRADE_NAME.match(name)
    if pair is None and from_name is not None:
        pair = from_name.group("pair") if "pair" in from_name.groupdict() else \
            f"{from_name.group('base')}/{from_name.group('quote')}"
    if timeframe is None and from_name is not None:
        timeframe = from_name.group("tf")
    if pair is None:
        raise ConfigError(f"{path}: the pair is not in the file name; pass --pair (e.g. --pair BTC/USDT)")
    if timeframe is None:
        ts = index_ms(candles)
        step = int(np.diff(ts).min()) if len(ts) > 1 else 0
        timeframe = next((tf for tf, ms in TIMEFRAME_MS.items() if ms == step), None)
        if timeframe is None:
            raise ConfigError(f"{path}: candles {step} ms apart, which is not a timeframe "
                              f"({' '.join(TIMEFRAME_MS)}); pass --tf")
        logger.info("%s: timeframe %s read from the spacing of the candles", path.name, timeframe)
    if timeframe not in TIMEFRAME_MS:
        raise ConfigError(f"{path}: timeframe {timeframe!r}, expected one of {' '.join(TIMEFRAME_MS)}")
    return pair_to_folder(pair), timeframe


def _merge(parts: Sequence[_Parsed]) -> pd.DataFrame:
    """Concatenate the files of one pair × timeframe in time order; drop repeated candles (logged)."""
    frame = pd.concat([p.candles for p in parts]) if len(parts) > 1 else parts[0].candles
    if len(parts) > 1:
        if not frame.index.is_monotonic_increasing:
            frame = frame.sort_index(kind="stable")
            logger.info("%s: sorted the candles of %d files by time", parts[0].pair, len(parts))
        dup = frame.index.duplicated(keep="first")
        if dup.any():
            logger.warning("%s %s: %d candles appear in more than one file; the first file's are kept",
                           parts[0].pair, parts[0].timeframe, int(dup.sum()))
            frame = frame[~dup]
    return frame


def import_candles(paths: Iterable[Path | str], data_dir: Path | str, *, pair: str | None = None,
                   timeframe: str | None = None, timeframes: Sequence[str] = (),
                   replace: bool = False) -> list[ImportResult]:
    """Import candle files into the store; return what was stored per pair × timeframe.

    The CLI ``python jobs/import_candles.py`` and a notebook cell call this same function.

    Parameters
    ----------
    paths : iterable of path
        Files in any format of the module docstring; several files of one pair and timeframe
        (monthly archives) are merged.
    data_dir : path
        Store root (``runtime.data_dir``).
    pair, timeframe : str, optional
        For files whose name does not say (``BTC/USDT`` or ``BTCUSDT``; ``1m`` …).
    timeframes : sequence of str
        Timeframes to build by resampling (the configured ``tf_list``): those that are multiples of
        the imported timeframe are written too, with the same source.
    replace : bool
        Move stored files of another source aside and replace them (else such a file stops the
        import of that pair × timeframe with a DataError naming both sources).

    Returns
    -------
    list of ImportResult
        One per stored file: imported timeframes first, then the resampled ones.

    Raises
    ------
    DataError, ConfigError
        A file cannot be read, a row breaks the candle rules (named: file, row, value, what was
        expected), the pair or timeframe cannot be told, or a stored file of another source is in
        the way. Nothing is written for the pair × timeframe that failed.
    """
    parsed = [parse_file(p, pair=pair, timeframe=timeframe) for p in paths]
    if not parsed:
        raise ConfigError("import: no files given")
    groups: dict[tuple[str, str], list[_Parsed]] = {}
    for p in parsed:
        groups.setdefault((p.pair, p.timeframe), []).append(p)
    results: list[ImportResult] = []
    for (pair_name, tf), parts in groups.items():
        candles = _merge(parts)  # each file was validated alone, so a message names its file and line
        names = tuple(p.name for p in parts)
        source = f"import:{names[0]}" if len(names) == 1 else f"import:{names[0]}+{len(names) - 1}"
        path = store.candle_path(data_dir, pair_name, tf)
        added = store.append_candles(path, candles, timeframe=tf, source=source, replace=replace)
        results.append(_result(path, pair_name, tf, names, store.read_source(path) or source, added,
                               parts[0].unit, None))
        stored = store.read_candles(path, tf)
        for higher in timeframes:
            step, base = timeframe_to_ms(higher), timeframe_to_ms(tf)
            if higher == tf or step < base or step % base:
                continue
            hpath = store.candle_path(data_dir, pair_name, higher)
            bars = resample_candles(stored, higher, source_timeframe=tf)
            if not len(bars):
                continue
            h_added = store.append_candles(hpath, bars, timeframe=higher, source=source, replace=replace)
            results.append(_result(hpath, pair_name, higher, names, store.read_source(hpath) or source, h_added,
                                   parts[0].unit, tf))
    for r in results:
        logger.info("import: %s %s %s → %s, %d candles (%d added), %d gaps [%s]", r.pair, r.timeframe,
                    format_ms(r.first_ms), format_ms(r.last_ms), r.rows, r.rows_added, r.n_gaps, r.source)
    return results


def _result(path: Path, pair: str, tf: str, names: tuple[str, ...], source: str, added: int, unit: str,
            resampled_from: str | None) -> ImportResult:
    frame = store.read_candles(path, tf)
    ts = index_ms(frame)
    gaps = find_gaps(ts, tf)
    return ImportResult(pair=pair, timeframe=tf, path=str(path), files=names, source=source, rows=len(frame),
                        rows_added=int(added), first_ms=int(ts[0]), last_ms=int(ts[-1]), n_gaps=len(gaps),
                        n_missing=sum(g[2] for g in gaps), timestamp_unit=unit, resampled_from=resampled_from)


def format_table(results: Sequence[ImportResult]) -> str:
    """Return the results as a fixed-width text table (pair, timeframe, first, last, rows, gaps)."""
    head = f"{'pair':<12} {'tf':<4} {'first (UTC)':<21} {'last (UTC)':<21} {'rows':>9} {'added':>9} {'gaps':>10}  source"
    lines = [head]
    for r in results:
        gaps = f"{r.n_gaps} ({r.n_missing})" if r.n_gaps else "0"
        note = f" (resampled from {r.resampled_from})" if r.resampled_from else f" (timestamps in {r.timestamp_unit})"
        lines.append(f"{r.pair:<12} {r.timeframe:<4} {format_ms(r.first_ms):<21} {format_ms(r.last_ms):<21} "
                     f"{r.rows:>9} {r.rows_added:>9} {gaps:>10}  {r.source}{note}")
    return "\n".join(lines)
