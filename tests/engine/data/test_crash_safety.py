"""Crash safety of the candle store: SIGKILL mid-backfill, and concurrent backfilling processes.

A child process backfills from the local exchange (tests/exchange_server.py, served by this test
process) with small pages, so it writes the CSV many times a second; the test kills it with SIGKILL
at random moments. Whatever is left must be a valid CSV whose candles are a prefix of (or equal to)
the exchange's candles; a final run completes the file.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from engine import data as ds
from tests.engine.data.test_backfill import NOW_MS, expected
from tests.exchange_server import ExchangeServer, exchange_server  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import sys
    from engine import exchange as ex
    from engine.data import backfill as bf
    url, data_dir, pair, tf, limit, now_ms, page = sys.argv[1:8]
    exchange = ex.make_exchange("binance", urls=url, timeout_ms=5000)
    exchange.rateLimit = 1
    exchange.load_markets()
    print("ready", flush=True)
    r = bf.backfill_pair(exchange, pair, tf, data_dir, limit=int(limit), now_ms=int(now_ms),
                         page_limit=int(page), retry=ex.RetryPolicy(max_attempts=3, base_delay_s=0.05))
    print("done", r.rows_added, r.error, flush=True)
    sys.exit(0 if r.ok else 3)
    """
)


def start_child(server: ExchangeServer, data_dir: Path, pair: str, tf: str, limit: int, page: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url, str(data_dir), pair, tf, str(limit), str(NOW_MS), str(page)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_ready(child: subprocess.Popen) -> None:
    line = child.stdout.readline()
    assert line.strip() == "ready", f"child did not start: {line!r} {child.stderr.read()}"


def finish(child: subprocess.Popen) -> tuple[str, str]:
    """Wait for a child and return (stdout, stderr). Not communicate(): after readline() part of
    stdout may sit in the text buffer, which communicate() would not see."""
    child.wait(timeout=60)
    out, err = child.stdout.read(), child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    return out, err


def assert_prefix_or_equal(data_dir: Path, want: dict[str, pd.DataFrame], context: str) -> int:
    """Every CSV under data_dir is valid and a prefix of the source; return rows found."""
    total = 0
    for path in sorted(Path(data_dir, "ohlcv").glob("*/*.csv")):
        got = ds.read_candles(path)  # raises DataError on any corrupt or truncated file
        source = want[path.name.removesuffix(".csv")]
        pd.testing.assert_frame_equal(got, source.iloc[: len(got)], check_index_type=False, obj=f"{path} {context}")
        total += len(got)
    return total


@pytest.fixture
def server(exchange_server):  # noqa: F811
    exchange_server.now_ms = NOW_MS
    return exchange_server


@pytest.mark.slow
def test_sigkill_mid_write_leaves_valid_prefix_files(server, tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    limit = 1500
    want = {"1m": expected(server, "BTCUSDT", "1m", limit)}
    sizes = []
    for round_ in range(5):
        child = start_child(server, tmp_path, "BTCUSDT", "1m", limit, page=40)
        wait_ready(child)
        time.sleep(rng.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
        child.stderr.close()
        sizes.append(assert_prefix_or_equal(tmp_path, want, f"after kill {round_} (seed {seed})"))
    # a final, uninterrupted run completes the file, and no temporary file is left
    child = start_child(server, tmp_path, "BTCUSDT", "1m", limit, page=200)
    wait_ready(child)
    out, err = finish(child)
    assert child.returncode == 0, err
    assert assert_prefix_or_equal(tmp_path, want, "after the final run") == len(want["1m"])
    folder = tmp_path / "ohlcv" / "BTCUSDT"
    assert [p.name for p in folder.iterdir() if ".tmp-" in p.name] == []
    assert ds.read_source(folder / "1m.csv") == "binance"
    assert max(sizes) > 0, f"no kill happened after a write (sizes {sizes}); the test proved nothing"


@pytest.mark.slow
def test_two_processes_backfilling_one_pair_leave_one_correct_file(server, tmp_path):
    children = [start_child(server, tmp_path, "ETHUSDT", "5m", 600, page=50) for _ in range(2)]
    for child in children:
        wait_ready(child)
    outputs = [finish(child) for child in children]
    assert [c.returncode for c in children] == [0, 0], outputs
    assert all(out.startswith("done ") for out, _ in outputs), outputs
    added = sorted(int(out.split()[1]) for out, _ in outputs)
    want = expected(server, "ETHUSDT", "5m", 600)
    assert added == [0, len(want)]  # the lock made the second wait, then find nothing new
    got = ds.read_candles(ds.candle_path(tmp_path, "ETHUSDT", "5m"))
    pd.testing.assert_frame_equal(got, want, check_index_type=False)
