"""Kraken WebSocket v2 transport: a token, request/response by ``req_id``, the ``executions`` channel.

Orders go out as WS v2 request messages (built and checked by
:mod:`engine.execution.kraken_payloads`); the response only acknowledges the request, and the order's
life (new, fills, cancels) arrives on the ``executions`` channel, as the seed's trading core has it
(orders by REST or WS, fills and states by WS). Uses the ``websockets`` library.

- Authenticated endpoint ``wss://ws-auth.kraken.com/v2``; a token from REST ``GetWebSocketsToken``
  (used within 15 minutes, valid while the connection stays up). Source:
  https://docs.kraken.com/api/docs/guides/spot-ws-auth
- Responses echo ``req_id``; ``success`` false carries ``error`` (``EOrder:Insufficient funds``).
  Source: https://docs.kraken.com/api/docs/websocket-v2/add_order
- ``{"method": "subscribe", "params": {"channel": "executions", "token", "snap_orders", "snap_trades"}}``;
  messages ``{"channel": "executions", "type": "snapshot"|"update", "data": [...]}``. Source:
  https://docs.kraken.com/api/docs/websocket-v2/executions

Never point a test at the real endpoint: tests run a local server that answers like the docs.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets

from engine.errors import ExchangeError, TemporaryExchangeError

logger = logging.getLogger(__name__)

AUTH_URL = "wss://ws-auth.kraken.com/v2"


def rest_token(exchange: Any) -> str:
    """Return a WebSocket token from REST ``POST /0/private/GetWebSocketsToken`` through a ccxt kraken
    client with API keys (``exchange.privatePostGetWebSocketsToken``).

    Raises
    ------
    ExchangeError
        If the exchange refuses (no keys, no "WebSocket interface" permission).
    """
    from engine.exchange.retry import NO_RETRY, call_with_retry, translate

    try:
        out = call_with_retry(exchange, exchange.privatePostGetWebSocketsToken, retry=NO_RETRY, what="kraken token")
    except Exception as e:  # ccxt errors of many kinds: one translated line
        raise translate(e, what="kraken GetWebSocketsToken") from e
    token = (out.get("result") or {}).get("token") if isinstance(out, dict) else None
    if not token:
        raise ExchangeError(f"kraken GetWebSocketsToken: no token in the answer {str(out)[:200]}")
    return str(token)


@dataclass
class KrakenWs:
    """One authenticated WebSocket v2 connection (use ``async with``).

    Parameters
    ----------
    url : str
        ``wss://ws-auth.kraken.com/v2``, or a local test server.
    token : str
        From :func:`rest_token` (or the test server's).
    timeout_s : float
        Seconds to wait for a response or a message.
    """

    url: str
    token: str
    timeout_s: float = 10.0
    executions: list[dict] = field(default_factory=list)
    _ws: Any = field(default=None, repr=False)
    _ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)
    _pending: list[dict] = field(default_factory=list, repr=False)

    async def __aenter__(self) -> KrakenWs:
        try:
            self._ws = await asyncio.wait_for(websockets.connect(self.url, open_timeout=self.timeout_s),
                                              self.timeout_s)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
            raise TemporaryExchangeError(f"kraken ws {self.url}: cannot connect ({type(e).__name__}: {e})") from e
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _next(self) -> dict:
        """The next message: one held back earlier, else one from the socket."""
        if self._pending:
            return self._pending.pop(0)
        return await self._recv()

    async def _recv(self) -> dict:
        """Read one message from the socket; execution reports are also kept in :attr:`executions`."""
        try:
            raw = await asyncio.wait_for(self._ws.recv(), self.timeout_s)
        except asyncio.TimeoutError:
            raise TemporaryExchangeError(f"kraken ws: no message within {self.timeout_s:g} s") from None
        except websockets.exceptions.ConnectionClosed as e:
            raise TemporaryExchangeError(f"kraken ws: connection closed ({e})") from e
        msg = json.loads(raw)
        if msg.get("channel") == "executions":
            self.executions.extend(msg.get("data") or [])
        return msg

    async def request(self, message: dict) -> dict:
        """Send one request (its ``params.token`` set to this connection's token, a ``req_id`` added
        when missing) and return the response with the same ``req_id`` (other messages are kept).

        Raises
        ------
        ExchangeError
            ``success: false`` (the exchange's error text in the message).
        TemporaryExchangeError
            No response in time, or the connection closed. An order request is not resent: the
            caller reconciles on the executions channel first (the order may have been accepted).
        """
        msg = dict(message)
        msg["params"] = {**msg.get("params", {}), "token": self.token}
        msg.setdefault("req_id", next(self._ids))
        await self._ws.send(json.dumps(msg))
        held = []
        try:
            while True:
                reply = await self._next()
                if reply.get("req_id") == msg["req_id"] and reply.get("method") == msg["method"]:
                    break
                held.append(reply)
        finally:
            self._pending = held + self._pending
        if not reply.get("success", False):
            raise ExchangeError(f"kraken {msg['method']}: {reply.get('error', 'refused')}")
        return reply

    async def subscribe_executions(self, *, snap_orders: bool = True, snap_trades: bool = False) -> dict:
        """Subscribe to the ``executions`` channel (fills and order states); return the ack."""
        return await self.request({"method": "subscribe", "params": {
            "channel": "executions", "snap_orders": snap_orders, "snap_trades": snap_trades}})

    async def wait_for_execution(self, predicate: Callable[[dict], bool]) -> dict:
        """Return the first execution report (seen or to come) for which `predicate` is true."""
        for report in self.executions:
            if predicate(report):
                return report
        while True:
            msg = await self._recv()
            if msg.get("channel") == "executions":
                for report in msg.get("data") or []:
                    if predicate(report):
                        return report
            else:
                self._pending.append(msg)
