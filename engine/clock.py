"""The one "now" of a cycle: the wall clock, or a replay clock on the bundled sample.

With candles from an exchange, now is the wall clock. Offline, the workbench runs on the bundled
real candles of April 2021, and now is the close of their last candle, so states, expiry and the
dashboard read as they did at that moment. The dashboard always says which clock is in use.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timezone
from typing import Callable, Literal

ClockKind = Literal["wall", "replay"]


def format_ms(timestamp_ms: int | None) -> str:
    """Return ``"2021-05-02 23:59 UTC"`` for an epoch-ms timestamp (``"—"`` for None)."""
    if timestamp_ms is None:
        return "—"
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def iso_ms(timestamp_ms: int) -> str:
    """Return the ISO 8601 UTC form of an epoch-ms timestamp: ``"2021-05-02T23:59:00Z"``."""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_ms(text: str) -> int:
    """Return epoch ms of an ISO 8601 time (``Z`` or an offset; a naive time is taken as UTC).

    Raises
    ------
    ValueError
        If `text` is not an ISO 8601 time.
    """
    dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class Clock:
    """Decides "now" in epoch milliseconds UTC.

    Attributes
    ----------
    kind : "wall" | "replay"
        ``wall``: `time_fn` (:func:`time.time`); ``replay``: frozen at ``replay_ms``.
    replay_ms : int or None
        For a replay clock, the moment it shows: the close of the data set's last candle.
    note : str
        What that moment is, for the dashboard (``last candle of the sample``).
    """

    kind: ClockKind = "wall"
    replay_ms: int | None = None
    time_fn: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    note: str = field(default="last candle of the sample", compare=False)

    @classmethod
    def wall(cls, time_fn: Callable[[], float] = time.time) -> Clock:
        """Return the wall clock; `time_fn` returns epoch seconds (injectable for tests)."""
        return cls("wall", None, time_fn)

    @classmethod
    def replay(cls, now_ms: int, note: str = "last candle of the sample") -> Clock:
        """Return a clock frozen at `now_ms` (epoch ms UTC); `note` says what that moment is."""
        return cls("replay", int(now_ms), note=note)

    def now_ms(self) -> int:
        """Return now in epoch milliseconds UTC."""
        if self.kind == "replay":
            assert self.replay_ms is not None
            return self.replay_ms
        return int(self.time_fn() * 1000)

    @property
    def label(self) -> str:
        """Human words for the dashboard: ``"replay clock 2021-05-03 00:00 UTC"``."""
        if self.kind == "replay":
            return f"replay clock {format_ms(self.replay_ms)} ({self.note})"
        return f"wall clock {format_ms(self.now_ms())}"

    def as_dict(self) -> dict:
        """Return ``{"kind", "now_ms", "label"}`` for status.json."""
        return {"kind": self.kind, "now_ms": self.now_ms(), "label": self.label}


def clock_for_run(reports_dir: Path | str) -> Clock:
    """Return the clock a stand-alone job (research, promotion, render) runs on: the last cycle's.

    The cycle decides "now" (wall clock online, replay clock on the bundled sample) and records it
    in ``<reports_dir>/status.json``; every job that runs alone afterwards reads it from there
    through this one function, so a promotion and a dry-run never disagree about what expired.
    With no (readable) status, or a wall-clock status, it is the wall clock.
    """
    try:
        status = json.loads((Path(reports_dir) / "status.json").read_text(encoding="utf-8"))
        clock = status.get("clock") or {}
        if clock.get("kind") == "replay":
            return Clock.replay(int(clock["now_ms"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return Clock.wall()
