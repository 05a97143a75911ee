"""The Kraken WS v2 transport round-trips against a local server that answers like the docs."""
from __future__ import annotations

import asyncio

import pytest

from engine.errors import ExchangeError, TemporaryExchangeError
from engine.exchange.kraken_ws import KrakenWs
from engine.execution import kraken_payloads as kp
from tests.kraken_ws_server import KrakenWsServer
from tests.services import free_port


@pytest.fixture
def server():
    s = KrakenWsServer()
    yield s
    s.stop()


def test_validate_only_order_is_acknowledged_and_never_matched(server):
    async def go():
        async with KrakenWs(server.url, server.token) as ws:
            await ws.subscribe_executions()
            msg = kp.add_order(symbol="BTC/USD", side="buy", order_qty=0.001, limit_price=28_440, post_only=True,
                               secondary=kp.Secondary("stop-loss-limit", limit_price=28_400, trigger_price=28_410))
            reply = await ws.request(msg)
            return reply, ws.executions

    reply, executions = asyncio.run(go())
    assert reply["success"] and reply["result"]["order_id"].startswith("O")
    assert server.received[-1]["params"]["validate"] is True and server.received[-1]["params"]["token"] == server.token
    assert not [r for r in executions if r.get("exec_type") == "trade"]


def test_a_live_order_on_the_local_server_fills_and_reports_on_executions(server):
    async def go():
        async with KrakenWs(server.url, server.token) as ws:
            ack = await ws.subscribe_executions(snap_trades=True)
            msg = kp.add_order(symbol="BTC/USD", side="buy", order_qty=0.001, order_type="market", validate=False,
                               cl_ord_id="scalp-1")
            reply = await ws.request(msg)
            order_id = reply["result"]["order_id"]
            fill = await ws.wait_for_execution(lambda r: r.get("order_id") == order_id and r.get("exec_type") == "trade")
            stop = kp.add_order(symbol="BTC/USD", side="sell", order_qty=0.001, order_type="stop-loss",
                                trigger=kp.Trigger(28_300), validate=False)
            stop_id = (await ws.request(stop))["result"]["order_id"]
            amended = await ws.request(kp.amend_order(order_id=stop_id, trigger_price=28_445))  # breakeven
            await ws.wait_for_execution(lambda r: r.get("order_id") == stop_id and r.get("exec_type") == "amended")
            cancel = await ws.request(kp.cancel_order(order_ids=[stop_id]))
            canceled = await ws.wait_for_execution(lambda r: r.get("order_id") == stop_id and r.get("exec_type") == "canceled")
            return ack, reply, fill, amended, cancel, canceled

    ack, reply, fill, amended, cancel, canceled = asyncio.run(go())
    assert ack["result"]["channel"] == "executions" and reply["result"]["cl_ord_id"] == "scalp-1"
    assert fill["last_qty"] == 0.001 and fill["last_price"] == 28_440 and fill["order_status"] == "filled"
    assert fill["fees"][0]["asset"] == "USD"
    assert amended["result"]["amend_id"] and cancel["result"]["order_id"] == canceled["order_id"]


def test_refusals_and_transport_failures_are_engine_errors(server):
    async def bad_token():
        async with KrakenWs(server.url, "wrong") as ws:
            await ws.request(kp.cancel_order(order_ids=["O1"]))

    with pytest.raises(ExchangeError, match="kraken cancel_order: ESession:Invalid session"):
        asyncio.run(bad_token())

    async def unknown():
        async with KrakenWs(server.url, server.token) as ws:
            await ws.request(kp.cancel_order(order_ids=["NOPE"]))

    with pytest.raises(ExchangeError, match="EOrder:Unknown order"):
        asyncio.run(unknown())

    async def nobody():
        async with KrakenWs(f"ws://127.0.0.1:{free_port()}/v2", "t", timeout_s=2):
            pass

    with pytest.raises(TemporaryExchangeError, match="cannot connect"):
        asyncio.run(nobody())
