"""Executors: the ccxt executor against the local exchange server playing Binance, Kraken and Bitvavo
(tests/exchange_private.py; never a real exchange), and the dry-run executor with every socket refused."""
from __future__ import annotations

import socket
import uuid

import ccxt
import pytest

from engine.errors import ExchangeError, GuardError, PayloadError, TemporaryExchangeError
from engine.exchange import make_exchange
from engine.exchange.precision import MarketRules
from engine.exchange.retry import RetryPolicy
from engine.execution.ccxt_executor import CcxtExecutor
from engine.execution.events import EventLog, read_events
from engine.execution.executors import DryRunExecutor, OrderRecord
from engine.execution.guards import Decision
from engine.execution.order_plan import OrderLeg, build_order_plan
from engine.strategy.exits import ExitPlan
from tests.exchange_private import OrderExchangeServer

EXCHANGES = ("binance", "kraken", "bitvavo")
SECRETS = {f"{e}_{k}": v for e in ("BINANCE", "KRAKEN", "BITVAVO")
           for k, v in (("API_KEY", "test-key"), ("API_SECRET", "dGVzdC1zZWNyZXQ="))}  # Kraken: base64
SECRETS["BITVAVO_OPERATOR_ID"] = "42"
LIVE, VALIDATE = Decision(True, "live"), Decision(True, "validate-only")
#: The request that places an order, per exchange.
PLACE = {"binance": "POST /api/v3/order", "kraken": "POST /0/private/AddOrder", "bitvavo": "POST /v2/order"}
TS_MS = 1_620_000_000_000


@pytest.fixture(params=EXCHANGES)
def server(request):
    with OrderExchangeServer(request.param, ["BTCUSDT"]) as s:
        yield s


def executor(server: OrderExchangeServer, mode: str = "live", *, secrets=SECRETS, log=None) -> CcxtExecutor:
    return CcxtExecutor(server.exchange_id, mode, secrets=secrets, log=log, urls=server.url, timeout_ms=3000,
                        rate_limit_ms=1, read_retry=RetryPolicy(max_attempts=1), sleep=lambda s: None)


def place(ex: CcxtExecutor, leg: OrderLeg, decision: Decision = LIVE) -> OrderRecord:
    return ex.place(leg, symbol="BTC/USDT", strategy="BTCUSDT_1h_momentum", timeframe="1h", decision=decision,
                    ts_ms=TS_MS)


def limit_entry(server: OrderExchangeServer) -> OrderLeg:
    return OrderLeg("entry", "buy", "limit", 0.001, round(server.price("BTCUSDT") * 0.9, 1))  # rests below the price


def test_limit_entry_live_is_placed_fetched_and_canceled(server, tmp_path):
    log = EventLog(tmp_path, use_env=False)
    ex = executor(server, log=log)
    record = place(ex, limit_entry(server))
    assert record.status == "open" and record.mode == "live" and record.exchange_id is not None
    [resting] = server.open_orders()
    assert resting.id == record.exchange_id and resting.amount == 0.001 and resting.price == record.price
    assert resting.client_id == record.detail.get("exchange_client_id", record.client_id)
    assert ex.fetch_order(record).status == "open"
    canceled = ex.cancel(record, ts_ms=TS_MS + 60_000, timeframe="1h")
    assert canceled.status == "canceled" and server.open_orders() == []
    assert ex.fetch_order(record).status == "canceled" and ex.fills(record) == []
    events = read_events(tmp_path, kinds=["order"])
    assert [e["status"] for e in events["data"]] == ["open", "canceled"] and set(events["mode"]) == {"live"}


