"""The grid chunk by chunk: indicator lines computed per chunk of bars, so memory does not grow with length.

:func:`engine.backtest.kernel_nb.grid_nb` reads every indicator line over the whole series, and
stacking them costs ``8 × n_lines × n_bars`` bytes: 1.6 GB for the 200 distinct SMAs of a 100 × 100
grid on 1M bars. :func:`run_grid_chunked` instead walks the bars in chunks ``[c0, c1)`` and keeps
one buffer of lines a chunk wide (at most :data:`CHUNK_LINE_BYTES`, see :func:`chunk_bars_for`):

- *Lines.* :func:`engine.strategy.signals.lines_range` computes bars ``e_prev … e-1`` of
  every line, carrying the recursive indicators' state (running sums, averages) from the chunk
  before, so each value equals the whole-series value bit for bit; windowed indicators read the
  whole close/high/low arrays, which are in memory anyway.
- *Window.* Each chunk runs :func:`engine.backtest.kernel_nb.grid_range_nb` on a window of the
  bars, ``[b0, e)`` with ``b0 = c0 - MARGIN_BARS`` (signals read the lines of the two bars before
  a bar, the trailing stop the ATR of the bar before) and ``e = c1 + 1`` (one bar past the chunk,
  so the window's last bar, whose close ends every open position, is never reached), or the real
  end for the last chunk. The window's lines are the previous buffer's last ``MARGIN_BARS + 1``
  columns and the newly computed bars. Bar numbers inside a call are relative to ``b0``: the
  simulation's first bar is ``-b0`` and each open trade's entry bar is shifted by the change of
  ``b0`` between calls; the candles and the lower-timeframe map are views, never copies.
- *State.* Each combination's position and running statistics persist between calls in its
  state and stats records, exactly as between the cache blocks inside one call, so the
  statistics equal :func:`~engine.backtest.kernel_nb.grid_nb`'s (tests compare every field).
"""
from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from engine.backtest import kernel_nb as sim
from engine.backtest.records_nb import Bars, Ladder, Lower, RecordArray, no_lower
from engine.strategy import signals

FloatArray = npt.NDArray[np.float64]

#: Bytes the chunk's line buffer may take: chunks are as long as this allows (``8 × (1 + n_lines) × bars``).
CHUNK_LINE_BYTES = 64 * 2**20
#: Bars per chunk at most (a grid of few lines).
CHUNK_BARS = 2**20
#: Bars per chunk at least (a grid of more than about 2,000 lines outgrows the budget instead).
MIN_CHUNK_BARS = 4096
#: Bars before a chunk that its window keeps: a signal reads lines at t-1 and t-2, stops the ATR at t-1.
MARGIN_BARS = 2


def chunk_bars_for(n_lines: int) -> int:
    """Return the bars per chunk for a grid of `n_lines` distinct indicator lines.

    As many as fit :data:`CHUNK_LINE_BYTES` (``8 × (1 + n_lines) × bars`` bytes), between
    :data:`MIN_CHUNK_BARS` and :data:`CHUNK_BARS`: 399,457 bars for 20 lines, 41,734 for 200.
    Long chunks, because each chunk is two parallel regions (the lines, then the grid) that end in
    a barrier, and on a host whose cores other work also uses, a thread descheduled inside a region
    stalls it: on this project's 2-core host with another process busy, 65,536-bar chunks (32
    regions for 1M bars × 100 combinations) took a median 1.45× the whole-series grid's time in
    one run (262,144-bar chunks 1.05×), and 0.88× in a calmer one (399,457-bar chunks 0.81×).
    """
    fit = CHUNK_LINE_BYTES // (8 * (1 + max(0, n_lines)))
    return int(max(MIN_CHUNK_BARS, min(CHUNK_BARS, fit)))


