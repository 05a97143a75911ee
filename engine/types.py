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
DATA_SOURCE_SETTINGS: tuple[str, ...] = ("auto", "exchange", "sample")


class DataSource(str, Enum):
    """Where the candles behind a result came from (recorded per candle file and per report row).

    ``EXCHANGE``: fetched through ccxt (the exchange id is recorded beside it); ``SAMPLE``: the
    bundled real candles, on the replay clock; ``STORED``: exchange candles already in the store,
    used offline (the exchange could not be reached this cycle); ``UNKNOWN``: a file without a
    readable source record.
    """

    EXCHANGE = "exchange"
    SAMPLE = "sample"
    STORED = "stored"
    UNKNOWN = "unknown"
