"""engine/lookahead.py: every shipped entry set is causal; a peeking one is caught (also by the CLI)."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from engine.strategy import signals
from engine.config import load_entries
from engine.errors import ConfigError, DataError, LookaheadError
from engine.backtest.lookahead import check_lookahead


@pytest.fixture(scope="module")
def candles(request):
    from tests.conftest import _read_sample

    return _read_sample("ETHUSDT").iloc[:3000].copy()


def peeking_signal(candles: pd.DataFrame):
    """Deliberately peeks: enter when the NEXT close is higher (shift(-1))."""
    close = candles["close"]
    entries = (close.shift(-1) > close).to_numpy()
    exits = (close.shift(-1) < close).to_numpy()
    return entries, exits


def causal_function(candles: pd.DataFrame):
    close = candles["close"]
    return (close > close.shift(1)).to_numpy(), (close < close.shift(1)).to_numpy()


@pytest.mark.parametrize("name", sorted(signals.SIGNALS))
def test_every_registered_signal_is_causal(candles, name):
    report = check_lookahead(name, candles, None, n_cuts=40)
    assert len(report.cuts) >= 40 and report.n_entries > 0 and report.n_signal_cuts > 0


@pytest.mark.parametrize("name", sorted(load_entries().entry_sets))
def test_every_shipped_entry_set_is_causal(candles, name):
    es = load_entries().entry_sets[name]
    check_lookahead(es.signal, candles, dict(es.params), n_cuts=30, name=name)


def test_peeking_fixture_is_caught_with_entry_set_bar_and_cut(candles):
    with pytest.raises(LookaheadError) as e:
        check_lookahead(peeking_signal, candles, n_cuts=5, name="peek")
    msg = str(e.value)
    # the first cut's last bar is the one whose signal needs the removed next bar
    assert msg.startswith("peek: ") and "signal at bar" in msg and "cut after bar" in msg
    bar = int(msg.split("signal at bar ")[1].split(" ")[0])
    cut = int(msg.split("cut after bar ")[1].split(" ")[0])
    assert bar == cut  # shift(-1) changes exactly the last bar before the cut


def test_causal_function_passes_and_cuts_are_reproducible(candles):
    a = check_lookahead(causal_function, candles, n_cuts=10, seed=3)
    b = check_lookahead(causal_function, candles, n_cuts=10, seed=3)
    c = check_lookahead(causal_function, candles, n_cuts=10)
    assert a.cuts == b.cuts and a.name == "causal_function" and a.seed == 3
    assert c.seed != 3 or c.cuts != a.cuts  # a new seed each run, recorded in the report
    assert {1, 2, 4, 8, 16, 32, 64} <= set(a.cuts)  # the early ladder catches back-filled warm-ups


@pytest.mark.parametrize("call, exc, match", [
    (lambda c: check_lookahead("nope", c), ConfigError, "entry set 'nope': expected one of"),
    (lambda c: check_lookahead("sma_cross", c, {"fast": 50, "slow": 10}), ConfigError, "fast = 50 must be below slow = 10"),
    (lambda c: check_lookahead(lambda d: (np.zeros(3, bool), np.zeros(3, bool)), c), DataError, "shapes"),
    (lambda c: check_lookahead(causal_function, c.iloc[:2]), DataError, "at least 3 candles"),
    (lambda c: check_lookahead(causal_function, c, n_cuts=0), ConfigError, "n_cuts = 0"),
])
def test_bad_inputs(candles, call, exc, match):
    with pytest.raises(exc, match=match):
        call(candles)


def test_cli_clean_exit_0(capsys):
    from jobs import backtest as cli

    assert cli.main(["--check-lookahead", "--cuts", "5", "-q"]) == 0
    out = capsys.readouterr().out
    for name in load_entries().entry_sets:
        assert f"{name}: no lookahead" in out


def test_cli_catches_a_user_function_exit_2_one_line(tmp_path, monkeypatch, capsys):
    from jobs import backtest as cli

    (tmp_path / "my_peeking_signals.py").write_text(textwrap.dedent('''
        def peek(candles):
            close = candles["close"]
            return (close.shift(-1) > close).to_numpy(), (close.shift(-1) < close).to_numpy()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["--check-lookahead", "--entry", "my_peeking_signals:peek", "--cuts", "5", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "LookaheadError: my_peeking_signals:peek: " in err and "at bar" in err
    sys.modules.pop("my_peeking_signals", None)


@pytest.mark.parametrize("argv, match", [
    (["--check-lookahead", "--entry", "nope"], "--entry 'nope': expected an entry set"),
    (["--check-lookahead", "--entry", "nomodule_xyz:f"], "cannot import module 'nomodule_xyz'"),
    (["--check-lookahead", "--cuts", "0"], "--cuts 0"),
])
def test_cli_bad_flags(capsys, argv, match):
    from jobs import backtest as cli

    assert cli.main(argv + ["-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_a_signal_that_caches_values_from_its_first_call_is_caught(candles):
    from tests.engine.backtest import peeking_signals

    peeking_signals._CACHE.clear()
    with pytest.raises(LookaheadError, match="cached_peek: entry signal at bar"):
        check_lookahead(peeking_signals.cached_peek, candles, n_cuts=10, seed=1)


def test_a_sparse_oracle_is_caught_in_at_least_19_of_20_seeds():
    from tests.conftest import _read_sample
    from tests.engine.backtest.peeking_signals import sparse_oracle

    long = _read_sample("BTCUSDT").iloc[:20_000]
    assert sparse_oracle(long)[0].sum() == 20  # about 20 entries in 20,000 bars, 5 bars ahead
    caught = 0
    for seed in range(20):
        try:
            check_lookahead(sparse_oracle, long, n_cuts=50, seed=seed)
        except LookaheadError:
            caught += 1
    assert caught >= 19


def test_a_backfilled_warm_up_is_caught(candles):
    from tests.engine.backtest.peeking_signals import backfilled_warmup

    for seed in range(5):
        with pytest.raises(LookaheadError, match=r"backfilled_warmup: (entry|exit) signal at bar ([0-9]|[1-3][0-9]) "):
            check_lookahead(backfilled_warmup, candles, n_cuts=50, seed=seed)


def test_cuts_sit_on_signal_bars_and_the_early_ladder():
    from engine.backtest.lookahead import cut_points

    entries = np.zeros(1000, dtype=bool)
    entries[[100, 500, 998, 999]] = True  # bar 999 cannot be a cut (the full series itself)
    cuts, on = cut_points(entries, np.zeros(1000, bool), n_cuts=5, n_signal_cuts=10, seed=0)
    assert on == 3 and {100, 500, 998} <= set(cuts.tolist()) and 999 not in cuts
    assert {1, 2, 4, 8, 16, 32, 64, 128, 256, 512} <= set(cuts.tolist())  # the early ladder