def test_market_entry_fills_at_the_servers_price_and_fills_returns_it(server):
    ex = executor(server)
    record = place(ex, OrderLeg("entry", "buy", "market", 0.002))
    price = server.price("BTCUSDT")
    # Binance and Bitvavo answer the fill at once; Kraken's AddOrder answers only the order id
    assert record.status == ("open" if server.exchange_id == "kraken" else "filled")
    assert ex.fetch_order(record).status == "filled"
    [fill] = ex.fills(record)
    assert (fill.exchange_order_id, fill.client_id, fill.side) == (record.exchange_id, record.client_id, "buy")
    assert fill.quantity_base == pytest.approx(0.002) and fill.price == pytest.approx(price)
    assert fill.fee == pytest.approx(0.002 * price * 0.001, rel=1e-3) and fill.fee_currency == "USDT"
    assert fill.liquidity == "taker" and fill.mode == "live"


def test_a_resting_limit_order_filled_by_the_exchange_shows_its_fill(server):
    ex = executor(server)
    record = place(ex, limit_entry(server))
    server.fill(record.exchange_id)
    assert ex.fetch_order(record).status == "filled"
    [fill] = ex.fills(record)
    assert fill.price == pytest.approx(record.price) and fill.liquidity == "maker"
    with pytest.raises(ExchangeError, match=server.exchange_id):  # no longer open: the exchange refuses
        ex.cancel(record, ts_ms=TS_MS)


@pytest.mark.parametrize("exchange_id, path, flag", [
    ("binance", "POST /api/v3/order/test", None),
    ("kraken", "POST /0/private/AddOrder", ("validate", "true")),
])
def test_validate_only_goes_to_the_validate_path_and_places_nothing(exchange_id, path, flag, tmp_path):
    with OrderExchangeServer(exchange_id, ["BTCUSDT"]) as server:
        log = EventLog(tmp_path, use_env=False)
        ex = executor(server, "validate-only", log=log)
        record = place(ex, limit_entry(server), VALIDATE)
        assert record.status == "validated" and record.exchange_id is None and record.mode == "validate-only"
        assert server.orders == {} and server.count(PLACE[exchange_id]) == (1 if exchange_id == "kraken" else 0)
        assert server.count(path, **dict([flag] if flag else [])) == 1
        assert ex.cancel(record, ts_ms=TS_MS).status == "canceled" and ex.fills(record) == []  # placed nowhere
        assert [r.endpoint for r in server.requests if r.endpoint.startswith(("POST", "DELETE"))] == [path]
    assert list(read_events(tmp_path, kinds=["order"])["mode"]) == ["validate-only", "validate-only"]


def test_bitvavo_validate_only_is_refused_naming_the_rule_and_sends_nothing():
    with OrderExchangeServer("bitvavo", ["BTCUSDT"]) as server:
        ex = executor(server, "validate-only")
        with pytest.raises(PayloadError, match="bitvavo: validate-only refused: Bitvavo has no validate-only"):
            place(ex, limit_entry(server), VALIDATE)
        assert server.requests == []


@pytest.mark.parametrize("mode, decision", [
    ("live", Decision(False, "live", ("ENTRY_MAX_NOTIONAL: entry notional 60.00 > 10 (quote)",))),
    ("live", Decision(True, "dry-run", ("dry-run: ALLOW_LIVE is 0",))),
    ("live", Decision(True, "validate-only")),
    ("validate-only", Decision(True, "live")),
])
def test_a_blocked_decision_or_one_of_another_mode_raises_and_sends_nothing(server, mode, decision, tmp_path):
    log = EventLog(tmp_path, use_env=False)
    ex = executor(server, mode, log=log)
    with pytest.raises(GuardError, match="blocked by the guards: ENTRY_MAX|decision for .* given to the"):
        place(ex, limit_entry(server), decision)
    assert server.requests == [] and read_events(tmp_path).empty


def test_live_without_api_keys_is_refused_before_any_request(server):
    secrets = {k: v for k, v in SECRETS.items() if not k.startswith(server.exchange_id.upper())}
    ex = executor(server, secrets=secrets)
    with pytest.raises(GuardError, match=f"no {server.exchange_id.upper()}_API_KEY / _API_SECRET.*nothing sent"):
        place(ex, limit_entry(server))
    assert server.requests == []


