"""The numba cache stamp: cached kernels compiled from other sources are deleted, never run."""
from __future__ import annotations

import logging

from engine.backtest import warmup


def _entries(root, names):
    for name in names:
        (root / name).write_bytes(b"x")


def test_stale_kernels_are_deleted_and_the_cache_reads_cold(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    sub = tmp_path / "engine_backtest"
    sub.mkdir()
    ours = ["core_nb.advance_nb-80.py311.nbi", "core_nb.advance_nb-80.py311.1.nbc", "kernel_nb.grid_nb-170.py311.nbi"]
    other = ["mylib_nb.f-1.py311.nbi", "other.g-2.py311.nbc"]   # not the engine's: left alone
    _entries(sub, ours + other)
    # kernels cached without a stamp (an install from before stamps, or another tree): stale
    with caplog.at_level(logging.WARNING, logger="engine.backtest.warmup"):
        assert not warmup.kernels_cached()
    assert sorted(p.name for p in sub.iterdir()) == sorted(other)
    assert "compiled from other sources; deleted" in caplog.text
    # compiled from these sources: stamped, and then warm
    _entries(sub, ours)
    warmup.write_stamp()
    assert (tmp_path / warmup.STAMP_FILE).read_text().strip() == warmup.sources_stamp()
    assert warmup.kernels_cached()
    assert sorted(p.name for p in sub.iterdir()) == sorted(ours + other)
    # a stamp of other sources (an edited core_nb.py, a pulled update): stale again
    (tmp_path / warmup.STAMP_FILE).write_text("0" * 64 + "\n")
    assert not warmup.kernels_cached()
    assert sorted(p.name for p in sub.iterdir()) == sorted(other)


def test_empty_cache_is_cold_and_the_stamp_covers_every_kernel_source(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not warmup.kernels_cached()
    stamp = warmup.sources_stamp()
    assert len(stamp) == 64 and stamp == warmup.sources_stamp()
    sources = {p.name for d in warmup.KERNEL_DIRS for p in (warmup._ENGINE / d).glob("*_nb.py")}
    assert {"core_nb.py", "kernel_nb.py", "indicators_nb.py", "twins_nb.py", "rules_nb.py"} <= sources
