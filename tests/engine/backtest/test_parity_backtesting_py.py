"""Peer parity: the same sma_cross strategy in backtesting.py 0.6.6 and in SCALP give the same trades.

Like with like (issue 3, item 7):

- backtesting.py fills market orders at the next open, as SCALP does.
- It sizes all-in in whole units: SCALP runs with ``lot_size_base=1.0``. With BTC near 58,000
  USDT both start with 1,000,000 USDT so a position is ~17 BTC.
- Fixed TP/SL levels are set in ``next()`` of the entry bar from ``trade.entry_price`` (the fill),
  so backtesting.py first checks them on the bar *after* the fill: SCALP runs with
  ``check_entry_bar=False`` (its default, per DESIGN.md, checks the entry bar too).
- On the exit signal the strategy cancels the SL/TP orders before ``position.close()``: otherwise
  backtesting.py processes its contingent orders before the market close and can fill the stop
  inside the bar although the close was due at the open. SCALP's rule: a pending exit signal
  fills at the open (a gap through the stop or target at that open fills at the same price).
- Both: stop first when one bar touches stop and target; gaps fill at the open; fees per side on
  notional (``commission`` = fee rate); no slippage (``spread`` 0).
- At the end backtesting.py leaves the last trade open and marks it to the last close; SCALP
  sells it at the last close (reason ``end``) and pays the exit fee. So the closed trades are
  compared with SCALP's trades minus an ``end`` trade, and the final equity with SCALP's final
  equity + that exit fee. Both use the same SMA arrays (SCALP's), so only the simulators differ.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402

from engine.strategy import indicators_nb as indicators  # noqa: E402
from engine.backtest import run_backtest  # noqa: E402
from engine.strategy.exits import Costs, ExitPlan  # noqa: E402
from tests.engine.backtest.reference_simulator import load_sample_slice  # noqa: E402

CASH = 1_000_000.0
FAST, SLOW = 10, 30


@pytest.fixture(scope="module")
def candles():
    return load_sample_slice("BTCUSDT", 10_000, 4000)


def run_peer(candles: pd.DataFrame, tp_pct: float | None, sl_pct: float | None, fee_rate: float):
    fast = indicators.sma_nb(candles["close"].to_numpy(), FAST)
    slow = indicators.sma_nb(candles["close"].to_numpy(), SLOW)

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(lambda: fast, name="fast")
            self.slow = self.I(lambda: slow, name="slow")

        def next(self):
            for trade in self.trades:  # levels from the fill price, live from the next bar
                if sl_pct is not None and trade.sl is None:
                    trade.sl = trade.entry_price * (1.0 + sl_pct / 100.0)
                if tp_pct is not None and trade.tp is None:
                    trade.tp = trade.entry_price * (1.0 + tp_pct / 100.0)
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy()
            elif crossover(self.slow, self.fast) and self.position:
                for trade in self.trades:
                    trade.sl = None
                    trade.tp = None
                self.position.close()

    data = candles.rename(columns=str.capitalize)
    data.index = data.index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(data, SmaCross, cash=CASH, commission=fee_rate, spread=0.0).run()
    return stats


@pytest.mark.parametrize("tp_pct, sl_pct, fee_bps", [
    (None, None, 0.0),     # pure crossover, no costs
    (None, None, 10.0),    # crossover with 0.1 % fee per side
    (0.4, -0.3, 10.0),     # fixed TP/SL from the fill price, with fees
])
def test_same_trades_and_final_equity_as_backtesting_py(candles, tp_pct, sl_pct, fee_bps):
    peer = run_peer(candles, tp_pct, sl_pct, fee_bps / 10_000.0)
    plan = ExitPlan.only(tp_ladder=((tp_pct, 100.0),) if tp_pct else (), sl_pct=sl_pct, check_entry_bar=False,
                    lot_size_base=1.0)
    ours = run_backtest(candles, "sma_cross", {"fast": FAST, "slow": SLOW}, plan, Costs(fee_bps, 0.0),
                        timeframe="1m", initial_cash_quote=CASH)
    t = ours.trades
    end_fee = 0.0
    if len(t) and t["exit_reason"].iloc[-1] == "end":
        end_fee = float(ours.legs["fee_quote"].iloc[-1])
        t = t.iloc[:-1]
    p = peer._trades
    assert len(p) == len(t) > 20
    np.testing.assert_array_equal(p["EntryBar"].to_numpy(), t["entry_bar"].to_numpy())
    np.testing.assert_array_equal(p["ExitBar"].to_numpy(), t["exit_bar"].to_numpy())
    np.testing.assert_array_equal(p["Size"].to_numpy(), t["qty_base"].to_numpy())
    np.testing.assert_allclose(p["EntryPrice"].to_numpy(), t["entry_price"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(p["ExitPrice"].to_numpy(), t["exit_price"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(p["PnL"].to_numpy(), t["pnl_quote"].to_numpy(), rtol=1e-9, atol=1e-6)
    peer_equity = peer._equity_curve["Equity"].to_numpy()
    np.testing.assert_allclose(peer_equity[:-1], ours.equity.to_numpy()[:-1], rtol=1e-12)
    assert peer_equity[-1] == pytest.approx(ours.equity.iloc[-1] + end_fee, rel=1e-12)
    if tp_pct:  # the TP/SL case exercises both exits
        assert {"tp1", "sl"} <= set(ours.legs["reason"])
