"""A local WebSocket server that answers like Kraken's WS v2 documentation (tests only; loopback).

- ``add_order``: rules checked with engine.execution.kraken_rules; a broken one answers
  ``success: false`` with ``EGeneral:Invalid arguments``; ``validate: true`` answers success with an
  order id and nothing on executions (validated, never matched); otherwise the order is accepted:
  executions get ``pending_new`` and ``new``, and a market order (or a limit buy at or above the
  server's ``last_price``) also a ``trade`` fill at ``last_price`` and ``filled``.
- ``cancel_order``: one response per id, executions ``canceled``.
- ``amend_order``: ``amend_id``, executions ``amended``.
- ``subscribe`` to ``executions``: ack with ``maxratecount``, then a snapshot of open orders.
- The token must equal the server's; a wrong one answers ``EAPI:Invalid token`` (ESession).
Response and report fields follow the docs' examples (add_order, executions pages).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
from datetime import datetime, timezone

import websockets

from engine.execution.kraken_rules import broken_rules


def _now() -> str:
    return datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KrakenWsServer:
    def __init__(self, token: str = "test-token", last_price: float = 28_440.0) -> None:
        self.token = token
        self.last_price = last_price
        self.received: list[dict] = []
        self.orders: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main():
            self._server = await websockets.serve(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{self.port}/v2"
            self._ready.set()
            await self._server.wait_closed()

        self._loop.run_until_complete(main())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(5)

    async def _handle(self, ws) -> None:
        subscribed = False
        async for raw in ws:
            msg = json.loads(raw)
            self.received.append(msg)
            method, params, req_id = msg.get("method"), msg.get("params", {}), msg.get("req_id")
            base = {"method": method, "req_id": req_id, "time_in": _now(), "time_out": _now()}
            if params.get("token") != self.token:
                await ws.send(json.dumps({**base, "success": False, "error": "ESession:Invalid session"}))
                continue
            if method == "subscribe" and params.get("channel") == "executions":
                subscribed = True
                await ws.send(json.dumps({**base, "success": True, "result": {
                    "channel": "executions", "maxratecount": 180, "snapshot": True}}))
                await ws.send(json.dumps({"channel": "executions", "type": "snapshot", "sequence": 1,
                                          "data": [o for o in self.orders.values() if o["order_status"] == "new"]}))
                continue
            if method in ("add_order", "amend_order", "cancel_order"):
                check = dict(msg)
                rules = broken_rules(check, int(datetime.now(tz=timezone.utc).timestamp() * 1000))
                if rules:
                    await ws.send(json.dumps({**base, "success": False,
                                              "error": f"EGeneral:Invalid arguments ({', '.join(rules)})"}))
                    continue
            if method == "add_order":
                order_id = f"O{next(self._ids):05d}-TEST-LOCAL"
                result = {"order_id": order_id}
                if params.get("cl_ord_id"):
                    result["cl_ord_id"] = params["cl_ord_id"]
                await ws.send(json.dumps({**base, "success": True, "result": result}))
                if params.get("validate"):
                    continue
                order = {"order_id": order_id, "symbol": params["symbol"], "side": params["side"],
                         "order_type": params["order_type"], "order_qty": params["order_qty"],
                         "limit_price": params.get("limit_price"), "order_status": "new",
                         "cl_ord_id": params.get("cl_ord_id"), "timestamp": _now()}
                self.orders[order_id] = order
                if subscribed:
                    reports = [{**order, "exec_type": "pending_new", "order_status": "pending_new"},
                               {"order_id": order_id, "exec_type": "new", "order_status": "new", "timestamp": _now()}]
                    fills = params["order_type"] == "market" or (
                        params["order_type"] == "limit" and params["side"] == "buy"
                        and params.get("limit_price", 0) >= self.last_price)
                    if fills:
                        qty, px = params["order_qty"], self.last_price
                        reports += [{"order_id": order_id, "exec_type": "trade", "exec_id": f"E{order_id}",
                                     "trade_id": next(self._ids), "symbol": params["symbol"], "side": params["side"],
                                     "last_qty": qty, "last_price": px, "cost": qty * px, "liquidity_ind": "t",
                                     "cum_qty": qty, "cum_cost": qty * px, "avg_price": px,
                                     "fees": [{"asset": "USD", "qty": round(qty * px * 0.0026, 8)}],
                                     "timestamp": _now(), "order_status": "filled"},
                                    {"order_id": order_id, "exec_type": "filled", "order_status": "filled"}]
                        order["order_status"] = "filled"
                    await ws.send(json.dumps({"channel": "executions", "type": "update", "data": reports}))
            elif method == "cancel_order":
                for order_id in params.get("order_id", []):
                    if order_id not in self.orders:
                        await ws.send(json.dumps({**base, "success": False, "error": "EOrder:Unknown order"}))
                        continue
                    self.orders[order_id]["order_status"] = "canceled"
                    await ws.send(json.dumps({**base, "success": True, "result": {"order_id": order_id}}))
                    if subscribed:
                        await ws.send(json.dumps({"channel": "executions", "type": "update", "data": [
                            {"order_id": order_id, "exec_type": "canceled", "order_status": "canceled",
                             "reason": "User requested"}]}))
            elif method == "amend_order":
                order_id = params.get("order_id")
                if order_id not in self.orders:
                    await ws.send(json.dumps({**base, "success": False, "error": "EOrder:Unknown order"}))
                    continue
                await ws.send(json.dumps({**base, "success": True, "result": {
                    "amend_id": f"A{next(self._ids)}", "order_id": order_id}}))
                if subscribed:
                    await ws.send(json.dumps({"channel": "executions", "type": "update", "data": [
                        {"order_id": order_id, "exec_type": "amended", "order_status": "new", "amended": True,
                         **{k: params[k] for k in ("trigger_price", "limit_price", "order_qty") if k in params}}]}))
            else:
                await ws.send(json.dumps({**base, "success": False, "error": "EGeneral:Unknown method"}))
