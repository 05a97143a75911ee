"""engine.publish.health: running / idle / due / late, judged from the cycle's own start and duration."""
from __future__ import annotations

import json

import pytest

from engine.errors import DataError
from engine.publish.health import (HEALTH_FILE, START_GRACE_S, CycleHealth, judge_health, mark_cycle_finished,
                                   mark_cycle_started, read_health)
from engine.publish.server import cache_control_for

T0 = 1_700_000_040_000  # a cycle start, epoch ms (a minute boundary + 40 s)
S = 1000


def test_a_healthy_loop_with_cycles_longer_than_the_interval_is_never_late(tmp_path):
    """The review's loop: 60 s interval, cycles of 42–97 s. next_run is fixed at the cycle's start,
    so it is often already past when the cycle ends; the next cycle then starts at once."""
    interval = 60
    start = T0
    seen = set()
    for duration_s in (97, 42, 80, 10, 61, 97, 59):
        next_run = (start // (interval * S) + 1) * interval * S
        mark_cycle_started(tmp_path, start, next_run_ms=next_run, interval_s=interval)
        for t in range(start, start + duration_s * S, 5 * S):  # the page's clock, every 5 s
            r = judge_health(read_health(tmp_path / HEALTH_FILE), t)
            seen.add(r.state)
            assert r.state == "running", (duration_s, t - start)
        finished = start + duration_s * S
        mark_cycle_finished(tmp_path, start, finished, next_run_ms=next_run, interval_s=interval)
        next_start = max(next_run, finished) + 300  # the loop sleeps max(0, next_run - now), then starts
        for t in range(finished, next_start, 1 * S):
            r = judge_health(read_health(tmp_path / HEALTH_FILE), t)
            seen.add(r.state)
            assert r.state in ("idle", "due"), (duration_s, t - finished, r)
        start = next_start
    assert seen == {"running", "idle", "due"}


def test_idle_until_the_due_time_then_due_then_late():
    h = CycleHealth(False, T0, T0 + 20 * S, next_run_ms=T0 + 60 * S, interval_s=60, last_duration_s=20)
    assert judge_health(h, T0 + 30 * S).state == "idle" and judge_health(h, T0 + 30 * S).due_ms == T0 + 60 * S
    assert judge_health(h, T0 + 60 * S + int(START_GRACE_S * S)).state == "due"
    late = judge_health(h, T0 + 60 * S + int(START_GRACE_S * S) + S)
    assert late.state == "late" and late.late_s == pytest.approx(START_GRACE_S + 1)
    # a cycle that ran past its next_run: due at its own finish, not at next_run
    long = CycleHealth(False, T0, T0 + 97 * S, next_run_ms=T0 + 20 * S, interval_s=60, last_duration_s=97)
    assert judge_health(long, T0 + 97 * S + 60 * S) == judge_health(long, T0 + 97 * S + 60 * S)
    assert judge_health(long, T0 + 97 * S + 60 * S).state == "due"


def test_a_running_cycle_is_late_only_far_beyond_its_usual_duration():
    h = CycleHealth(True, T0, None, next_run_ms=T0 + 20 * S, interval_s=60, last_duration_s=300)
    assert judge_health(h, T0 + 899 * S).state == "running"  # 3 × 300 s
    r = judge_health(h, T0 + 901 * S)
    assert r.state == "late" and r.limit_s == 900 and r.elapsed_s == pytest.approx(901)
    first = CycleHealth(True, T0)  # a first cycle, no previous duration: 10 minutes before late
    assert judge_health(first, T0 + 599 * S).state == "running" and judge_health(first, T0 + 601 * S).state == "late"


def test_a_single_run_is_idle_without_a_due_time_and_no_record_is_unknown():
    once = CycleHealth(False, T0, T0 + 30 * S)
    assert judge_health(once, T0 + 86_400 * S).state == "idle" and judge_health(once, T0).due_ms is None
    assert judge_health(None, T0).state == "unknown"


def test_health_file_round_trip_carries_the_last_duration_and_names_a_bad_file(tmp_path):
    mark_cycle_finished(tmp_path, T0, T0 + 42_500, next_run_ms=T0 + 20 * S, interval_s=60)
    mark_cycle_started(tmp_path, T0 + 42_600, next_run_ms=T0 + 80 * S, interval_s=60)
    h = read_health(tmp_path / HEALTH_FILE)
    assert h == CycleHealth(True, T0 + 42_600, None, T0 + 80 * S, 60.0, 42.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [HEALTH_FILE]  # no lock or temporary file
    (tmp_path / HEALTH_FILE).write_text(json.dumps({"running": "yes", "started_at_ms": 1}))
    with pytest.raises(DataError, match=r"health.json → running = 'yes'"):
        read_health(tmp_path / HEALTH_FILE)
    mark_cycle_started(tmp_path, T0)  # a broken file is replaced, not fatal
    assert read_health(tmp_path / HEALTH_FILE).last_duration_s is None


def test_health_json_is_never_cached():
    assert cache_control_for("health.json") == "no-store"
