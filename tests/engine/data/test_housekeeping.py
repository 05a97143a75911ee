"""Moved-aside files and leftovers: kept for the retention period, then cleaned up."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from engine.data.housekeeping import TMP_MAX_AGE_S, clean_leftovers, move_aside


def test_move_aside_keeps_the_file_and_its_sidecar(tmp_path, caplog):
    path = tmp_path / "1m.csv"
    path.write_text("timestamp,open,high,low,close,volume\n")
    sidecar = tmp_path / "1m.source.json"
    sidecar.write_text('{"source": "binance"}')
    with caplog.at_level("WARNING"):
        target = move_aside(path, "replaced", "holds binance candles", companions=[sidecar])
    assert not path.exists() and target.read_text().startswith("timestamp")
    assert target.name.startswith("1m.csv.replaced-") and target.name.endswith("Z")
    assert (tmp_path / ("1m.source.json" + target.name[len("1m.csv"):])).exists()
    assert str(path) in caplog.text and str(target) in caplog.text
    path.write_text("again")
    second = move_aside(path, "replaced", "twice in one second")
    assert second != target and second.exists()  # a -k suffix, never overwriting the first


def test_clean_leftovers_by_age_and_by_writer(tmp_path):
    now = time.time()
    old = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 8 * 86_400))
    recent = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 2 * 86_400))
    (tmp_path / "ohlcv" / "BTCUSDT").mkdir(parents=True)
    old_aside = tmp_path / "ohlcv" / "BTCUSDT" / f"1m.csv.corrupt-{old}"
    new_aside = tmp_path / "ohlcv" / "BTCUSDT" / f"1m.csv.replaced-{recent}"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_tmp = tmp_path / f".summary.json.tmp-{int(dead.stdout)}-0a1b2c3d"
    live_tmp = tmp_path / f".summary.json.tmp-{os.getpid()}-0a1b2c3d"  # a writer still running: kept
    stale_live = tmp_path / f".status.json.tmp-{os.getpid()}-ffffffff"
    for p in (old_aside, new_aside, dead_tmp, live_tmp, stale_live):
        p.write_text("x")
    os.utime(stale_live, (now - TMP_MAX_AGE_S - 10, now - TMP_MAX_AGE_S - 10))
    keep = tmp_path / "summary.json"
    keep.write_text("{}")
    out = clean_leftovers([tmp_path, tmp_path / "missing"], retention_days=7, now_s=now)
    assert (out.n_tmp, out.n_aside) == (2, 1)
    assert not old_aside.exists() and not dead_tmp.exists() and not stale_live.exists()
    assert new_aside.exists() and live_tmp.exists() and keep.exists()
