"""Spreads: the measured median over a sliding window with its filters and ties; the two high–low
estimators against a derivation by hand and against real recorded quotes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.desk.spread import (MEASURED, SpreadStat, abdi_ranaldo_pct, corwin_schultz_pct, estimated_spreads,
                                measured_spreads, rank, read_snapshots, sample_snapshot_files)
from engine.errors import ConfigError, DataError


def _snaps(rows):
    return pd.DataFrame(rows, columns=["timestamp_ms", "symbol", "bid", "ask", "bid_size", "ask_size"])


def test_median_over_the_sliding_window_only():
    # AAA: 99.9/100.1 (0.2 %) for the last 60 s; an old wide quote 70 s earlier is outside the window
    rows = [(0, "AAA", 99.0, 101.0, 5, 5)] + [(10_000 + 10_000 * i, "AAA", 99.9, 100.1, 5, 5) for i in range(7)]
    rows += [(65_000, "AAA", 99.95, 100.05, 5, 5)]  # one tighter quote: the median stays 0.2 %
    stat = measured_spreads(_snaps(rows), window_s=60)[0]
    assert stat.spread_pct == pytest.approx(0.2) and stat.n == 7 and stat.source == MEASURED
    # a window ending earlier (now_ms) sees the old quote
    early = measured_spreads(_snaps(rows), window_s=15, now_ms=10_000)[0]
    assert early.n == 2 and early.spread_pct == pytest.approx((2.0 + 0.2) / 2)


def test_liquidity_filters_name_what_failed_and_ties_go_to_the_deeper_book():
    rows = [(1000, "THIN", 9.99, 10.01, 0.4, 100), (1000, "DEEP", 9.99, 10.01, 1000, 1000),
            (1000, "MID", 9.99, 10.01, 50, 60), (1000, "WIDE", 9.9, 10.1, 1000, 1000)]
    stats = measured_spreads(_snaps(rows), window_s=60, min_top_size=1.0, min_quote_band_usd=100.0)
    by = {s.symbol: s for s in stats}
    assert by["THIN"].reasons == ("top-of-book size 0.4 < min_top_size 1 (base)",
                                  "quote band 4.00 < min_quote_band_usd 100")
    assert by["MID"].passed and by["DEEP"].passed
    # DEEP and MID have the same spread: the deeper book ranks first; THIN is out; WIDE is last
    assert [s.symbol for s in rank(stats, 10)] == ["DEEP", "MID", "WIDE"]
    assert [s.symbol for s in rank(list(reversed(stats)), 2)] == ["DEEP", "MID"]  # input order does not matter
    with pytest.raises(ConfigError, match="--top 0"):
        rank(stats, 0)
    with pytest.raises(ConfigError, match="spread_window_s = 0"):
        measured_spreads(_snaps(rows), window_s=0)
    with pytest.raises(ConfigError, match="min_top_size = -1"):
        measured_spreads(_snaps(rows), min_top_size=-1)


def test_corwin_schultz_returns_the_spread_exactly_when_every_bar_spans_bid_to_ask():
    """By hand: constant mid P, each bar's high at the ask P(1+s/2) and low at the bid P(1-s/2).
    Then k = ln((1+s/2)/(1-s/2)), β = 2k², γ = k², and with √(3-2√2) = √2-1:
    α = (2k - √2k)/(√2-1)² - k/(√2-1) = k, so S = 2(e^k - 1)/(1 + e^k) = s exactly (CS 2012 eq. 14, 18)."""
    for s in (0.002, 0.0005, 0.01):
        high, low = np.full(50, 100 * (1 + s / 2)), np.full(50, 100 * (1 - s / 2))
        assert corwin_schultz_pct(high, low) == pytest.approx(s * 100, rel=1e-9)
        # Abdi-Ranaldo: closes at the ask; c - η = k/2 on every bar, so S = √(4 (k/2)²) = k = ln((1+s/2)/(1-s/2))
        k = math.log((1 + s / 2) / (1 - s / 2))
        assert abdi_ranaldo_pct(high, low, high) == pytest.approx(k * 100, rel=1e-12)
        closes = np.where(np.arange(50) % 2 == 0, high, low)  # alternating bid and ask: the same
        assert abdi_ranaldo_pct(high, low, closes) == pytest.approx(k * 100, rel=1e-12)


def test_a_negative_two_bar_estimate_counts_as_zero():
    # by hand: bars 100-101 then 110-111 (a jump): γ = ln(111/100)² ≫ β, so α < 0 and S < 0 → 0
    assert corwin_schultz_pct([101.0, 111.0], [100.0, 110.0]) == 0.0
    assert math.isnan(corwin_schultz_pct([101.0], [100.0]))
    with pytest.raises(DataError, match="high ≥ low"):
        corwin_schultz_pct([99.0, 101.0], [100.0, 100.0])


def test_estimators_track_recorded_quotes():
    """1-second bars built from real recorded quotes (high = highest ask, low = lowest bid): the
    Corwin-Schultz estimate is within 15 % of the measured median spread for the Bybit symbols (≥ 40
    bars each) and orders them as the quotes do; where the mid moves within the bars (Binance BTC
    2021-01-08, a one-tick spread) it is biased upward, as the paper warns (§III)."""
    files = {f.name.split(".")[0]: f for f in sample_snapshot_files()}
    snaps = read_snapshots(files["bybit_linear-perp_2026-08-09"])
    measured = {s.symbol: s.spread_pct for s in measured_spreads(snaps, window_s=60)}
    estimates = {}
    for sym, g in snaps.groupby("symbol"):
        bars = g.assign(sec=g["timestamp_ms"] // 1000).groupby("sec").agg(h=("ask", "max"), lo=("bid", "min"))
        assert len(bars) >= 40
        estimates[sym] = corwin_schultz_pct(bars["h"].to_numpy(), bars["lo"].to_numpy())
        assert estimates[sym] == pytest.approx(measured[sym], rel=0.15), sym
    assert sorted(estimates, key=estimates.get) == sorted(measured, key=measured.get) == \
        ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
    btc = read_snapshots(files["binance_spot_2021-01-08_nautilus"])
    bars = btc.assign(sec=btc["timestamp_ms"] // 1000).groupby("sec").agg(h=("ask", "max"), lo=("bid", "min"))
    assert corwin_schultz_pct(bars["h"].to_numpy(), bars["lo"].to_numpy()) > 10 * measured_spreads(btc)[0].spread_pct


def test_estimated_spreads_are_labelled_and_bad_snapshot_files_are_named(tmp_path, sample_1m):
    frame = sample_1m("BTCUSDT", 3000)
    stat = estimated_spreads({"BTCUSDT": frame}, bars=1440)[0]
    assert isinstance(stat, SpreadStat) and stat.is_estimate and "estimate (Corwin-Schultz 2012" in stat.source
    assert stat.n == 1439 and 0 < stat.spread_pct < 0.2
    ar = estimated_spreads({"BTCUSDT": frame}, method="abdi_ranaldo")[0]
    assert "Abdi-Ranaldo 2017" in ar.source and ar.spread_pct > 0
    with pytest.raises(ConfigError, match="estimator 'roll'"):
        estimated_spreads({"BTCUSDT": frame}, method="roll")
    bad = tmp_path / "q.csv"
    bad.write_text("timestamp_ms,symbol,bid,ask,bid_size,ask_size\n1,AAA,10,11,1,1\n2,AAA,11,10,1,1\n")
    with pytest.raises(DataError, match=r"q.csv row 3: bid 11.0, ask 10.0.*bid < ask"):
        read_snapshots(bad)
    bad.write_text("timestamp_ms,symbol,bid,ask\n1,AAA,10,11\n")
    with pytest.raises(DataError, match="missing column.*bid_size, ask_size"):
        read_snapshots(bad)
    with pytest.raises(DataError, match="no such snapshot file"):
        read_snapshots(tmp_path / "none.csv.gz")
