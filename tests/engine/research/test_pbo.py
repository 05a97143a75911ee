"""PBO by CSCV on matrices whose answer is known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import DataError
from engine.research.pbo import block_sums, pbo_cscv


def _pbo(returns, n_blocks=10):
    return pbo_cscv(*block_sums(returns, n_blocks))


def test_all_noise_gives_about_one_half():
    # 20 worthless configurations (i.i.d. returns, mean 0): the in-sample winner is a coin flip out of
    # sample. One matrix's PBO varies a lot (its splits share data), so average 200 seeds: standard
    # error ≈ 0.013, the bound is about 4 of them.
    values = [_pbo(np.random.default_rng(seed).normal(0, 0.01, (600, 20)), 8).pbo for seed in range(200)]
    assert abs(float(np.mean(values)) - 0.5) < 0.05
    r = _pbo(np.random.default_rng(0).normal(0, 0.01, (2000, 50)))
    assert r.n_splits == math.comb(10, 5) == 252 and r.n_configs == 50 and len(r.logits) == 252


def test_one_truly_better_configuration_gives_about_zero():
    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.01, (2000, 50))
    returns[:, 17] += 0.004  # a Sharpe of 0.4 per bar: best in every block, in and out of sample
    r = _pbo(returns)
    assert r.pbo < 0.02


def test_hand_checked_two_blocks():
    # 2 blocks, 3 configurations. Block sums (sum, sumsq, n = 2 bars each):
    # config 0: returns [1, 1 | -1, -1]  -> IS Sharpe on block 0 undefined (std 0) -> ranks last
    # use returns with spread instead: config A [2, 0 | 0, 0.5], B [1, 0.5 | 1, 0.9], C [0.1, 0 | 2, 1.5]
    returns = np.array([[2.0, 1.0, 0.1], [0.0, 0.5, 0.0], [0.0, 1.0, 2.0], [0.5, 0.9, 1.5]])
    r = _pbo(returns, n_blocks=2)
    # split 1: IS = block 0: Sharpe A = 1/1 = 1, B = 0.75/0.25 = 3, C = 0.05/0.05 = 1 -> B best;
    #          OOS = block 1: A 0.25/0.25 = 1, B 0.95/0.05 = 19, C 1.75/0.25 = 7 -> B ranks 3 of 3: ω = 3/4, λ > 0
    # split 2: IS = block 1 -> B best; OOS = block 0: B 3 is best again -> λ > 0.  PBO = 0
    assert r.n_splits == 2 and r.pbo == 0.0
    assert r.logits == pytest.approx((math.log(3), math.log(3)))


def test_bad_shapes_are_named():
    with pytest.raises(DataError, match="3 time blocks, expected an even number"):
        pbo_cscv(np.ones((3, 4)), np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(DataError, match="expected three \\(blocks, configurations\\) arrays of one shape"):
        pbo_cscv(np.ones((2, 4)), np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(DataError, match="at least 8 bars"):
        block_sums(np.ones((5, 2)), 8)
    assert math.isnan(pbo_cscv(np.ones((2, 1)), np.ones((2, 1)) * 2, np.ones((2, 1))).pbo)  # one configuration


def test_all_splits_at_once_equal_a_loop_over_them():
    # the vectorised CSCV against the definition written as a loop (ties and flat configurations included)
    import itertools

    from engine.research.pbo import _sharpe

    def by_loop(sums, sumsqs, counts):
        n_blocks, n_configs = sums.shape
        out = []
        for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
            ins = np.zeros(n_blocks, dtype=bool)
            ins[list(chosen)] = True
            is_perf = _sharpe(sums[ins].sum(0), sumsqs[ins].sum(0), counts[ins].sum(0))
            oos_perf = _sharpe(sums[~ins].sum(0), sumsqs[~ins].sum(0), counts[~ins].sum(0))
            best = int(np.argmax(np.where(np.isnan(is_perf), -np.inf, is_perf)))
            oos = np.where(np.isnan(oos_perf), -np.inf, oos_perf)
            rank = np.sum(oos < oos[best]) + (np.sum(oos == oos[best]) + 1) / 2.0
            omega = rank / (n_configs + 1.0)
            out.append(math.log(omega / (1.0 - omega)))
        return out

    rng = np.random.default_rng(5)
    for trial in range(60):
        n_blocks, n_configs = (2, 4, 6, 8)[trial % 4], int(rng.integers(3, 30))
        sums = rng.normal(size=(n_blocks, n_configs)) * 1e-3
        sumsqs = sums ** 2 + np.abs(rng.normal(size=(n_blocks, n_configs))) * 1e-4
        counts = rng.integers(50, 500, size=(n_blocks, n_configs)).astype(float)
        sums[:, 0] = sumsqs[:, 0] = 0.0                      # a flat configuration
        sums[:, 1], sumsqs[:, 1], counts[:, 1] = sums[:, 2], sumsqs[:, 2], counts[:, 2]  # a tie
        assert list(pbo_cscv(sums, sumsqs, counts).logits) == by_loop(sums, sumsqs, counts), trial
