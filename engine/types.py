"""Shared type aliases and closed choices, defined once (numpy is the only import).

Array aliases name the dtype; shapes go in docstrings. Each closed choice (a config key's allowed
words) lives here once and every validator and reader imports it.
"""
from __future__ import annotations

from enum import Enum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Promotion rule sets, strictest first (config.yaml → runtime.risk_mode).
RISK_MODES: tuple[str, ...] = ("conservative", "balanced", "aggressive")
#: How backtests treat missing candles (config.yaml → runtime.gap_policy).
GAP_POLICIES: tuple[str, ...] = ("skip", "ffill")
#: Where a cycle takes its candles from (config.yaml → runtime.data_source).
DATA_SOURCE_SETTINGS: tuple[str, ...] = ("auto", "exchange", "sample", "local")
#: The bundled sample sets (config.yaml → runtime.sample; engine.data.sample.SAMPLES).
SAMPLE_SETS: tuple[str, ...] = ("month", "long")


class DataSource(str, Enum):
    """Where the candles behind a result came from (a report row, a cycle's status).

    The closed choices that replace free text such as ``"offline sample"``; the words a reader
    sees are made from them by :func:`engine.research.reports.describe_source`.

    ``EXCHANGE``: fetched through ccxt (the exchange id is recorded beside it); for a cycle, the
    exchange answered: live data on the wall clock. ``SAMPLE``: the bundled real candles, on the
    replay clock. ``STORED``: a cycle ran offline (the exchange could not be reached) and kept
    exchange candles already in the store (the sample seeds only what is missing); wall clock, so
    the kept candles show their true age. ``UNKNOWN``: a candle file without a readable source
    record. ``LOCAL``: the user's own candle files in ``data_dir`` (``data_source: local``: imported
    with ``jobs/import_candles.py``, or files without a source record), on their replay clock.
    """

    EXCHANGE = "exchange"
    SAMPLE = "sample"
    STORED = "stored"
    LOCAL = "local"
    UNKNOWN = "unknown"

    @property
    def is_live(self) -> bool:
        """True only for candles fetched from the exchange (the dashboard's "live data" badge)."""
        return self is DataSource.EXCHANGE

    @classmethod
    def of_candle_file(cls, recorded: str | None, *, sample_source: str = "sample") -> tuple[DataSource, str | None]:
        """Return (source, exchange id) of a candle file from its recorded source (its sidecar).

        ``"sample"`` → (SAMPLE, None); None → (UNKNOWN, None); an exchange id such as
        ``"binance"`` → (EXCHANGE, "binance").
        """
        if recorded is None:
            return cls.UNKNOWN, None
        if recorded == sample_source or recorded.startswith(sample_source + "-"):
            return cls.SAMPLE, None
        if recorded.startswith("import:"):
            return cls.LOCAL, None
        return cls.EXCHANGE, recorded