def test_insufficient_funds_comes_back_as_an_exchange_error_naming_the_exchange(server):
    server.refuse_next(PLACE[server.exchange_id])
    with pytest.raises(ExchangeError, match=f"^{server.exchange_id} live entry buy BTC/USDT .*InsufficientFunds") as e:
        place(executor(server), limit_entry(server))
    assert not isinstance(e.value, TemporaryExchangeError) and server.orders == {}


def test_a_5xx_comes_back_as_a_temporary_error_and_the_order_is_not_resent(server):
    server.inject(PLACE[server.exchange_id], "status", status=503)
    with pytest.raises(TemporaryExchangeError, match=f"^{server.exchange_id} live .*ExchangeNotAvailable.*look it up "
                                                     "by its client id"):
        place(executor(server), limit_entry(server))
    assert server.count(PLACE[server.exchange_id]) == 1


STOP = OrderLeg("stop_loss", "sell", "stop", 0.001, 50_000.0)
TRAIL_PCT = OrderLeg("trailing_stop", "sell", "trailing_stop", 0.001, trail_pct=1.5)
TRAIL_QUOTE = OrderLeg("trailing_stop", "sell", "trailing_stop", 0.001, trail_quote=150.0)


@pytest.mark.parametrize("exchange_id, leg, sent", [
    # a stop leg is the exchange's market stop-loss (ccxt stopLossPrice)
    ("binance", STOP, {"type": "STOP_LOSS", "stopPrice": "50000", "side": "SELL"}),
    ("kraken", STOP, {"ordertype": "stop-loss", "price": "50000", "type": "sell"}),
    ("bitvavo", STOP, {"orderType": "stopLoss", "triggerAmount": "50000", "triggerType": "price"}),
    # trailing: Binance in whole basis points, Kraken + offset in percent or quote
    ("binance", TRAIL_PCT, {"type": "STOP_LOSS", "trailingDelta": "150"}),
    ("kraken", TRAIL_PCT, {"ordertype": "trailing-stop", "price": "+1.5%", "trigger": "last"}),
    ("kraken", TRAIL_QUOTE, {"ordertype": "trailing-stop", "price": "+150"}),
])
def test_stop_and_trailing_legs_become_the_exchanges_own_order_types(exchange_id, leg, sent):
    with OrderExchangeServer(exchange_id, ["BTCUSDT"]) as server:
        record = place(executor(server), leg)
        assert record.status == "open" and len(server.open_orders()) == 1
        assert server.count(PLACE[exchange_id], **sent) == 1
        assert record.price == leg.price and record.order_type == leg.order_type


@pytest.mark.parametrize("exchange_id, leg, message", [
    ("binance", TRAIL_QUOTE, "binance: trailing stop of 150 quote refused: .*no distance in quote currency"),
    ("binance", OrderLeg("trailing_stop", "sell", "trailing_stop", 0.001, trail_pct=1.555),
     "binance: trailing stop of 1.555 % = 155.5 BIPS refused: trailingDelta is a whole number"),
    ("bitvavo", TRAIL_PCT, "bitvavo: trailing stop refused: .*there is no trailing stop"),
    ("bitvavo", TRAIL_QUOTE, "bitvavo: trailing stop of 150 quote refused"),
    ("kraken", OrderLeg("stop_loss", "sell", "stop", 0.001, None), "kraken: stop_loss stop leg without a trigger"),
    ("kraken", OrderLeg("entry", "buy", "iceberg", 0.001, 100.0), "kraken: order type 'iceberg'"),
])
def test_a_leg_the_exchange_cannot_take_is_refused_naming_the_rule_before_sending(exchange_id, leg, message):
    with OrderExchangeServer(exchange_id, ["BTCUSDT"]) as server:
        with pytest.raises(PayloadError, match=message):
            place(executor(server), leg)
        assert server.count(PLACE[exchange_id]) == 0


