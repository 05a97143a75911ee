"""Signal rule kernels: a rule compares two lines on a bar's close (numba; numpy and numba only).

A rule is a float64 vector ``[mode, xa, xb, xk, xc, ya, yb, yk, yc]``: line ``x = lines[xa] +
xk·lines[xb] + xc`` against ``y = lines[ya] + yk·lines[yb] + yc``; mode 0 never, 1 x crosses above
y, 2 x crosses below y, 3 x above y, 4 x below y (:mod:`engine.strategy.signals` builds them).
The simulation kernel evaluates the same modes through :func:`_sig`, so there is one definition.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@nb.njit(cache=True, nogil=True, inline="always")
def _line(lines, a, b, k, c, t):
    return lines[a, t] + k * lines[b, t] + c


@nb.njit(cache=True, nogil=True, inline="always")
def _sig(mode, px, py, x, y):
    # the one definition of the rule modes, on line values already computed (t−1: px, py; t: x, y)
    if mode == 1:
        return px < py and x > y
    if mode == 2:
        return px > py and x < y
    if mode == 3:
        return x > y
    if mode == 4:
        return x < y
    return False


@nb.njit(cache=True, nogil=True)
def rule_at_nb(lines: FloatArray, r: FloatArray, t: int) -> bool:
    """Return whether rule `r` (see :mod:`engine.strategy.signals`) holds on the close of bar `t`.

    Parameters
    ----------
    lines : float64 array, shape (n_lines, n_bars)
    r : float64 array, shape (9,)
        ``[mode, xa, xb, xk, xc, ya, yb, yk, yc]``.
    t : int
        Bar index; cross modes are false at t = 0. NaN compares false.
    """
    mode = int(r[0])
    if mode == 0:
        return False
    xa, xb, ya, yb = int(r[1]), int(r[2]), int(r[5]), int(r[6])
    x = _line(lines, xa, xb, r[3], r[4], t)
    y = _line(lines, ya, yb, r[7], r[8], t)
    if t == 0:
        return (mode == 3 and x > y) or (mode == 4 and x < y)
    xp = _line(lines, xa, xb, r[3], r[4], t - 1)
    yp = _line(lines, ya, yb, r[7], r[8], t - 1)
    return _sig(mode, xp, yp, x, y)


@nb.njit(cache=True, nogil=True)
def rule_mask_nb(lines: FloatArray, r: FloatArray) -> npt.NDArray[np.bool_]:
    """Return ``rule_at_nb(lines, r, t)`` for every bar t: bool array, shape (n_bars,)."""
    n = lines.shape[1]
    out = np.empty(n, dtype=np.bool_)
    for t in range(n):
        out[t] = rule_at_nb(lines, r, t)
    return out
