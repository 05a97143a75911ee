"""Backfill through the real ccxt client against the local Binance-playing exchange.

The exchange (tests/exchange_server.py) serves the real bundled candles and misbehaves on request.
Windows are a day or two of candles so the whole file runs in seconds; waits between retries are
recorded instead of slept, except where a real timeout is the point of the test.
"""
from __future__ import annotations

import json
import threading

import ccxt
import pandas as pd
import pytest

from engine import exchange as ex
from engine.data import backfill as bf, known_gaps
from engine import data as ds
from engine.errors import ConfigError, ExchangeError, ExchangeUnreachableError
from engine.markets import TIMEFRAME_MS
from tests.exchange_server import ExchangeServer, exchange_server  # noqa: F401 (fixture)

#: Server clock: 2021-04-21 12:00:30 UTC, so the 12:00 1m candle is still open and the
#: 2021-04-20 02:00-04:29 halt lies inside a 2400-candle 1m window.
NOW_MS = 1_619_006_430_000
LIMITS = {"1m": 2400, "5m": 600, "15m": 200}
FAST = ex.RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=30.0)


class SleepRecorder:
    """Stands in for time.sleep: records the waits asked for, waits nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(server: ExchangeServer, timeout_ms: int = 3000):
    exchange = ex.make_exchange("binance", urls=server.url, timeout_ms=timeout_ms)
    exchange.rateLimit = 1  # the rate limiter stays on, with a local exchange's pace
    return exchange


def expected(server: ExchangeServer, pair: str, timeframe: str, limit: int, now_ms: int = NOW_MS) -> pd.DataFrame:
    """Closed candles the exchange holds in the backfill window [floor(now) - limit*step, now)."""
    step = TIMEFRAME_MS[timeframe]
    closed = server.closed_candles(pair, timeframe, now_ms)
    start = now_ms // step * step - limit * step
    return closed[closed.index >= pd.Timestamp(start, unit="ms", tz="UTC")]


def run(server, tmp_path, pair="BTCUSDT", timeframe="1m", *, limit=None, page_limit=500, sleep=None,
        retry=FAST, exchange=None, now_ms=None):
    return bf.backfill_pair(
        exchange or client(server), pair, timeframe, tmp_path, limit=limit or LIMITS[timeframe],
        now_ms=server.now_ms if now_ms is None else now_ms, page_limit=page_limit, retry=retry,
        sleep=sleep or SleepRecorder(),
    )


@pytest.fixture
def server(exchange_server):  # noqa: F811
    exchange_server.now_ms = NOW_MS
    return exchange_server


# ------------------------------------------------------------------ the good path


def test_full_backfill_of_several_pairs_and_timeframes_equals_the_source(server, tmp_path):
    exchange = client(server)
    results = []
    for tf in ("1m", "5m", "15m"):
        results += bf.backfill_pairs(
            exchange, ["BTCUSDT", "ETH/USDT", "SOLUSDT"], [tf], tmp_path, limit=LIMITS[tf],
            now_ms=NOW_MS, page_limit=500, retry=FAST, sleep=SleepRecorder(),
        )
    assert [r.error for r in results] == [None] * 9
    for r in results:
        want = expected(server, r.pair, r.timeframe, LIMITS[r.timeframe])
        got = ds.read_candles(r.path)
        pd.testing.assert_frame_equal(got, want, check_index_type=False)
        assert ds.read_source(r.path) == "binance"
        step = TIMEFRAME_MS[r.timeframe]
        assert r.last_ms == NOW_MS // step * step - step  # the still-open candle is not stored
        assert r.rows_added == r.rows_total == len(want)
    # 2400 1m slots, 150 of them in the 04-20 halt: 2250 candles at 500 per page = 5 requests
    assert server.count("klines", symbol="BTCUSDT", interval="1m") == results[0].n_requests == 5
    # the halt is an exchange gap: recorded once, listed for the dashboard
    assert results[0].gaps == ((1_618_884_000_000, 1_618_892_940_000, 150),)
    listed = known_gaps.list_known_gaps(tmp_path)
    assert {"pair": "BTCUSDT", "timeframe": "1m", "from_ms": 1_618_884_000_000,
            "to_ms": 1_618_892_940_000, "n_missing": 150, "source": "binance"} in listed
    assert {(g["pair"], g["timeframe"]) for g in listed} == {
        (p, tf) for p in ("BTCUSDT", "ETHUSDT", "SOLUSDT") for tf in ("1m", "5m", "15m")
    }


def test_the_exchange_served_the_open_candle_and_it_was_dropped(server, tmp_path):
    exchange = client(server)
    exchange.load_markets()
    rows = exchange.fetch_ohlcv("BTC/USDT", "1m", NOW_MS - 120_000, 5)
    assert rows[-1][0] == NOW_MS // 60_000 * 60_000  # Binance includes the forming candle
    r = run(server, tmp_path, limit=10)
    assert r.last_ms == NOW_MS // 60_000 * 60_000 - 60_000
    assert r.rows_total == 10


def test_incremental_backfill_fetches_only_new_candles(server, tmp_path):
    first = run(server, tmp_path, "ETHUSDT", "5m")
    server.reset_log()
    again = run(server, tmp_path, "ETHUSDT", "5m")
    assert again.ok and again.rows_added == 0 and server.count("klines") == 0  # nothing new: no request
    server.now_ms = NOW_MS + 47 * 60_000  # 47 minutes later: 9 more closed 5m candles
    later = run(server, tmp_path, "ETHUSDT", "5m")
    assert later.rows_added == 9
    assert server.count("klines") == 1
    request = server.requests[-1].params
    assert int(request["startTime"]) == first.last_ms + 300_000 and request["limit"] == "9"
    union = expected(server, "ETHUSDT", "5m", LIMITS["5m"] + 9, now_ms=server.now_ms)
    pd.testing.assert_frame_equal(ds.read_candles(later.path), union, check_index_type=False)


def test_known_exchange_gap_is_not_refetched(server, tmp_path):
    run(server, tmp_path, "BTCUSDT", "1m")
    server.reset_log()
    server.now_ms = NOW_MS + 60_000
    r = run(server, tmp_path, "BTCUSDT", "1m")
    assert r.rows_added == 1 and server.count("klines") == 1
    klines = [q for q in server.requests if q.endpoint == "klines"]
    assert int(klines[0].params["startTime"]) == NOW_MS // 60_000 * 60_000


def test_missing_candles_inside_the_stored_range_are_refetched(server, tmp_path):
    r = run(server, tmp_path, "SOLUSDT", "1m")
    stored = ds.read_candles(r.path)
    holed = stored.drop(stored.index[100:130])
    ds.write_candles(r.path, holed, source="binance")
    server.reset_log()
    again = run(server, tmp_path, "SOLUSDT", "1m")
    assert again.rows_added == 30
    gap_start = int(stored.index[100].value // 10**6)
    assert server.count("klines", startTime=str(gap_start), limit="30") == 1
    pd.testing.assert_frame_equal(ds.read_candles(r.path), stored, check_index_type=False)


def test_source_switch_replaces_the_sample_file(server, tmp_path, caplog):
    seeded = bf.seed_from_sample(tmp_path, ["BTCUSDT"], ["5m"])[0]
    assert ds.read_source(seeded.path) == "sample" and seeded.rows_total == 8842
    with caplog.at_level("INFO", logger="engine.data.backfill"):
        r = run(server, tmp_path, "BTCUSDT", "5m")
    assert r.replaced and r.ok
    pd.testing.assert_frame_equal(ds.read_candles(r.path), expected(server, "BTCUSDT", "5m", 600), check_index_type=False)
    assert ds.read_source(r.path) == "binance"
    assert "the bundled sample's candles are replaced by binance candles (never mixed)" in caplog.text
    gaps = json.loads(known_gaps.gaps_path(r.path).read_text())
    assert gaps["source"] == "binance"


def test_corrupt_stored_file_is_moved_aside_and_rebuilt(server, tmp_path, caplog):
    path = ds.candle_path(tmp_path, "BTCUSDT", "15m")
    path.parent.mkdir(parents=True)
    path.write_text(ds.CSV_HEADER + "\n1617321600000,1,2,3\n")
    with caplog.at_level("WARNING"):
        r = run(server, tmp_path, "BTCUSDT", "15m")
    assert r.ok
    assert [p.name for p in path.parent.glob("15m.csv.corrupt-*")] == [r.quarantined]
    assert "failed validation" in caplog.text
    pd.testing.assert_frame_equal(ds.read_candles(path), expected(server, "BTCUSDT", "15m", 200), check_index_type=False)


def test_two_concurrent_backfills_of_one_pair_leave_one_correct_file(server, tmp_path):
    results = []

    def worker():
        results.append(run(server, tmp_path, "ETHUSDT", "1m", page_limit=200))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.error for r in results] == [None, None]
    assert sorted(r.rows_added for r in results) == [0, len(expected(server, "ETHUSDT", "1m", LIMITS["1m"]))]
    pd.testing.assert_frame_equal(
        ds.read_candles(results[0].path), expected(server, "ETHUSDT", "1m", LIMITS["1m"]), check_index_type=False
    )


# ------------------------------------------------------------------ faults that end in correct files


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("status", {"status": 429, "retry_after": 0}),
        ("status", {"status": 418, "retry_after": 0}),
        ("status", {"status": 500}),
        ("status", {"status": 503, "count": 3}),
        ("status", {"status": 504}),
        ("malformed", {}),
        ("disconnect", {}),
        ("short", {"n": 7, "count": 3}),
        ("empty", {}),
        ("duplicate", {"count": 2}),
        ("shuffle", {"count": 2}),
        ("bad_candle", {"index": 3}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}{w}" for k, w in v.items()),
)
def test_transient_fault_ends_in_a_correct_file(server, tmp_path, kind, options):
    server.inject("klines", kind, after=1, **options)
    r = run(server, tmp_path, "BTCUSDT", "1m", page_limit=400)
    assert r.ok, r.error
    pd.testing.assert_frame_equal(ds.read_candles(r.path), expected(server, "BTCUSDT", "1m", LIMITS["1m"]), check_index_type=False)
    assert any(q.fault == kind for q in server.requests)


def test_rate_limit_waits_for_retry_after(server, tmp_path, caplog):
    server.inject("klines", "status", status=429, retry_after=7)
    sleep = SleepRecorder()
    with caplog.at_level("WARNING", logger="engine.data.backfill"):
        r = run(server, tmp_path, "BTCUSDT", "5m", sleep=sleep)
    assert r.ok
    assert sleep.waits[0] == 7.0  # honoured, although the backoff alone would wait 0.01 s
    assert "DDoSProtection" in caplog.text and "retry 2/4 in 7.0 s" in caplog.text  # ccxt maps 429 so


def test_retry_after_is_capped(server, tmp_path):
    server.inject("klines", "status", status=418, retry_after=3600)
    sleep = SleepRecorder()
    assert run(server, tmp_path, "BTCUSDT", "15m", sleep=sleep).ok
    assert sleep.waits[0] == FAST.max_delay_s


def test_request_timeout_is_retried(server, tmp_path):
    server.inject("klines", "timeout", delay_s=1.2)
    exchange = client(server, timeout_ms=500)
    r = run(server, tmp_path, "BTCUSDT", "15m", exchange=exchange)
    assert r.ok
    klines = [q for q in server.requests if q.endpoint == "klines"]
    assert klines[0].fault == "timeout" and r.n_requests == len(klines) == 2
    pd.testing.assert_frame_equal(ds.read_candles(r.path), expected(server, "BTCUSDT", "15m", 200), check_index_type=False)


def test_retry_policy_backoff_doubles_and_is_capped():
    policy = ex.RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=5.0)
    assert [policy.delay_s(k) for k in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.delay_s(1, retry_after_s=3.0) == 3.0
    assert policy.delay_s(1, retry_after_s=99.0) == 5.0


# ------------------------------------------------------------------ faults that end in a per-pair error


def assert_valid_prefix(path, want: pd.DataFrame) -> None:
    if not path.exists():
        return
    got = ds.read_candles(path)
    pd.testing.assert_frame_equal(got, want.iloc[: len(got)], check_index_type=False)


def test_persistent_bad_candle_is_a_pair_error_and_the_file_a_valid_prefix(server, tmp_path):
    server.inject("klines", "bad_candle", count=None, after=2, index=5)
    r = run(server, tmp_path, "BTCUSDT", "1m", page_limit=300)
    assert not r.ok
    assert "BTCUSDT 1m" in r.error and "high" in r.error and "expected high >= low" in r.error
    assert "nothing of that page was stored" in r.error
    want = expected(server, "BTCUSDT", "1m", LIMITS["1m"])
    assert r.rows_total == 600
    assert_valid_prefix(r.path, want)


def test_exchange_that_keeps_failing_gives_a_pair_error_and_others_go_on(server, tmp_path):
    server.inject("klines", "status", status=503, count=None, symbol="ETHUSDT")
    exchange = client(server)
    results = bf.backfill_pairs(
        exchange, ["ETHUSDT", "BTCUSDT"], ["15m"], tmp_path, limit=200, now_ms=NOW_MS,
        retry=FAST, sleep=SleepRecorder(),
    )
    eth, btc = results
    assert eth.error.startswith("binance ETHUSDT 15m: ExchangeNotAvailable")
    assert eth.n_requests == FAST.max_attempts and not eth.path.exists()
    assert btc.ok and btc.rows_total == len(expected(server, "BTCUSDT", "15m", 200))


def test_pair_not_listed_is_bad_symbol_without_any_request(server, tmp_path):
    r = run(server, tmp_path, "DOGEUSDT", "1m")
    assert r.error == "binance DOGEUSDT 1m: BadSymbol: binance does not list DOGE/USDT"
    assert server.count("klines") == 0


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"code": -1121, "msg": "Invalid symbol."}, "BadSymbol"),
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, "AuthenticationError"),
    ],
)
def test_non_retryable_errors_are_not_retried(server, tmp_path, status, body, error):
    server.inject("klines", "status", status=status, body=body, count=None)
    r = run(server, tmp_path, "BTCUSDT", "5m")
    assert r.error.startswith(f"binance BTCUSDT 5m: {error}")
    assert server.count("klines") == 1


# ------------------------------------------------------------------ unreachable exchange


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_exchange_raises_for_the_fallback(tmp_path):
    exchange = ex.make_exchange("binance", urls=closed_port_url(), timeout_ms=500)
    with pytest.raises(ExchangeUnreachableError, match=r"binance: cannot reach the exchange to load markets \(NetworkError"):
        bf.backfill_pairs(exchange, ["BTCUSDT"], ["1m"], tmp_path, limit=10, now_ms=NOW_MS,
                          retry=ex.RetryPolicy(max_attempts=2, base_delay_s=0.0), sleep=SleepRecorder())
    assert not (tmp_path / "ohlcv").exists()


def test_exchange_info_timing_out_is_unreachable(server, tmp_path):
    server.inject("exchangeInfo", "timeout", delay_s=1.0, count=None)
    exchange = client(server, timeout_ms=300)
    with pytest.raises(ExchangeUnreachableError, match="RequestTimeout"):
        run(server, tmp_path, exchange=exchange, retry=ex.RetryPolicy(max_attempts=2, base_delay_s=0.0))


def test_kraken_history_depth_warning(tmp_path, caplog):
    exchange = ex.make_exchange("kraken", urls=closed_port_url(), timeout_ms=300)
    with caplog.at_level("WARNING", logger="engine.data.backfill"), pytest.raises(ExchangeUnreachableError):
        bf.backfill_pair(exchange, "BTCUSDT", "1m", tmp_path, limit=5000, now_ms=NOW_MS,
                         retry=ex.RetryPolicy(max_attempts=1), sleep=SleepRecorder())
    assert "backfill_limit 5000 asks for more than the 720 most recent candles kraken serves; fetching 720" in caplog.text


def test_make_exchange_bad_id_and_url_override():
    with pytest.raises(ConfigError, match=r"exchange 'binancee': not an exchange ccxt knows .* Did you mean \"binance\"\?"):
        ex.make_exchange("binancee")
    with pytest.raises(ConfigError, match=r"exchange 'ftx': not an exchange ccxt knows"):
        ex.make_exchange("ftx")  # delisted from ccxt
    assert ex.make_exchange("okx").id == "okx"  # any exchange ccxt knows, with a conservative page size
    assert ex.exchange_limits(ex.make_exchange("okx")).page_limit == 500
    exchange = ex.make_exchange("binance", urls="http://127.0.0.1:9", timeout_ms=1234)
    assert exchange.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
    assert exchange.timeout == 1234 and exchange.enableRateLimit
    for exchange_id in ("kraken", "bitvavo"):
        assert ex.make_exchange(exchange_id).id == exchange_id
    assert ex.exchange_limits(ex.make_exchange("bitvavo")).page_limit == 1440


# ------------------------------------------------------------------ seeding from the sample


def test_seed_from_sample_writes_resampled_files_with_source_and_gaps(tmp_path):
    results = bf.seed_from_sample(tmp_path, ["BTCUSDT", "FOOUSDT"], ["1m", "5m", "15m"])
    ok = [r for r in results if r.ok]
    assert [(r.pair, r.timeframe) for r in ok] == [("BTCUSDT", "1m"), ("BTCUSDT", "5m"), ("BTCUSDT", "15m")]
    for r in ok:
        assert ds.read_candles(r.path).equals(ds.load_sample("BTCUSDT", r.timeframe))
        assert ds.read_source(r.path) == "sample"
        assert len(r.gaps) == 2
    bad = [r for r in results if not r.ok]
    assert len(bad) == 3 and "sample pair 'FOOUSDT': not in the month sample" in bad[0].error
    again = bf.seed_from_sample(tmp_path, ["BTCUSDT"], ["1m"])
    assert again[0].rows_added == 0 and not again[0].replaced
    gaps = known_gaps.list_known_gaps(tmp_path)
    assert [(g["timeframe"], g["n_missing"]) for g in gaps] == [("1m", 150), ("1m", 284), ("5m", 30), ("5m", 56), ("15m", 10), ("15m", 18)]


def test_the_sample_never_replaces_exchange_candles(server, tmp_path):
    run(server, tmp_path, "BTCUSDT", "15m")
    path = ds.candle_path(tmp_path, "BTCUSDT", "15m")
    before = path.read_bytes()
    r = bf.seed_from_sample(tmp_path, ["BTCUSDT"], ["15m"])[0]
    assert r.kept and r.source == "binance" and r.rows_added == 0 and r.error is None
    assert path.read_bytes() == before and ds.read_source(path) == "binance"


def test_the_sample_never_replaces_your_own_file(tmp_path):
    path = ds.candle_path(tmp_path, "BTCUSDT", "1m")
    mine = ds.load_sample("BTCUSDT").iloc[-500:]
    ds.write_candles(path, mine)  # no sidecar: a user's own file
    before = path.read_bytes()
    r = bf.seed_from_sample(tmp_path, ["BTCUSDT"], ["1m"])[0]
    assert r.kept and r.source == "unknown" and r.rows_total == 500
    assert path.read_bytes() == before


def test_an_exchange_backfill_moves_an_import_aside_before_replacing_it(server, tmp_path):
    path = ds.candle_path(tmp_path, "BTCUSDT", "15m")
    ds.write_candles(path, ds.load_sample("BTCUSDT", "15m").iloc[:50], source="import:mine.csv")
    before = path.read_bytes()
    r = run(server, tmp_path, "BTCUSDT", "15m")
    assert r.replaced and r.error is None and ds.read_source(path) == "binance"
    aside = list(path.parent.glob("15m.csv.replaced-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == before


def test_bad_limit_is_a_config_error(server, tmp_path):
    with pytest.raises(ConfigError, match=r"backfill limit 0: expected an integer >= 1"):
        bf.backfill_pair(client(server), "BTCUSDT", "1m", tmp_path, limit=0, now_ms=NOW_MS)


def test_folder_names_map_to_each_exchange_symbol():
    kraken = ex.make_exchange("kraken")
    kraken.set_markets([
        {"id": "XBTUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "XBT", "quoteId": "USDT",
         "spot": True, "type": "spot", "active": True, "precision": {}, "limits": {}},
    ])
    assert ex.exchange_symbol(kraken, "BTCUSDT") == "BTC/USDT"
    assert ex.exchange_symbol(kraken, "BTC/USDT") == "BTC/USDT"
    assert ex.exchange_symbol(kraken, "XBTUSDT") == "BTC/USDT"  # the exchange's own id works too
    with pytest.raises(ExchangeError, match="BadSymbol: kraken does not list ETH/USDT"):
        ex.exchange_symbol(kraken, "ETHUSDT")


def test_backfill_result_as_dict_is_json_ready(server, tmp_path):
    r = run(server, tmp_path, "BTCUSDT", "15m")
    data = json.loads(json.dumps(r.as_dict()))
    assert data["pair"] == "BTCUSDT" and data["error"] is None and data["rows_total"] == r.rows_total


def test_local_exchange_answers_the_other_public_endpoints(server):
    exchange = client(server)
    assert exchange.fetch_time() == NOW_MS
    book = exchange.fetch_order_book("BTC/USDT")
    assert book["bids"][0][0] < book["asks"][0][0]
    ticker = exchange.fetch_ticker("ETH/USDT")
    day = server.closed_candles("ETHUSDT", "1m").iloc[-1440:]
    assert ticker["quoteVolume"] == pytest.approx(float((day["close"] * day["volume"]).sum()), rel=1e-9)
    assert ticker["last"] == day["close"].iloc[-1]
    with pytest.raises(ccxt.BadSymbol):
        exchange.public_get_klines({"symbol": "DOGEUSDT", "interval": "1m"})


def test_exchange_info_not_json_is_retried_then_unreachable(server, tmp_path):
    server.inject("exchangeInfo", "malformed")
    assert run(server, tmp_path, "BTCUSDT", "15m").ok  # once: retried
    server.inject("exchangeInfo", "malformed", count=None)
    with pytest.raises(ExchangeUnreachableError, match="BadResponse"):
        run(server, tmp_path, "BTCUSDT", "15m", retry=ex.RetryPolicy(max_attempts=2, base_delay_s=0.0))