def test_binance_market_without_stop_loss_type_refuses_a_stop_leg():
    with OrderExchangeServer("binance", ["BTCUSDT"], order_types=["LIMIT", "MARKET", "STOP_LOSS_LIMIT"]) as server:
        with pytest.raises(PayloadError, match="binance BTC/USDT: the market lists no STOP_LOSS order type"):
            place(executor(server), STOP)
        assert server.count(PLACE["binance"]) == 0


def test_bitvavo_needs_an_operator_id_and_gets_a_uuid_client_id():
    with OrderExchangeServer("bitvavo", ["BTCUSDT"]) as server:
        without = {k: v for k, v in SECRETS.items() if k != "BITVAVO_OPERATOR_ID"}
        with pytest.raises(PayloadError, match="bitvavo: operatorId is required.*BITVAVO_OPERATOR_ID"):
            place(executor(server, secrets=without), limit_entry(server))
        assert server.requests == []
        record = place(executor(server), limit_entry(server))
        sent = record.detail["exchange_client_id"]
        assert uuid.UUID(sent) == uuid.uuid5(uuid.NAMESPACE_URL, "scalp:" + record.client_id)
        assert server.count("POST /v2/order", clientOrderId=sent, operatorId="42") == 1


def test_a_record_of_another_mode_is_refused(server):
    shadow = DryRunExecutor().place(limit_entry(server), symbol="BTC/USDT", strategy="s", timeframe="1h",
                                    decision=Decision(True, "dry-run"), ts_ms=TS_MS)
    ex = executor(server)
    for call in (lambda: ex.cancel(shadow, ts_ms=TS_MS), lambda: ex.fetch_order(shadow), lambda: ex.fills(shadow)):
        with pytest.raises(GuardError, match="a dry-run order given to the live executor"):
            call()
    assert server.requests == []


# ---------------------------------------------------------------- dry-run: no network at all
@pytest.fixture
def no_network(monkeypatch):
    """Refuse every DNS lookup and connection; return the list of attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access refused by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_nothing_reaches_the_network_in_dry_run(no_network, tmp_path):
    market = MarketRules("BTC/USDT", amount_step=1e-5, price_step=0.01, min_amount=1e-5, min_cost=5.0)
    plan = build_order_plan(ExitPlan(trail_pct=1.0), market, reference_price=28440.0, notional_quote=100.0)
    assert [leg.role for leg in plan.legs] == ["entry", "take_profit", "take_profit", "take_profit", "stop_loss",
                                               "breakeven_stop", "trailing_stop"]
    log = EventLog(tmp_path, use_env=False)
    ex = DryRunExecutor(log)
    records = [ex.place(leg, symbol=plan.symbol, strategy="BTCUSDT_1h_momentum", timeframe="1h",
                        decision=Decision(True, "dry-run"), ts_ms=TS_MS, client_id=f"scalp-test-{i}")
               for i, leg in enumerate(plan.legs)]
    assert [r.status for r in records] == ["shadow"] * 7 and {r.mode for r in records} == {"dry-run"}
    assert [r.price for r in records] == [leg.price for leg in plan.legs] and records[-1].detail == {"trail_pct": 1.0}
    assert ex.fetch_order(records[0]) == records[0] and ex.fills(records[0]) == []
    assert ex.cancel(records[1], ts_ms=TS_MS + 1).status == "canceled"
    events = read_events(tmp_path, kinds=["order"])
    assert list(events["data"].map(lambda d: d["client_id"])) == [f"scalp-test-{i}" for i in range(7)] + ["scalp-test-1"]
    assert list(events["data"].map(lambda d: d["status"])) == ["shadow"] * 7 + ["canceled"]
    assert no_network == []
    # the same patch does stop a ccxt request (a local address, so a patch that failed still reaches nothing)
    client = make_exchange("binance", urls="http://127.0.0.1:9", timeout_ms=500)
    with pytest.raises(ccxt.NetworkError, match="127.0.0.1:9/api/v3/exchangeInfo"):
        client.load_markets()
    assert no_network and "127.0.0.1" in repr(no_network)  # stopped by the patch, at the DNS lookup
