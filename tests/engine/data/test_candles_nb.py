"""The one-pass candle scan finds the same first bad row as the worded checks, and check_bars words it the same."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.candles import _MS_DIVISOR, _ohlcv_problem, check_bars, index_ms
from engine.data.candles_nb import first_bad_candle_nb
from engine.errors import DataError

BAD_VALUES = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e-9, 1e9]


@st.composite
def frames(draw):
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[100.0, c[:-1]]
    h = np.maximum(o, c) * 1.001
    lo = np.minimum(o, c) * 0.999
    v = rng.uniform(0, 5, n)
    cols = [o, h, lo, c, v]
    for _ in range(draw(st.integers(0, 3))):  # corrupt a few cells
        cols[draw(st.integers(0, 4))][draw(st.integers(0, n - 1))] = draw(st.sampled_from(BAD_VALUES))
    unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
    step = {"s": 60, "ms": 60_000, "us": 60_000_000, "ns": 60_000_000_000}[unit]
    raw = 1_700_000_000 * (step // 60) + step * np.arange(n, dtype=np.int64)
    if n > 1 and draw(st.booleans()):  # a step back, a duplicate, or a sub-millisecond step
        k = draw(st.integers(1, n - 1))
        raw[k] = raw[k - 1] + draw(st.sampled_from([-step, 0, 1, step // 2]))
    index = pd.DatetimeIndex(raw.astype(f"datetime64[{unit}]")).tz_localize("UTC")
    return index, cols


@settings(max_examples=300, deadline=None)
@given(frames())
def test_scan_and_worded_checks_agree_on_the_first_bad_row(case):
    index, (o, h, lo, c, v) = case
    problem = _ohlcv_problem(index_ms(index), o, h, lo, c, v, None)
    found = first_bad_candle_nb(index.asi8, _MS_DIVISOR[index.unit], o, h, lo, c, v)
    assert found == (-1 if problem is None else problem[0])
    frame = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=index)
    if problem is None:
        check_bars(frame)
    else:
        row, column, found, expected = problem
        with pytest.raises(DataError) as e:
            check_bars(frame, where="f")
        assert str(e.value) == (f"f row {row}: {column} {found}, expected {expected}. "
                                "Sort, de-duplicate, drop or refetch that candle.")
