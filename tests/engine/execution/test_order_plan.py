"""Order plans: prices from the one exit model, quantities split and rounded by the market's rules
(read by the real ccxt client from the local exchange server), small legs merged with a note."""
from __future__ import annotations

import math

import pytest

from engine import exchange as ex
from engine.errors import ConfigError, GuardError
from engine.exchange.precision import MarketRules
from engine.execution.order_plan import build_order_plan
from engine.strategy.exits import ExitPlan
from tests.exchange_server import ExchangeServer

DEFAULT = ExitPlan()  # ladder 0.9:50,1.4:30,2.1:20, stop -0.5 %, breakeven +0.05 % after TP1


@pytest.fixture(scope="module")
def btc() -> MarketRules:
    """BTC/USDT as ccxt parses the exchange's own market data (LOT_SIZE step 0.00001, tick 0.000001)."""
    with ExchangeServer(pairs=["BTCUSDT"]).start() as server:
        client = ex.make_exchange("binance", urls=server.url, timeout_ms=3000)
        markets = ex.ensure_markets(client)
    return MarketRules.from_ccxt_market(markets["BTC/USDT"])


def test_rules_come_from_ccxt_market_data(btc):
    assert btc.symbol == "BTC/USDT" and btc.amount_step == pytest.approx(1e-5) and btc.price_step == pytest.approx(1e-6)
    assert btc.min_amount == pytest.approx(1e-5)


def test_prices_are_the_exit_models_and_legs_sum_to_the_entry(btc):
    plan = build_order_plan(DEFAULT, btc, reference_price=28440.0, notional_quote=100.0)
    assert plan.entry.side == "buy" and plan.entry.order_type == "limit" and plan.entry.price == 28440.0
    assert plan.entry.quantity_base == 0.00351  # 100 / 28440 = 0.003516… truncated to 0.00001
    levels = DEFAULT.levels(28440.0)
    assert [tp.price for tp in plan.take_profits] == [round(p, 6) for p in levels.take_profit]
    assert [tp.step for tp in plan.take_profits] == [1, 2, 3]
    assert [tp.quantity_base for tp in plan.take_profits] == [0.00175, 0.00105, 0.00071]
    assert math.isclose(sum(tp.quantity_base for tp in plan.take_profits), plan.entry.quantity_base, abs_tol=1e-12)
    assert plan.stop_loss.price == pytest.approx(28440.0 * 0.995) and plan.stop_loss.quantity_base == 0.00351
    # after TP1 the stop moves to entry + 0.05 % for what is left
    assert plan.breakeven_stop.price == pytest.approx(28440.0 * 1.0005)
    assert plan.breakeven_stop.quantity_base == pytest.approx(0.00351 - 0.00175)
    assert plan.trailing_stop is None and plan.notes == ()
    assert [leg.role for leg in plan.legs] == ["entry", "take_profit", "take_profit", "take_profit", "stop_loss",
                                               "breakeven_stop"]


def test_a_leg_below_the_minimum_is_merged_with_a_note_never_dropped():
    market = MarketRules("BTC/USDT", amount_step=1e-4, price_step=0.1, min_amount=1e-4, min_cost=5.0)
    plan = build_order_plan(DEFAULT, market, reference_price=30000.0, notional_quote=15.0)  # 0.0005 BTC
    # 50/30/20 % of 0.0005 = 0.00025→0.0002, 0.00015→0.0001 (3.04 quote at TP2 < 5), rest 0.0002
    assert [tp.step for tp in plan.take_profits] == [1, 3]
    assert sum(tp.quantity_base for tp in plan.take_profits) == pytest.approx(plan.entry.quantity_base)
    assert plan.notes == ("TP2 notional 3.042 < minimum cost 5: merged into TP3",)


def test_breakeven_with_every_leg_merged_into_tp1_moves_no_empty_stop():
    # 10 quote at 59000 = 0.00016 BTC; each leg is below 5 quote, so all merge into one take-profit that sells
    # everything: after it fills nothing is left, and a breakeven amend of 0 BTC would be refused by Kraken
    from engine.execution.kraken_plan import plan_messages
    from engine.execution.tunables import Tunables

    market = MarketRules("BTC/USDT", amount_step=1e-5, price_step=0.01, min_cost=5.0)
    plan = build_order_plan(DEFAULT, market, reference_price=59000.0, notional_quote=10.0)
    assert len(plan.take_profits) == 1 and plan.take_profits[0].quantity_base == plan.entry.quantity_base
    assert plan.breakeven_stop is None and plan.stop_loss is not None
    assert plan.notes[-1] == f"breakeven: TP{plan.take_profits[0].step} sells the whole quantity, no stop left to move"
    methods = [m["method"] for m in plan_messages(plan, tunables=Tunables(), now_ms=1_700_000_000_000)]
    assert methods == ["add_order", "add_order"]


def test_an_entry_below_the_minimum_is_rejected_naming_the_rule():
    market = MarketRules("BTC/USDT", amount_step=1e-4, min_amount=1e-3)
    with pytest.raises(GuardError, match=r"BTC/USDT: entry of 10 quote at 30000 rejected: quantity 0.0003 < "
                                          r"minimum amount 0.001"):
        build_order_plan(DEFAULT, market, reference_price=30000.0, notional_quote=10.0)


def test_market_entry_trailing_and_atr_stops():
    market = MarketRules("ETH/USDT", amount_step=1e-4, price_step=0.01)
    plan = build_order_plan(ExitPlan.only(tp_ladder="1:100", sl_atr_mult=2.0, trail_atr_mult=1.5), market,
                            reference_price=2000.0, notional_quote=500.0, entry_type="market", atr=12.345)
    assert plan.entry.order_type == "market" and plan.entry.price is None and plan.entry.quantity_base == 0.25
    assert plan.stop_loss.price == pytest.approx(2000.0 - 24.69) and plan.breakeven_stop is None
    assert plan.trailing_stop.trail_quote == pytest.approx(18.52) and plan.trailing_stop.quantity_base == 0.25
    pct = build_order_plan(ExitPlan.only(trail_pct=1.0), market, reference_price=2000.0, notional_quote=500.0)
    assert pct.take_profits == () and pct.stop_loss is None and pct.trailing_stop.trail_pct == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"reference_price": 0.0}, r"reference_price = 0.0: expected a finite number > 0"),
    ({"notional_quote": float("nan")}, r"notional_quote = nan: expected a finite number > 0"),
    ({"entry_type": "stop"}, r"entry_type = 'stop': expected 'limit' or 'market'"),
])
def test_bad_inputs_name_the_argument(kwargs, match):
    args = {"reference_price": 100.0, "notional_quote": 50.0, **kwargs}
    with pytest.raises(ConfigError, match=match):
        build_order_plan(DEFAULT, MarketRules("X/USDT"), **args)


@pytest.mark.parametrize("market, match", [
    ({"precision": {"amount": 0.1}}, r"expected a ccxt market with a 'symbol'"),
    ({"symbol": "X/USDT", "precision": {"amount": -1}}, r"market X/USDT: precision.amount = -1: expected a number > 0"),
])
def test_bad_market_data_names_the_field(market, match):
    with pytest.raises(ConfigError, match=match):
        MarketRules.from_ccxt_market(market)


def test_decimal_places_precision_mode():
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES

    rules = MarketRules.from_ccxt_market({"symbol": "X/USD", "precision": {"amount": 3, "price": 1}},
                                         precision_mode=DECIMAL_PLACES)
    assert rules.amount(1.23456) == 1.234 and rules.price(10.26) == 10.3
