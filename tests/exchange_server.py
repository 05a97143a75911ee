"""A local exchange that plays Binance's public spot REST API, for tests and benchmarks.

A small threaded HTTP server on 127.0.0.1 (free port) that answers what the real ccxt 4.5.90
``binance`` client sends for spot market data, from the real 1m candles bundled in
``engine/sample/ohlcv`` (higher timeframes aggregated by ``engine.datastore.resample_candles``):

===========================  ======================================================================
endpoint                     used by
===========================  ======================================================================
GET /api/v3/exchangeInfo     ``load_markets`` (with ``options['fetchMarkets'] = {'types': ['spot']}``
                             this is the only call; fetch_currencies needs API keys and is skipped)
GET /api/v3/klines           ``fetch_ohlcv``: symbol, interval, startTime, endTime, limit (default
                             500, max 1000), Binance's selection rules
GET /api/v3/ticker/24hr      ``fetch_tickers`` / ``fetch_ticker`` (computed from the last 24 h of
                             1m candles, or a recorded list given to the server)
GET /api/v3/depth            ``fetch_order_book`` (one level around the last close)
GET /api/v3/time, /ping      ``fetch_time``, connectivity
===========================  ======================================================================

The server has its own clock, ``now_ms``: only candles that opened before it exist, and the candle
containing it is served *still open* (aggregated from the 1m candles so far, so it differs from the
final candle), as Binance does. Faults can be injected per endpoint (:meth:`ExchangeServer.inject`):
HTTP 429 with Retry-After, 418, 5xx, timeouts (the server sleeps past the client's timeout),
malformed JSON, short and empty pages, duplicated and out-of-order candles, a candle with
high < low, Binance error JSON (e.g. -1121 "Invalid symbol."), dropped connections. Every request is
recorded (:attr:`ExchangeServer.requests`) so tests can count what a client asked for.

Use::

    with ExchangeServer(pairs=["BTCUSDT"], now_ms=...) as server:
        exchange = engine.exchange.make_exchange("binance", urls=server.url, timeout_ms=2000)

or the pytest fixture :func:`exchange_server`, or ``python -m tests.exchange_server --port 8765``
(serve) / ``python -m tests.exchange_server --bench`` (time a backfill through ccxt, print JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from engine import data as datastore
from engine.markets import TIMEFRAME_MS, folder_to_pair

try:  # the fixture is optional: the module also runs as a plain script
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

#: Binance interval strings served (same spelling as ccxt timeframes).
INTERVALS = tuple(TIMEFRAME_MS)

FAULT_KINDS = (
    "status",       # HTTP error: status=429|418|500|503..., retry_after=s, body=dict (Binance error JSON)
    "timeout",      # sleep delay_s before answering normally (past the client's timeout)
    "malformed",    # 200 with a truncated JSON body
    "short",        # klines: only the first n candles of the page
    "empty",        # klines: []
    "duplicate",    # klines: every candle twice
    "shuffle",      # klines: candles in reverse order
    "bad_candle",   # klines: candle number `index` gets high < low
    "disconnect",   # close the connection without an answer
)


@dataclass
class Fault:
    """One injected fault: applies to `count` matching requests (None = all) after skipping `after`."""

    endpoint: str
    kind: str
    count: int | None = 1
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 2.0
    n: int = 1
    index: int = 0
    body: dict | None = None
    symbol: str | None = None
    after: int = 0
    hits: int = 0
    seen: int = 0


@dataclass
class Request:
    """One request the server received."""

    endpoint: str
    params: dict[str, str]
    status: int = 200
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)


def _num(x: float) -> str:
    return repr(float(x))


class ExchangeServer:
    """Local Binance-like public REST server over the bundled real candles.

    Parameters
    ----------
    pairs : list of str, optional
        Folder names served (default: every bundled pair).
    now_ms : int, optional
        Server clock, epoch ms (default: 2021-05-02 23:59:30 UTC, inside the sample's last
        candle). Settable at any time through the attribute.
    tickers : list of dict, optional
        Binance ``/ticker/24hr`` objects to serve instead of the computed ones (recorded tickers).
    extra_symbols : list of str, optional
        Folder names listed by exchangeInfo without candles (e.g. ``USDCUSDT``, ``BTCUPUSDT``);
        taken from `tickers` as well.
    candles : dict, optional
        Folder name → 1m candle frame, to serve instead of the sample.
    """

    def __init__(
        self,
        pairs: list[str] | None = None,
        *,
        now_ms: int | None = None,
        tickers: list[dict] | None = None,
        extra_symbols: list[str] | None = None,
        candles: dict[str, pd.DataFrame] | None = None,
    ) -> None:
        self.pairs = list(pairs) if pairs is not None else datastore.sample_pairs()
        self.now_ms = int(now_ms) if now_ms is not None else 1_619_999_970_000
        self.tickers = tickers
        extra = list(extra_symbols or [])
        if tickers:
            extra += [t["symbol"] for t in tickers if t["symbol"] not in self.pairs]
        self.extra_symbols = sorted(set(extra) - set(self.pairs))
        self._candles_1m = dict(candles or {})
        self._arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- data
    def candles(self, pair: str, timeframe: str = "1m") -> pd.DataFrame:
        """Return the full candle frame the server holds for `pair` (all closed, ignoring now_ms)."""
        if pair not in self._candles_1m:
            self._candles_1m[pair] = datastore.load_sample(pair, "1m")
        one = self._candles_1m[pair]
        return one if timeframe == "1m" else datastore.resample_candles(one, timeframe, source_timeframe="1m")

    def closed_candles(self, pair: str, timeframe: str, now_ms: int | None = None) -> pd.DataFrame:
        """Return the candles of `pair` that are closed at `now_ms` (default the server clock)."""
        now_ms = self.now_ms if now_ms is None else now_ms
        frame = self.candles(pair, timeframe)
        ts = datastore.index_ms(frame)
        return frame.iloc[: int(np.searchsorted(ts, now_ms - TIMEFRAME_MS[timeframe], side="right"))]

    def _table(self, pair: str, timeframe: str) -> tuple[np.ndarray, np.ndarray]:
        key = (pair, timeframe)
        with self._lock:
            if key not in self._arrays:
                frame = self.candles(pair, timeframe)
                ts = datastore.index_ms(frame)
                values = frame[list(datastore.CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
                self._arrays[key] = (ts, values)
            return self._arrays[key]

    def _open_candle(self, pair: str, timeframe: str, now_ms: int) -> list | None:
        """The candle containing now_ms, aggregated from the 1m candles that opened before now."""
        step = TIMEFRAME_MS[timeframe]
        start = now_ms - now_ms % step
        ts, values = self._table(pair, "1m")
        lo, hi = np.searchsorted(ts, start), np.searchsorted(ts, now_ms, side="left")
        if hi <= lo:
            return None
        part = values[lo:hi]
        o, h, lw, c, v = part[0, 0], part[:, 1].max(), part[:, 2].min(), part[-1, 3], part[:, 4].sum()
        if ts[hi - 1] + 60_000 > now_ms:  # the current 1m candle is itself still open: half of it
            v -= part[-1, 4] / 2
        return [int(start), o, h, lw, c, v]

    def klines(self, pair: str, timeframe: str, start: int | None, end: int | None, limit: int) -> list[list]:
        """Rows Binance would answer for GET /api/v3/klines at the server clock."""
        step = TIMEFRAME_MS[timeframe]
        now_ms = self.now_ms
        ts, values = self._table(pair, timeframe)
        n_closed = int(np.searchsorted(ts, now_ms - step, side="right"))
        lo = 0 if start is None else int(np.searchsorted(ts[:n_closed], start, side="left"))
        hi = n_closed if end is None else int(np.searchsorted(ts[:n_closed], end, side="right"))
        if start is not None:
            hi = min(hi, lo + limit)
        else:
            lo = max(lo, hi - limit)
        rows = [[int(t), *v] for t, v in zip(ts[lo:hi], values[lo:hi])]
        opened = self._open_candle(pair, timeframe, now_ms)
        if opened is not None and (start is None or opened[0] >= start) and (end is None or opened[0] <= end):
            rows.append(opened)
        rows = rows[:limit] if start is not None else rows[-limit:]
        return [
            [t, _num(o), _num(h), _num(lw), _num(c), _num(v), t + step - 1, _num(c * v), 100, _num(v / 2), _num(c * v / 2), "0"]
            for t, o, h, lw, c, v in rows
        ]

    def ticker(self, pair: str) -> dict:
        """A Binance 24 h ticker computed from the last 24 h of 1m candles before the clock."""
        if self.tickers is not None:
            for item in self.tickers:
                if item["symbol"] == pair:
                    return item
        ts, values = self._table(pair, "1m")
        end = self.now_ms - self.now_ms % 60_000  # the 1440 closed 1m candles before the clock
        hi = int(np.searchsorted(ts, end, side="left"))
        lo = int(np.searchsorted(ts, end - 86_400_000, side="left"))
        part = values[lo:hi] if hi > lo else values[max(0, hi - 1): hi]
        last = float(part[-1, 3]) if len(part) else 1.0
        spread = last * 1e-4
        return {
            "symbol": pair, "priceChange": _num(last - part[0, 0]) if len(part) else "0",
            "priceChangePercent": "0", "weightedAvgPrice": _num(last), "prevClosePrice": _num(last),
            "lastPrice": _num(last), "lastQty": "1", "bidPrice": _num(last - spread / 2), "bidQty": "1",
            "askPrice": _num(last + spread / 2), "askQty": "1",
            "openPrice": _num(part[0, 0]) if len(part) else _num(last),
            "highPrice": _num(part[:, 1].max()) if len(part) else _num(last),
            "lowPrice": _num(part[:, 2].min()) if len(part) else _num(last),
            "volume": _num(part[:, 4].sum()), "quoteVolume": _num((part[:, 3] * part[:, 4]).sum()),
            "openTime": self.now_ms - 86_400_000, "closeTime": self.now_ms, "firstId": 1, "lastId": 2, "count": 2,
        }

    def exchange_info(self) -> dict:
        """Binance GET /api/v3/exchangeInfo for the served symbols (spot, TRADING)."""
        symbols = []
        for folder in sorted(set(self.pairs) | set(self.extra_symbols)):
            base, quote = folder_to_pair(folder).split("/")
            symbols.append({
                "symbol": folder, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
                "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.00000100", "maxPrice": "1000000.00000000", "tickSize": "0.00000100"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000000.00000000", "stepSize": "0.00001000"},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return {"timezone": "UTC", "serverTime": self.now_ms, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}

    # ---------------------------------------------------------------- faults and log
    def inject(self, endpoint: str, kind: str, count: int | None = 1, **kwargs: Any) -> Fault:
        """Queue a fault for the next `count` requests to `endpoint` (``"klines"``,
        ``"exchangeInfo"``, ``"ticker/24hr"``, ``"depth"`` or ``"*"``); see FAULT_KINDS."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r}: expected one of {FAULT_KINDS}")
        fault = Fault(endpoint=endpoint, kind=kind, count=count, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self.faults.clear()

    def _take_fault(self, endpoint: str, params: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.endpoint not in ("*", endpoint):
                    continue
                if fault.symbol is not None and params.get("symbol") != fault.symbol:
                    continue
                if fault.count is not None and fault.hits >= fault.count:
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:  # let the first `after` matching requests through
                    continue
                fault.hits += 1
                return fault
        return None

    def count(self, endpoint: str, **params: str) -> int:
        """Number of requests received for `endpoint` whose params include `params`."""
        with self._lock:
            return sum(
                1 for r in self.requests
                if r.endpoint == endpoint and all(r.params.get(k) == v for k, v in params.items())
            )

    def reset_log(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    # ---------------------------------------------------------------- HTTP
    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self, port: int = 0) -> ExchangeServer:
        """Start serving in a daemon thread; return self."""
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="exchange-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ExchangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(server: ExchangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
            payload = raw if raw is not None else json.dumps(body).encode("utf-8")
            headers = dict(headers or {})
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json;charset=UTF-8"))
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            endpoint = parts.path.removeprefix("/api/v3/")
            record = Request(endpoint=endpoint, params=params)
            with server._lock:
                server.requests.append(record)
            fault = server._take_fault(endpoint, params)
            if fault is not None:
                record.fault = fault.kind
                if fault.kind == "status":
                    record.status = fault.status
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    if fault.body is None and fault.status >= 500:  # as a load balancer answers: HTML
                        html = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>"
                        headers["Content-Type"] = "text/html"
                        return self._send(fault.status, None, headers, raw=html.encode())
                    body = fault.body or {"code": -1003, "msg": "Too much request weight used; injected HTTP %d" % fault.status}
                    return self._send(fault.status, body, headers)
                if fault.kind == "timeout":
                    time.sleep(fault.delay_s)
                elif fault.kind == "malformed":
                    return self._send(200, None, raw=b'[[1617321600000,"58720.45","5884')
                elif fault.kind == "disconnect":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return None
            try:
                status, body = self._route(endpoint, params, fault)
            except Exception as e:  # a bug here should be visible in the test, not a hang
                status, body = 500, {"code": -1000, "msg": f"server error: {e!r}"}
            record.status = status
            self._send(status, body)

        def _route(self, endpoint: str, params: dict[str, str], fault: Fault | None) -> tuple[int, Any]:
            if endpoint == "ping":
                return 200, {}
            if endpoint == "time":
                return 200, {"serverTime": server.now_ms}
            if endpoint == "exchangeInfo":
                return 200, server.exchange_info()
            if endpoint == "ticker/24hr":
                names = sorted(set(server.pairs) | set(server.extra_symbols))
                if "symbols" in params:
                    names = json.loads(params["symbols"])
                if "symbol" in params:
                    return 200, server.ticker(params["symbol"])
                return 200, [server.ticker(n) for n in names if server.tickers is not None or n in server.pairs]
            symbol = params.get("symbol", "")
            if endpoint in ("klines", "depth") and symbol not in server.pairs:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            if endpoint == "depth":
                t = server.ticker(symbol)
                return 200, {"lastUpdateId": 1, "bids": [[t["bidPrice"], t["bidQty"]]], "asks": [[t["askPrice"], t["askQty"]]]}
            if endpoint == "klines":
                interval = params.get("interval")
                if interval not in INTERVALS:
                    return 400, {"code": -1120, "msg": "Invalid interval."}
                limit = min(int(params.get("limit", 500)), 1000)
                start = int(params["startTime"]) if "startTime" in params else None
                end = int(params["endTime"]) if "endTime" in params else None
                rows = server.klines(symbol, interval, start, end, limit)
                if fault is not None:
                    if fault.kind == "short":
                        rows = rows[: fault.n]
                    elif fault.kind == "empty":
                        rows = []
                    elif fault.kind == "duplicate":
                        rows = [r for r in rows for _ in (0, 1)]
                    elif fault.kind == "shuffle":
                        rows = rows[::-1]
                    elif fault.kind == "bad_candle" and rows:
                        k = min(fault.index, len(rows) - 1)
                        row = list(rows[k])
                        row[2], row[3] = row[3], row[2]  # high < low
                        if float(row[2]) == float(row[3]):
                            row[3] = _num(float(row[2]) * 1.01)
                        rows[k] = row
                return 200, rows
            return 404, {"code": -1000, "msg": f"unknown endpoint {endpoint}"}

    return Handler


if pytest is not None:

    @pytest.fixture
    def exchange_server():
        """A started :class:`ExchangeServer` over BTCUSDT, ETHUSDT and SOLUSDT; stopped after the test."""
        server = ExchangeServer(pairs=["BTCUSDT", "ETHUSDT", "SOLUSDT"]).start()
        try:
            yield server
        finally:
            server.stop()


def bench(pairs: list[str], timeframes: list[str], limit: int) -> dict:
    """Backfill `pairs` × `timeframes` from empty through the real ccxt client; return figures."""
    import tempfile

    from engine.bench import machine
    from engine.data import backfill
    from engine.exchange import make_exchange

    host = machine()  # CPU, cores and the load average before; the load after is added below
    with ExchangeServer(pairs=pairs) as server, tempfile.TemporaryDirectory() as tmp:
        exchange = make_exchange("binance", urls=server.url)
        exchange.rateLimit = 1
        started = time.perf_counter()
        results = backfill.backfill_pairs(exchange, pairs, timeframes, tmp, limit=limit, now_ms=server.now_ms)
        elapsed = time.perf_counter() - started
    n_candles = sum(r.rows_added for r in results)
    return {
        "pairs": len(pairs), "timeframes": len(timeframes), "candles": n_candles,
        "requests": sum(r.n_requests for r in results), "seconds": round(elapsed, 3),
        "candles_per_s": round(n_candles / elapsed, 1), "errors": [r.error for r in results if r.error],
        "machine": {**host, "load_average_after": [round(v, 2) for v in os.getloadavg()]},
    }


def main(argv: list[str] | None = None) -> int:
    """Serve the bundled candles until interrupted, or (``--bench``) time a backfill and print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--now-ms", type=int, default=None, help="server clock, epoch ms (default: end of sample)")
    parser.add_argument("--bench", action="store_true",
                        help="backfill --pairs × --tfs from empty through ccxt and print candles per second (JSON)")
    parser.add_argument("--pairs", default="BTCUSDT,ETHUSDT,SOLUSDT", help="pairs for --bench, comma-separated")
    parser.add_argument("--tfs", default="1m,5m,15m", help="timeframes for --bench, comma-separated")
    parser.add_argument("--limit", type=int, default=5000, help="candles per pair × timeframe for --bench")
    args = parser.parse_args(argv)
    if args.bench:
        print(json.dumps(bench(args.pairs.split(","), args.tfs.split(","), args.limit)), flush=True)
        return 0
    server = ExchangeServer(now_ms=args.now_ms).start(args.port)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
