"""Statistics of a search: the deflated Sharpe ratio (how much of a Sharpe the trials explain).

A search that tries many configurations finds a high Sharpe ratio by luck alone. The deflated
Sharpe ratio (DSR) of Bailey & López de Prado (2014) is the probability that the true Sharpe ratio
of a strategy is above the Sharpe ratio the best of ``N`` worthless trials would be expected to
reach, given the spread of the trials' Sharpe ratios and the length, skewness and kurtosis of the
strategy's returns. 0.95 or more is the usual bar; around 0.5 means the trials alone explain the
Sharpe ratio.

All Sharpe ratios in this module are **per bar** (mean / std of per-bar returns, not annualised):
the formula's standard error uses the number of return observations ``T``, so the Sharpe ratio
must be measured at the same frequency as those observations. Divide an annualised Sharpe ratio
by ``sqrt(periods_per_year)`` first (:func:`per_bar_sharpe`).

References
----------
Bailey, D. H. and López de Prado, M. (2014). The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality. Journal of Portfolio Management 40(5), 94-107.
Bailey, D. H. and López de Prado, M. (2012). The Sharpe Ratio Efficient Frontier. Journal of Risk
15(2), 3-44 (the probabilistic Sharpe ratio, PSR).
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Iterable

import numpy as np
import numpy.typing as npt

from engine.errors import DataError

FloatArray = npt.NDArray[np.float64]
EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def per_bar_sharpe(annualised: float, periods_per_year: float) -> float:
    """Return the per-bar Sharpe ratio of an annualised one (``SR_ann / sqrt(periods_per_year)``)."""
    return float(annualised) / math.sqrt(float(periods_per_year))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Return the Sharpe ratio the best of `n_trials` worthless trials is expected to reach.

    ``SR0 = sqrt(V) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)))`` with ``γ`` the
    Euler-Mascheroni constant (Bailey & López de Prado 2014, eq. 2 / appendix). ``N = 1`` gives 0.

    Parameters
    ----------
    n_trials : int
        Number of independent trials ``N`` (≥ 1).
    sharpe_variance : float
        Variance ``V`` across the trials of their Sharpe ratios (per bar, ≥ 0).

    Raises
    ------
    DataError
        If ``n_trials < 1`` or the variance is negative or not finite.
    """
    if int(n_trials) < 1:
        raise DataError(f"expected_max_sharpe: n_trials = {n_trials!r}: expected an integer ≥ 1")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise DataError(f"expected_max_sharpe: sharpe_variance = {sharpe_variance!r}: expected a finite number ≥ 0")
    n = int(n_trials)
    if n == 1 or sharpe_variance == 0:
        return 0.0
    z1 = _N.inv_cdf(1.0 - 1.0 / n)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe(returns: npt.ArrayLike, benchmark_sharpe: float = 0.0) -> float:
    """Return the probabilistic Sharpe ratio: P(true per-bar Sharpe > `benchmark_sharpe`).

    ``PSR = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )`` with ``SR`` the
    per-bar Sharpe ratio of `returns`, ``T`` their count, ``γ3`` their skewness and ``γ4`` their
    (non-excess, Pearson) kurtosis, all population moments.

    Parameters
    ----------
    returns : float array, shape (T,)
        Per-bar returns (fractions), NaN-free.
    benchmark_sharpe : float
        ``SR*``, per bar.

    Returns
    -------
    float
        In [0, 1]; NaN when undefined (fewer than 3 returns, or zero variance).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise DataError("probabilistic_sharpe: returns must be a 1-D array of finite numbers")
    t = r.shape[0]
    if t < 3:
        return float("nan")
    sd = r.std()
    if not sd > 0:
        return float("nan")
    sr = r.mean() / sd
    z = (r - r.mean()) / sd
    skew = float(np.mean(z ** 3))
    kurt = float(np.mean(z ** 4))
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if not denom > 0:
        return float("nan")
    return float(_N.cdf((sr - benchmark_sharpe) * math.sqrt(t - 1) / math.sqrt(denom)))


def deflated_sharpe(returns: npt.ArrayLike, trial_sharpes: Iterable[float], n_trials: int | None = None) -> float:
    """Return the deflated Sharpe ratio of `returns` after a search over many trials.

    ``DSR = PSR(SR0)``: the probabilistic Sharpe ratio (:func:`probabilistic_sharpe`) against
    the expected maximum Sharpe ratio of the trials (:func:`expected_max_sharpe`).

    Parameters
    ----------
    returns : float array, shape (T,)
        Per-bar returns (fractions) of the strategy being judged.
    trial_sharpes : iterable of float
        **Per-bar** Sharpe ratios of the trials of the search; NaN ones (no trades, flat equity)
        are left out of the variance. The variance is the sample variance (``ddof=1``) of the
        finite ones; fewer than 2 finite values give variance 0 (no deflation).
    n_trials : int, optional
        ``N``; default the number of `trial_sharpes` (NaN ones included: they were tried).

    Returns
    -------
    float
        In [0, 1]; NaN when the PSR is undefined.

    References
    ----------
    Bailey & López de Prado (2014), The Deflated Sharpe Ratio, JPM 40(5), eq. 2 and 9.
    """
    values = np.asarray(list(trial_sharpes), dtype=np.float64)
    n = int(n_trials if n_trials is not None else len(values))
    finite = values[np.isfinite(values)]
    variance = float(finite.var(ddof=1)) if finite.shape[0] >= 2 else 0.0
    return probabilistic_sharpe(returns, expected_max_sharpe(max(n, 1), variance))


def equity_returns(equity: npt.ArrayLike) -> FloatArray:
    """Return per-bar returns ``e[t] / e[t-1] - 1`` of an equity curve (shape (n-1,)).

    Raises
    ------
    DataError
        If the equity holds NaN or a non-positive value.
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.size and (not np.all(np.isfinite(e)) or np.any(e <= 0)):
        raise DataError("equity_returns: equity must be finite and positive at every bar")
    return e[1:] / e[:-1] - 1.0 if e.size > 1 else np.empty(0)