def run_grid_chunked(bars: Bars, lower: Lower | None, keys: list[signals.IndicatorKey], entry_rules: FloatArray,
                     exit_rules: FloatArray, ladder: Ladder, plan: RecordArray, account: RecordArray, *,
                     n_groups: int, block_bars: int, chunk_bars: int | None = None) -> RecordArray:
    """Run a grid chunk by chunk of bars (module docstring); return each combination's statistics.

    Parameters
    ----------
    bars : Bars
        The candles and the ATR, float64 arrays of shape (n_bars,), quote per base unit.
    lower : Lower or None
        Lower-timeframe candles for intrabar refinement; None = none.
    keys : list of (kind, period)
        The distinct indicator lines the rules read, in row order: key i is row ``1 + i``
        (:func:`engine.strategy.signals.line_rows`).
    entry_rules, exit_rules : float64 arrays, shape (n_combos, 9)
        One rule pair per combination over those rows.
    ladder, plan, account, n_groups, block_bars
        As :func:`engine.backtest.kernel_nb.grid_nb`.
    chunk_bars : int, optional
        Bars per chunk (≥ ``MARGIN_BARS + 1``); default :func:`chunk_bars_for` the number of lines.

    Returns
    -------
    stats_dt record array, shape (n_combos,)
        Equal, field by field, to :func:`engine.backtest.kernel_nb.run_grid_stats` on the whole
        series with all lines stacked (:func:`engine.strategy.signals.build_lines`).

    Raises
    ------
    ValueError
        `chunk_bars` below ``MARGIN_BARS + 1``. ConfigError: an unknown indicator kind.
    TypeError
        As :func:`engine.backtest.kernel_nb.run_grid_stats`.
    """
    n = bars.open.shape[0]
    size = chunk_bars_for(len(keys)) if chunk_bars is None else int(chunk_bars)
    if size < MARGIN_BARS + 1:
        raise ValueError(f"chunk_bars = {chunk_bars!r}: expected at least {MARGIN_BARS + 1} bars")
    kinds, periods = signals.line_codes(keys)
    rows = 1 + len(keys)
    lower = no_lower() if lower is None else lower
    has_lower = lower.start.shape[0] == n
    close, high, low = (np.ascontiguousarray(a, dtype=np.float64) for a in (bars.close, bars.high, bars.low))
    # one buffer for every chunk's lines, reshaped to each window's width (C-contiguous rows)
    flat = np.empty(rows * min(n, size + MARGIN_BARS + 1), dtype=np.float64)
    carry = np.zeros((len(keys), 2), dtype=np.float64)
    states, stats = sim.new_grid_records(account, entry_rules.shape[0])
    tail = np.empty((rows, 0))
    done = 0     # lines are computed for bars 0 … done-1
    prev_b0 = 0
    for c0 in range(0, n, size):
        c1 = min(n, c0 + size)
        b0 = max(0, c0 - MARGIN_BARS)
        e = n if c1 == n else c1 + 1
        lines = flat[:rows * (e - b0)].reshape(rows, e - b0)
        kept = done - b0  # columns b0 … done-1 come from the previous window
        lines[:, :kept] = tail
        lines[signals.ROW_ZERO] = 0.0
        t_lines = time.perf_counter()
        signals.lines_range(close, high, low, kinds, periods, carry, done, e, lines, b0)
        signals.count_line_seconds(time.perf_counter() - t_lines)
        done = e
        states["entry_bar"] -= b0 - prev_b0  # bar numbers relative to the window (in a position only)
        prev_b0 = b0
        window = Bars(*(a[b0:e] for a in bars))
        window_lower = Lower(lower.open, lower.high, lower.low, lower.start[b0:e], lower.end[b0:e]) if has_lower \
            else lower
        sim.run_grid_range(window, lines, entry_rules, exit_rules, ladder, plan, account, window_lower, states, stats,
                           j0=c0 - b0, j1=c1 - b0, first_bar=-b0, n_groups=n_groups, block_bars=block_bars)
        if c1 < n:
            tail = lines[:, -(MARGIN_BARS + 1):].copy()  # bars c1 - MARGIN_BARS … c1: the next window's head
    stats["n_bars"] = n
    return stats
