"""Signal rule kernels: a rule compares two lines on a bar's close (numba; numpy and numba only).

A rule is a float64 vector ``[mode, xa, xb, xk, xc, ya, yb, yk, yc]``: line ``x = lines[xa] +
xk·lines[xb] + xc`` against ``y = lines[ya] + yk·lines[yb] + yc``; mode 0 never, 1 x crosses above
y, 2 x crosses below y, 3 x above y, 4 x below y (:mod:`engine.strategy.signals` builds them).
Row 0 of ``lines`` is all zeros (``ROW_ZERO``).

The kernels evaluate a rule through :func:`rule_terms_nb` (decoded once) and :func:`_holds`, the
one definition of the modes; :func:`rule_at_nb` and the simulation kernel share them.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: How a line of a decoded rule is read (:func:`rule_terms_nb`): the constant c; row a + c;
#: k·row b + c; or row a + k·row b + c.
LINE_CONST, LINE_ROW, LINE_SCALED, LINE_SUM = 0, 1, 2, 3


@nb.njit(cache=True, nogil=True)
def rule_terms_nb(r: FloatArray) -> tuple[bool, bool, int, int, int, float, float, int, int, int, float, float]:
    """Return rule `r` decoded for evaluation: ``(fires, cross, x_kind, xa, xb, xk, xc, y_kind, ya, yb, yk, yc)``.

    ``fires`` is false for mode 0 (never); ``cross`` is true for the crossover modes. Modes 2 and
    4 ("x below y") are written as "y above x" (x and y swapped), so every rule that fires is
    "x crosses above y" or "x above y". A line's kind (:data:`LINE_CONST`, :data:`LINE_ROW`,
    :data:`LINE_SCALED`, :data:`LINE_SUM`) says which rows it reads: row 0 is all zeros, so
    ``lines[a] + k·lines[0] + c`` is ``lines[a] + c``, ``lines[0] + k·lines[b] + c`` is
    ``k·lines[b] + c`` and ``lines[0] + k·lines[0] + c`` is ``c`` (the same values: at most the
    sign of a zero differs, which no comparison sees). The all-zero row is never read.
    """
    mode = int(r[0])
    xa, xb, xk, xc, ya, yb, yk, yc = int(r[1]), int(r[2]), r[3], r[4], int(r[5]), int(r[6]), r[7], r[8]
    if mode == 2 or mode == 4:
        xa, xb, xk, xc, ya, yb, yk, yc = ya, yb, yk, yc, xa, xb, xk, xc
    x_kind = (LINE_SUM if xa != 0 else LINE_SCALED) if xb != 0 else (LINE_ROW if xa != 0 else LINE_CONST)
    y_kind = (LINE_SUM if ya != 0 else LINE_SCALED) if yb != 0 else (LINE_ROW if ya != 0 else LINE_CONST)
    return mode != 0, mode == 1 or mode == 2, x_kind, xa, xb, xk, xc, y_kind, ya, yb, yk, yc


@nb.njit(cache=True, nogil=True)
def _value(kind, ra, rb, k, c, t):
    # one line of a decoded rule at bar t ≥ 0 (rows ra = lines[a], rb = lines[b]); an unsigned t
    # spares numba's negative-index check
    if kind == LINE_ROW:
        return ra[t] + c
    if kind == LINE_CONST:
        return c
    if kind == LINE_SCALED:
        return k * rb[t] + c
    return ra[t] + k * rb[t] + c


@nb.njit(cache=True, nogil=True)
def _holds(rt, px, py, x, y):
    # the one definition of the rule modes, for a decoded rule on line values already computed
    # (bar t−1: px, py; bar t: x, y); NaN compares false, so no rule holds in a warm-up
    return rt[0] and (not rt[1] or px < py) and x > y


@nb.njit(cache=True, nogil=True, inline="always")
def _first_holds(rt, xa, xb, ya, yb, px, py, t0, t1):
    # the first bar t in t0 … t1-1 (t0 ≥ 0) on whose close decoded rule rt holds (rows xa, xb, ya,
    # yb as _value; px, py its lines on bar t0-1), else t1. A rule over rows and constants only
    # (most entry sets) runs a loop without a kind switch: a constant reads row 0 at bar 0 (step
    # 0), which is 0, so xa[t·0] + c is c
    if not rt[0]:
        return t1
    cross = rt[1]
    x_kind, xk, xc, y_kind, yk, yc = rt[2], rt[5], rt[6], rt[7], rt[10], rt[11]
    t = t0
    if x_kind <= LINE_ROW and y_kind <= LINE_ROW:
        sx = np.uint64(x_kind == LINE_ROW)
        sy = np.uint64(y_kind == LINE_ROW)
        while t < t1:
            u = np.uint64(t)
            x = xa[u * sx] + xc
            y = ya[u * sy] + yc
            if (not cross or px < py) and x > y:
                return t
            px = x
            py = y
            t += 1
        return t1
    while t < t1:
        u = np.uint64(t)
        x = _value(x_kind, xa, xb, xk, xc, u)
        y = _value(y_kind, ya, yb, yk, yc, u)
        if _holds(rt, px, py, x, y):
            return t
        px = x
        py = y
        t += 1
    return t1


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
    rt = rule_terms_nb(r)
    xa, xb, ya, yb = lines[rt[3]], lines[rt[4]], lines[rt[8]], lines[rt[9]]
    x = _value(rt[2], xa, xb, rt[5], rt[6], t)
    y = _value(rt[7], ya, yb, rt[10], rt[11], t)
    if t == 0:
        return not rt[1] and _holds(rt, np.nan, np.nan, x, y)
    px = _value(rt[2], xa, xb, rt[5], rt[6], t - 1)
    py = _value(rt[7], ya, yb, rt[10], rt[11], t - 1)
    return _holds(rt, px, py, x, y)


@nb.njit(cache=True, nogil=True)
def rule_mask_nb(lines: FloatArray, r: FloatArray) -> npt.NDArray[np.bool_]:
    """Return ``rule_at_nb(lines, r, t)`` for every bar t: bool array, shape (n_bars,)."""
    n = lines.shape[1]
    out = np.empty(n, dtype=np.bool_)
    for t in range(n):
        out[t] = rule_at_nb(lines, r, t)
    return out
