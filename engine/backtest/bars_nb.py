"""The running statistics of a simulation, bar by bar (numba; numpy and numba only).

:func:`position_bar_nb` books the close of one bar in a position (held or entered at some moment
of it) into the running statistics of a run, kept as a :class:`Running` value in registers by
:func:`engine.backtest.core_nb.advance_nb` (a flat bar's equity does not move: its return is 0,
which the kernel only counts). Scalars in, scalars out, so LLVM inlines it without reference
counting; it also runs as plain Python. The metrics built from these sums are in
:mod:`engine.backtest.metrics`.
"""
from __future__ import annotations

from typing import NamedTuple

import numba as nb


class Running(NamedTuple):
    """The running statistics of one run while its bar loop runs (the stats record holds them between calls).

    ``prev_equity`` equity at the last close (quote); ``peak_equity`` its running peak;
    ``max_drawdown`` the largest (peak − equity) / peak so far (fraction); ``return_sum`` and
    ``return_sumsq`` the sums of the per-bar equity returns and of their squares; ``n_returns``
    how many returns (bars after first_bar); ``exposure_bars`` bars in a position.
    """

    prev_equity: float
    peak_equity: float
    max_drawdown: float
    return_sum: float
    return_sumsq: float
    n_returns: int
    exposure_bars: int


@nb.njit(cache=True, nogil=True, error_model="numpy")
def position_bar_nb(run: Running, eq: float, counted: bool, first: bool) -> Running:
    """Return `run` after the close of a bar in a position with equity `eq` (quote).

    The bar adds one exposure bar and, when `counted` (after first_bar), its return
    ``eq / previous − 1`` (nothing summed when the equity did not move). Drawdown follows the
    bar-close equity curve, which starts at the close of first_bar (`first`: the peak restarts
    at `eq`). A previous equity or peak of 0 (never, with a positive initial cash) would give
    inf/NaN rather than raise (numba ``error_model="numpy"``, as the kernel).
    """
    ret_sum = run.return_sum
    ret_sumsq = run.return_sumsq
    n_ret = run.n_returns
    if counted:
        if eq != run.prev_equity:
            r = eq / run.prev_equity - 1.0
            ret_sum += r
            ret_sumsq += r * r
        n_ret += 1
    peak_eq = eq if first else max(run.peak_equity, eq)
    max_dd = run.max_drawdown
    if peak_eq - eq > max_dd * peak_eq:
        max_dd = (peak_eq - eq) / peak_eq
    return Running(eq, peak_eq, max_dd, ret_sum, ret_sumsq, n_ret, run.exposure_bars + 1)
