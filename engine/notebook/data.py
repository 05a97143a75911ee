"""Candles for a notebook cell: the bundled sample, files of your own, or a backfill from an exchange.

:func:`load_candles` calls the functions the CLIs and the cycle call (the sample loader,
:func:`engine.data.importer.import_candles` of ``jobs/import_candles.py``, and
:func:`engine.data.backfill.backfill_pair` of the maintainer), so a notebook sees the candles the
workbench would store and research.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from collections.abc import Iterable
from typing import Any, Literal

import pandas as pd

from engine.data import load_sample, read_candles, resample_candles
from engine.data.store import candle_path
from engine.errors import ConfigError, DataError
from engine.markets import pair_to_folder, timeframe_to_ms
from engine.types import DataSource

logger = logging.getLogger(__name__)

CandleSource = Literal["sample", "file", "stored", "exchange"]
#: The sources :func:`load_candles` knows, and what each is in a report row (:class:`engine.types.DataSource`).
CANDLE_SOURCES: dict[str, DataSource] = {"sample": DataSource.SAMPLE, "file": DataSource.LOCAL,
                                         "stored": DataSource.LOCAL, "exchange": DataSource.EXCHANGE}


def load_candles(pair: str, timeframe: str, *, source: CandleSource = "sample", start: str | None = None,
                 end: str | None = None, files: Iterable[str | os.PathLike] = (), data_dir: str | os.PathLike | None = None,
                 exchange: Any = None, limit: int | None = None, now_ms: int | None = None) -> pd.DataFrame:
    """Return closed candles of `pair` × `timeframe` from `source`, cut to ``start … end``.

    Parameters
    ----------
    pair : str
        ``"BTC/USDT"`` or ``"BTCUSDT"``.
    timeframe : str
        ``1m 5m 15m 1h 4h 1d``.
    source : {"sample", "file", "stored", "exchange"}
        ``sample``: the bundled real Binance candles (resampled from 1m). ``file``: import `files`
        into `data_dir` first (any format ``jobs/import_candles.py`` reads; resampled to `timeframe`
        when it is a multiple of theirs), then read what is stored. ``stored``: what `data_dir`
        already holds (imported or backfilled before). ``exchange``: backfill `limit` candles from
        `exchange` through ccxt into `data_dir` (needs the network), then read them.
    start, end : str, optional
        UTC dates or times; ``end`` is inclusive (``"2021-04-24"`` keeps that whole day).
    files : iterable of path
        With ``source="file"``.
    data_dir : path, optional
        The candle store; default the runtime's ``data_dir`` (``SCALP_DATA_DIR``).
    exchange : str or ccxt.Exchange, optional
        ccxt id (or a client from :func:`engine.exchange.make_exchange`) for ``source="exchange"``;
        default the runtime's ``exchange``.
    limit : int, optional
        Candles to backfill; default the runtime's ``backfill_limit``.
    now_ms : int, optional
        The backfill's clock, epoch ms (default: the wall clock): only candles closed by then are stored.

    Returns
    -------
    DataFrame
        DESIGN.md candles: UTC DatetimeIndex of open times, float64 open high low close volume.

    Raises
    ------
    ConfigError
        Unknown source, or ``source="file"`` without files.
    DataError
        No candles in ``start … end``, a file that cannot be read (named), nothing stored for the pair.
    ExchangeError
        The exchange cannot be reached (``source="exchange"``).
    """
    if source not in CANDLE_SOURCES:
        raise ConfigError(f"source = {source!r}: expected one of {', '.join(CANDLE_SOURCES)}")
    if source == "sample":
        candles = load_sample(pair, timeframe)
    else:
        from engine.config import load_runtime

        rt = load_runtime()
        store = Path(data_dir) if data_dir is not None else rt.data_dir
        if source == "file":
            candles = _import(pair, timeframe, list(files), store)
        else:
            if source == "exchange":
                _backfill(pair, timeframe, store, exchange or rt.exchange, limit or rt.backfill_limit,
                          rt.exchange_timeout_ms, now_ms)
            path = candle_path(store, pair, timeframe)
            if not path.exists():
                raise DataError(f"{path}: no stored candles of {pair} {timeframe}; import or backfill them first "
                                "(source='file' or 'exchange')")
            candles = read_candles(path, timeframe)
    cut = candles.loc[start:end] if (start or end) else candles
    if cut.empty:
        raise DataError(f"{pair} {timeframe} ({source}): no candles between {start or 'the start'} and "
                        f"{end or 'the end'}; the candles run {candles.index[0]} → {candles.index[-1]}"
                        if len(candles) else f"{pair} {timeframe} ({source}): no candles")
    logger.info("%s %s (%s): %d candles %s → %s", pair_to_folder(pair), timeframe, source, len(cut), cut.index[0],
                cut.index[-1])
    return cut


def _import(pair: str, timeframe: str, files: list, store: Path) -> pd.DataFrame:
    from engine.data.importer import import_candles

    if not files:
        raise ConfigError("source = 'file': expected candle files (the candle_files parameter)")
    results = import_candles(files, store, pair=pair, timeframes=(timeframe,))
    for r in results:
        if r.timeframe == timeframe:
            return read_candles(r.path, timeframe)
    base = results[0]
    if timeframe_to_ms(timeframe) % timeframe_to_ms(base.timeframe):
        raise DataError(f"{', '.join(base.files)}: {base.timeframe} candles cannot make {timeframe} candles; "
                        f"expected a multiple of {base.timeframe}")
    return resample_candles(read_candles(base.path, base.timeframe), timeframe)


def _backfill(pair: str, timeframe: str, store: Path, exchange: Any, limit: int, timeout_ms: int,
              now_ms: int | None) -> None:
    from engine.data.backfill import backfill_pair
    from engine.exchange import make_exchange

    client = make_exchange(exchange, timeout_ms=timeout_ms) if isinstance(exchange, str) else exchange
    result = backfill_pair(client, pair, timeframe, store, limit=limit, now_ms=now_ms)
    if result.error:
        raise DataError(f"{pair} {timeframe} from {client.id}: {result.error}")


def data_source_of(source: CandleSource) -> DataSource:
    """Return the report rows' :class:`~engine.types.DataSource` of a :func:`load_candles` source
    (``stored`` candles count as the user's own, ``LOCAL``)."""
    try:
        return CANDLE_SOURCES[source]
    except KeyError:
        raise ConfigError(f"source = {source!r}: expected one of {', '.join(CANDLE_SOURCES)}") from None


def close_ms(candles: pd.DataFrame, timeframe: str) -> int:
    """Return the close of the last candle, epoch ms UTC: a notebook's replay clock ("now" for the
    data-age rule of promotion, expiries and intents)."""
    return int(candles.index[-1].value // 1_000_000) + timeframe_to_ms(timeframe)
