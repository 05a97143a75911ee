"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

The time axis of the search is cut into ``S`` blocks (S even). For every way of choosing ``S/2``
blocks as in-sample (the other half out-of-sample) — ``C(S, S/2)`` splits, each used once in both
roles by symmetry — the configuration with the best in-sample performance is found, and its rank
among all configurations out-of-sample is turned into a logit ``λ = ln(ω / (1 − ω))`` with the
relative rank ``ω = rank / (N + 1)``. The PBO is the share of splits with ``λ ≤ 0``: the in-sample
winner is at or below the out-of-sample median. Worthless configurations give PBO ≈ 0.5; one
configuration that is truly better than the rest gives PBO ≈ 0.

Performance is the Sharpe ratio of per-bar returns over the blocks of a side, computed exactly
from per-block sums (return sum, sum of squares, count), so a run of the kernel per block is enough.

References
----------
Bailey, D. H., Borwein, J. M., López de Prado, M. and Zhu, Q. J. (2015). The Probability of Backtest
Overfitting. Journal of Computational Finance 20(4), 39–69 (Sections 2.2–2.3: the CSCV algorithm).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.errors import DataError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PboResult:
    """The outcome of CSCV.

    Attributes
    ----------
    pbo : float
        Share of the splits whose in-sample best configuration ranks at or below the out-of-sample
        median, in [0, 1]; NaN when undefined (fewer than 2 configurations).
    n_splits : int
        Splits evaluated: ``C(S, S/2)``.
    n_configs : int
        Configurations compared (columns).
    logits : tuple of float
        ``λ`` of every split (for a histogram).
    """

    pbo: float
    n_splits: int
    n_configs: int
    logits: tuple[float, ...]

    def to_json(self) -> dict:
        """Return ``{"pbo", "n_splits", "n_configs"}`` (NaN → None)."""
        return {"pbo": None if math.isnan(self.pbo) else self.pbo, "n_splits": self.n_splits,
                "n_configs": self.n_configs}


def _sharpe(sums: FloatArray, sumsqs: FloatArray, counts: FloatArray) -> FloatArray:
    """Per-bar Sharpe ratio of each column from summed blocks (NaN where the std is 0 or undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        var = sumsqs / counts - mean * mean
        std = np.sqrt(np.where(var > 0, var, np.nan))
        return mean / std


def pbo_cscv(sums: npt.ArrayLike, sumsqs: npt.ArrayLike, counts: npt.ArrayLike) -> PboResult:
    """Return the probability of backtest overfitting of `N` configurations over `S` time blocks.

    Parameters
    ----------
    sums, sumsqs, counts : float arrays, shape (S, N)
        For time block ``s`` and configuration ``n``: the sum of its per-bar returns, the sum of
        their squares, and how many returns there are. ``S`` is even and at least 2.

    Returns
    -------
    PboResult

    Raises
    ------
    DataError
        If the shapes differ, ``S`` is odd or below 2, or a count is not positive.

    Notes
    -----
    A configuration whose Sharpe ratio is undefined on a side (flat equity) ranks last there.
    Ties in the out-of-sample ranking take their average rank.
    """
    sums = np.asarray(sums, dtype=np.float64)
    sumsqs = np.asarray(sumsqs, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if sums.ndim != 2 or sums.shape != sumsqs.shape or sums.shape != counts.shape:
        raise DataError(f"PBO: sums {sums.shape}, sums of squares {sumsqs.shape} and counts {counts.shape}: "
                        "expected three (blocks, configurations) arrays of one shape")
    n_blocks, n_configs = sums.shape
    if n_blocks < 2 or n_blocks % 2:
        raise DataError(f"PBO: {n_blocks} time blocks, expected an even number ≥ 2")
    if (counts <= 0).any():
        raise DataError("PBO: a block has no returns (count ≤ 0); expected blocks of at least one bar")
    if n_configs < 2:
        return PboResult(float("nan"), 0, n_configs, ())
    # every split at once: the in-sample blocks of split k are chosen[k] (itertools order), the
    # sums added block by block in that order, as a loop over the splits would
    chosen = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)), dtype=np.intp)
    rest = np.array([[b for b in range(n_blocks) if b not in c] for c in chosen], dtype=np.intp)
    is_perf = _sharpe(sums[chosen].sum(1), sumsqs[chosen].sum(1), counts[chosen].sum(1))
    oos_perf = _sharpe(sums[rest].sum(1), sumsqs[rest].sum(1), counts[rest].sum(1))
    best = np.argmax(np.where(np.isnan(is_perf), -np.inf, is_perf), axis=1)
    oos = np.where(np.isnan(oos_perf), -np.inf, oos_perf)
    at_best = oos[np.arange(len(chosen)), best][:, None]
    rank = (oos < at_best).sum(1) + ((oos == at_best).sum(1) + 1) / 2.0  # 1 = worst … N = best, ties averaged
    omega = rank / (n_configs + 1.0)
    logits = np.log(omega / (1.0 - omega))
    arr = np.asarray(logits)
    return PboResult(float(np.mean(arr <= 0.0)), len(logits), n_configs, tuple(float(x) for x in arr))


def block_sums(returns: npt.ArrayLike, n_blocks: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cut per-bar returns of shape (T, N) into `n_blocks` contiguous blocks of (nearly) equal length
    and return their (sums, sums of squares, counts), each of shape (n_blocks, N).

    Raises
    ------
    DataError
        If there are fewer bars than blocks.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < n_blocks:
        raise DataError(f"PBO: returns of shape {r.shape}: expected (bars, configurations) with at least "
                        f"{n_blocks} bars")
    edges = np.linspace(0, r.shape[0], n_blocks + 1).astype(int)
    sums = np.stack([r[a:b].sum(0) for a, b in zip(edges[:-1], edges[1:])])
    sumsqs = np.stack([(r[a:b] ** 2).sum(0) for a, b in zip(edges[:-1], edges[1:])])
    counts = np.stack([np.full(r.shape[1], b - a, dtype=np.float64) for a, b in zip(edges[:-1], edges[1:])])
    return sums, sumsqs, counts
