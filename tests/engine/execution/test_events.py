"""The event log: JSON lines that survive SIGKILL, read back into a DataFrame; Redis streams
against a real redis-server."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from engine.execution.events import SHADOW_STREAM, SIGNAL_STREAM, Event, EventLog, read_events
from tests.conftest import REPO_ROOT, subprocess_env
from tests.services import RedisServer

T0 = 1_619_999_940_000  # 2021-05-02 23:59 UTC


def ev(i, kind="order", mode="dry-run"):
    return Event(ts_ms=T0 + i * 60_000, kind=kind, strategy="BTCUSDT_1m_sma_cross", pair="BTC/USDT",
                 timeframe="1m", mode=mode, data={"i": i, "price": 56000.5 + i, "nan": float("nan")})


def test_append_and_read_back_by_day(tmp_path):
    log = EventLog(tmp_path, use_env=False)
    log.extend([ev(0, "intent"), ev(1, "decision"), ev(2), ev(3, "fill")])
    assert sorted(p.parent.name for p in (tmp_path / "trading").glob("*/events.jsonl")) == ["2021-05-02", "2021-05-03"]
    frame = read_events(tmp_path)
    assert frame["kind"].tolist() == ["intent", "decision", "order", "fill"]
    assert frame["data"].iloc[0]["nan"] is None  # JSON never holds NaN
    assert read_events(tmp_path, kinds=["fill"])["data"].iloc[0]["i"] == 3
    assert Event.from_json(json.loads((tmp_path / "trading" / "2021-05-02" / "events.jsonl").read_text().splitlines()[0])).kind == "intent"


WRITER = """
import sys
from engine.execution.events import Event, EventLog
log = EventLog(sys.argv[1], use_env=False)
print("ready", flush=True)
i = 0
while True:
    log.append(Event(ts_ms=1_620_000_000_000, kind="order", strategy="S", pair="BTC/USDT", timeframe="1m",
                     mode="dry-run", data={"i": i, "pad": "x" * (i % 700)}))
    i += 1
"""


@pytest.mark.slow
def test_the_log_survives_sigkill_with_no_broken_line(tmp_path):
    rng = random.Random(7)
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=subprocess_env({}),
                                 cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    raw = (tmp_path / "trading" / "2021-05-03" / "events.jsonl").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") > 20
    for line in raw.splitlines():
        json.loads(line)  # every line is whole
    assert len(read_events(tmp_path)) == raw.count(b"\n")


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def test_events_go_to_redis_streams(redis_server, tmp_path):
    import redis

    log = EventLog(tmp_path, redis_url=redis_server.url)
    log.extend([ev(0, "intent"), ev(1, "decision"), ev(2, "order"), ev(3, "fill")])
    client = redis.Redis.from_url(redis_server.url)
    signals = client.xrange(SIGNAL_STREAM)
    shadow = client.xrange(SHADOW_STREAM)
    assert [json.loads(f[b"event"])["kind"] for _, f in signals] == ["intent", "decision"]
    assert [json.loads(f[b"event"])["kind"] for _, f in shadow] == ["order", "fill"]
    assert len(read_events(tmp_path)) == 4  # the JSONL log has them all too


def test_an_unreachable_redis_is_one_warning_and_no_lost_line(tmp_path, caplog):
    from tests.services import free_port

    log = EventLog(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level("WARNING"):
        log.extend([ev(i) for i in range(3)])
    assert len(read_events(tmp_path)) == 3
    assert caplog.text.count("events still go to the JSONL log") == 1
