"""Is the maintainer loop running, idle or late? ``public_dir/health.json`` and how to read it.

The cycle writes the file twice (:func:`engine.cycle.run_once`): when it starts (``running: true``)
and when its status is written (``running: false``, with the next scheduled start). The open
dashboard polls it, so the page can say "running now" during a long cycle instead of guessing from
the last render.

A cycle is late only when the loop really missed its schedule, judged from the cycle's own start
and duration (:func:`judge_health`): the loop computes the next start at the *start* of a cycle,
and a cycle that takes longer than the interval is followed at once by the next one, so the next
start is ``max(next_run_ms, finished_at_ms)``, not ``next_run_ms``.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine import fileio
from engine.errors import DataError
from engine.records import Fields, display_path, read_json_document

logger = logging.getLogger(__name__)

HEALTH_FILE = "health.json"
#: Seconds after its due time before a cycle that has not started counts as late (the loop re-reads
#: its config files and the page polls every 15 s; a minute and a half covers both).
START_GRACE_S = 90.0
#: A running cycle is late once it has run this many times the previous cycle's duration …
RUNNING_FACTOR = 3.0
#: … and at least this long (seconds): a first cycle compiles kernels and backfills.
RUNNING_MIN_S = 600.0

HealthState = Literal["running", "idle", "due", "late", "unknown"]


@dataclass(frozen=True)
class CycleHealth:
    """One state of the loop as written to health.json.

    Attributes
    ----------
    running : bool
        True from the start of a cycle until its status.json is written.
    started_at_ms : int
        Wall-clock start of the current (running) or last (finished) cycle, epoch ms UTC.
    finished_at_ms : int or None
        When that cycle finished (None while it runs).
    next_run_ms : int or None
        The loop's planned next start, computed at the cycle's start (None: a single run, no loop).
    interval_s : float or None
        ``runtime.loop_interval_s`` of the loop (None: a single run).
    last_duration_s : float or None
        Duration of the last finished cycle, seconds (while running: the one before).
    """

    running: bool
    started_at_ms: int
    finished_at_ms: int | None = None
    next_run_ms: int | None = None
    interval_s: float | None = None
    last_duration_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the health.json document."""
        return {"running": self.running, "started_at_ms": self.started_at_ms, "finished_at_ms": self.finished_at_ms,
                "next_run_ms": self.next_run_ms, "interval_s": self.interval_s,
                "last_duration_s": self.last_duration_s}

    @classmethod
    def from_json(cls, doc: Any, file: str = HEALTH_FILE) -> CycleHealth:
        """Read a health.json document; DataError naming the file and key when it is malformed."""
        f = Fields(doc, file)

        def opt_float(key: str) -> float | None:
            v = f.float(key, optional=True)
            return None if math.isnan(v) else v

        return cls(f.bool("running"), f.int("started_at_ms"), f.int("finished_at_ms", optional=True, default=None),
                   f.int("next_run_ms", optional=True, default=None), opt_float("interval_s"),
                   opt_float("last_duration_s"))


@dataclass(frozen=True)
class HealthReading:
    """What :func:`judge_health` concludes at one moment.

    ``state``: ``running`` (a cycle runs, for ``elapsed_s``), ``idle`` (the next cycle starts at
    ``due_ms``), ``due`` (it is due and should start any moment), ``late`` (the loop missed its
    schedule: ``late_s`` past the due time, or a cycle running far longer than usual), ``unknown``
    (no record). ``due_ms`` is None for a single run (no loop).
    """

    state: HealthState
    due_ms: int | None = None
    elapsed_s: float | None = None
    late_s: float | None = None
    limit_s: float | None = None


def judge_health(health: CycleHealth | None, now_ms: int) -> HealthReading:
    """Judge the loop at `now_ms` (epoch ms UTC) from its last health record.

    Rules (the dashboard's JavaScript applies the same):

    - running: late once it has run longer than ``max(RUNNING_MIN_S, RUNNING_FACTOR ×
      last_duration_s, 2 × interval_s)``;
    - finished: the next start is ``due = max(next_run_ms, finished_at_ms)`` (a cycle longer than the
      interval is followed at once); ``idle`` before it, ``due`` up to :data:`START_GRACE_S` after,
      then ``late``. Without ``next_run_ms`` (a single run) it stays ``idle`` with no due time.
    """
    if health is None:
        return HealthReading("unknown")
    if health.running:
        elapsed = max(0.0, (now_ms - health.started_at_ms) / 1000.0)
        limit = max(RUNNING_MIN_S, RUNNING_FACTOR * (health.last_duration_s or 0.0), 2.0 * (health.interval_s or 0.0))
        if elapsed > limit:
            return HealthReading("late", elapsed_s=elapsed, late_s=elapsed - limit, limit_s=limit)
        return HealthReading("running", elapsed_s=elapsed, limit_s=limit)
    if health.next_run_ms is None:
        return HealthReading("idle")
    due = max(health.next_run_ms, health.finished_at_ms or health.started_at_ms)
    past = (now_ms - due) / 1000.0
    if past < 0:
        return HealthReading("idle", due_ms=due)
    if past <= START_GRACE_S:
        return HealthReading("due", due_ms=due)
    return HealthReading("late", due_ms=due, late_s=past)


def read_health(path: Path) -> CycleHealth:
    """Return the record in health.json.

    Raises
    ------
    DataError
        Naming the file when it is not JSON or not of the documented shape.
    """
    return CycleHealth.from_json(read_json_document(path), display_path(path))


def _write(public_dir: Path, health: CycleHealth) -> Path:
    path = Path(public_dir) / HEALTH_FILE
    data = json.dumps(health.to_json(), allow_nan=False).encode("utf-8")
    return fileio.atomic_write_bytes(path, data, lock=False, mode=0o644)  # served: no lock file beside it


def mark_cycle_started(public_dir: Path, started_at_ms: int, *, next_run_ms: int | None = None,
                       interval_s: float | None = None) -> Path:
    """Write health.json at the start of a cycle (``running: true``); return its path.

    The duration of the previous finished cycle is carried over from the file it replaces.

    Raises
    ------
    OSError
        If the public folder cannot be written (the cycle logs it and goes on).
    """
    last = None
    path = Path(public_dir) / HEALTH_FILE
    if path.is_file():
        try:
            last = read_health(path).last_duration_s
        except DataError as e:
            logger.warning("%s; starting a new one", e)
    return _write(public_dir, CycleHealth(True, started_at_ms, None, next_run_ms, interval_s, last))


def mark_cycle_finished(public_dir: Path, started_at_ms: int, finished_at_ms: int, *, next_run_ms: int | None = None,
                        interval_s: float | None = None) -> Path:
    """Write health.json when a cycle has finished (``running: false``); return its path.

    Raises
    ------
    OSError
        If the public folder cannot be written (the cycle logs it and goes on).
    """
    duration = max(0.0, (finished_at_ms - started_at_ms) / 1000.0)
    return _write(public_dir, CycleHealth(False, started_at_ms, finished_at_ms, next_run_ms, interval_s, duration))


__all__ = ["HEALTH_FILE", "RUNNING_FACTOR", "RUNNING_MIN_S", "START_GRACE_S", "CycleHealth", "HealthReading",
           "judge_health", "mark_cycle_finished", "mark_cycle_started", "read_health"]
