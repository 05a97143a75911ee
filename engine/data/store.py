"""Candles on disk: paths, locks, source sidecars, atomic write, append, quarantine.

One file per pair and timeframe, ``<data_dir>/ohlcv/<PAIR>/<TF>.csv`` (DESIGN.md, "Candles"):
header ``timestamp,open,high,low,close,volume``, ``timestamp`` = candle open time in integer
milliseconds UTC on the timeframe grid, ascending, unique, closed candles only.

Every write goes to a temporary file in the same folder followed by :func:`os.replace`, under an
inter-process lock (:func:`engine.fileio.lock_for`, the ``filelock`` package), so a notebook and the
maintainer never interleave and a crash never leaves a half-written CSV. Each candle file has a
sidecar ``<TF>.source.json`` naming where its candles came from (``"binance"``, ``"sample"`` ...);
a file never mixes sources (:func:`append_candles`). Reading is :mod:`engine.data.csvfile`
(re-exported here: ``store.read_candles``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from engine import fileio
# the readers live in csvfile.py; the store re-exports them (one store surface for its callers)
from engine.data.csvfile import last_candle_ms, read_candles, read_tail_candles, timeframe_of_path  # noqa: F401
from engine.data.candles import CANDLE_COLUMNS, index_ms, validate_candles
from engine.data.housekeeping import move_aside
from engine.errors import DataError
from engine.markets import pair_to_folder, timeframe_to_ms

logger = logging.getLogger(__name__)

#: Seconds a writer waits for the file lock before giving up with a DataError.
LOCK_TIMEOUT_S = 120.0
#: Source kind of the candles the bundled sample writes (they can always be rewritten from it).
SAMPLE_KIND = "sample"


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



