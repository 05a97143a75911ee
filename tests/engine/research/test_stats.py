"""engine/stats.py: deflated Sharpe ratio (Bailey & López de Prado 2014) and its parts."""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from engine.errors import DataError
from engine.research.stats import (EULER_GAMMA, deflated_sharpe, equity_returns, expected_max_sharpe, per_bar_sharpe,
                          probabilistic_sharpe)


def test_expected_max_sharpe_by_hand():
    # N = 10, V = 0.04: sqrt(V) = 0.2; Φ⁻¹(0.9) = 1.28155, Φ⁻¹(1 - 1/(10e)) = Φ⁻¹(0.963212) = 1.78919
    # SR0 = 0.2 × ((1 - 0.57722) × 1.28155 + 0.57722 × 1.78919) = 0.2 × (0.54181 + 1.03276) = 0.31491
    z1 = NormalDist().inv_cdf(0.9)
    z2 = NormalDist().inv_cdf(1 - 1 / (10 * math.e))
    expected = 0.2 * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)
    assert expected == pytest.approx(0.31491, abs=1e-4)
    assert expected_max_sharpe(10, 0.04) == pytest.approx(expected)


def test_expected_max_sharpe_grows_with_trials_and_is_zero_for_one():
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(100, 0.0) == 0.0
    values = [expected_max_sharpe(n, 0.01) for n in (2, 10, 100, 1000)]
    assert values == sorted(values) and values[0] > 0


def test_psr_of_symmetric_zero_mean_returns_is_one_half():
    r = np.array([0.01, -0.01] * 50)
    assert probabilistic_sharpe(r, 0.0) == pytest.approx(0.5)


def test_psr_by_hand_for_normal_like_returns():
    # mean 0.001, std 0.01 → SR = 0.1 per bar; with skew 0 and kurtosis 3 (±1σ alternation has
    # kurtosis 1, so build it from the formula instead): PSR = Φ(SR·sqrt(T-1)/sqrt(1 - γ3·SR + (γ4-1)/4·SR²))
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, 2000)
    sr = r.mean() / r.std()
    z = (r - r.mean()) / r.std()
    g3, g4 = np.mean(z ** 3), np.mean(z ** 4)
    want = NormalDist().cdf(sr * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr))
    assert probabilistic_sharpe(r) == pytest.approx(want)


def test_more_trials_deflate_more():
    rng = np.random.default_rng(7)
    r = rng.normal(0.0005, 0.01, 3000)
    trials = rng.normal(0.0, 0.03, 200)
    few, many = deflated_sharpe(r, trials[:2]), deflated_sharpe(r, trials, n_trials=200)
    assert 0.0 <= many < few <= probabilistic_sharpe(r, 0.0) + 1e-12


def test_nan_trials_count_but_do_not_enter_the_variance():
    r = np.random.default_rng(3).normal(0.001, 0.01, 500)
    assert deflated_sharpe(r, [0.01, 0.03, float("nan")]) == pytest.approx(
        probabilistic_sharpe(r, expected_max_sharpe(3, float(np.var([0.01, 0.03], ddof=1)))))


def test_undefined_cases_are_nan():
    assert math.isnan(probabilistic_sharpe(np.zeros(10)))
    assert math.isnan(probabilistic_sharpe(np.array([0.01, 0.02])))


def test_per_bar_sharpe_and_equity_returns():
    assert per_bar_sharpe(math.sqrt(365.0) * 0.1, 365.0) == pytest.approx(0.1)
    np.testing.assert_allclose(equity_returns([100.0, 110.0, 99.0]), [0.1, -0.1])


@pytest.mark.parametrize("call, match", [
    (lambda: expected_max_sharpe(0, 0.1), "n_trials = 0: expected an integer ≥ 1"),
    (lambda: expected_max_sharpe(5, -1.0), "sharpe_variance = -1.0"),
    (lambda: probabilistic_sharpe([0.1, float("nan"), 0.2]), "finite numbers"),
    (lambda: equity_returns([100.0, 0.0]), "finite and positive"),
])
def test_bad_inputs(call, match):
    with pytest.raises(DataError, match=match):
        call()
