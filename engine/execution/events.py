"""The event log: every intent, decision, order and fill, as JSON lines (and Redis streams when set).

``<data_dir>/trading/<YYYY-MM-DD>/events.jsonl`` (UTC date of the event), one JSON object per line:
``{"ts_ms", "kind", "strategy", "pair", "timeframe", "mode", "data"}``. Each line is appended with one
``write`` call on a file opened with ``O_APPEND`` under the file's lock (:func:`engine.fileio.lock_for`),
so concurrent writers never interleave and a killed writer never leaves half a line; :func:`read_events`
reads any date range back into a DataFrame.

With ``REDIS_URL`` set, every event is also added to a Redis stream (``XADD``): intents and decisions
to ``orders:signals``, orders and fills to ``orders:shadow`` (dry-run) or ``orders:live`` — the seed's
trading-core streams. A Redis failure is one WARNING per sink, never a lost log line.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import pandas as pd

from engine import fileio

logger = logging.getLogger(__name__)

EventKind = Literal["intent", "decision", "order", "fill", "position", "golive", "killswitch"]
KINDS = ("intent", "decision", "order", "fill", "position", "golive", "killswitch")
#: Redis stream of each kind of event (the seed's names).
SIGNAL_STREAM, SHADOW_STREAM, LIVE_STREAM = "orders:signals", "orders:shadow", "orders:live"
EVENT_COLUMNS = ("ts_ms", "kind", "strategy", "pair", "timeframe", "mode", "data")


@dataclass(frozen=True)
class Event:
    """One event of the execution flow.

    Attributes
    ----------
    ts_ms : int
        When it happened (epoch ms UTC): the candle time for replays, the wall clock live.
    kind : str
        One of :data:`KINDS`.
    strategy : str
        ``<PAIR>_<TF>_<entry set>`` of the promoted strategy (``""`` for desk-wide events).
    pair, timeframe : str
    mode : str
        ``dry-run``, ``validate-only`` or ``live``.
    data : dict
        The intent, decision, order or fill as JSON (its record's ``to_json``).
    """

    ts_ms: int
    kind: str
    strategy: str
    pair: str
    timeframe: str
    mode: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return fileio.json_safe(asdict(self))

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Event:
        return cls(**{k: d[k] for k in EVENT_COLUMNS})


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


class RedisSink:
    """XADD events to Redis streams (``REDIS_URL``); failures log one WARNING and are then skipped."""

    def __init__(self, url: str, *, maxlen: int = 100_000) -> None:
        import redis

        self.url = url
        self.maxlen = maxlen
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._warned = False

    @staticmethod
    def stream_for(event: Event) -> str:
        """``orders:signals`` for intents and decisions; ``orders:live`` for live orders and fills;
        ``orders:shadow`` for every other order and fill."""
        if event.kind in ("intent", "decision"):
            return SIGNAL_STREAM
        return LIVE_STREAM if event.mode == "live" else SHADOW_STREAM

    def add(self, event: Event) -> None:
        import redis

        try:
            self._client.xadd(self.stream_for(event), {"event": json.dumps(event.to_json(), allow_nan=False)},
                              maxlen=self.maxlen, approximate=True)
        except redis.RedisError as e:
            if not self._warned:
                logger.warning("Redis %s: %s; events still go to the JSONL log", self.url, str(e).splitlines()[0][:200])
                self._warned = True


class EventLog:
    """Append-only JSONL event log under ``<data_dir>/trading/`` (plus Redis streams with a sink).

    Parameters
    ----------
    data_dir : path
        ``runtime.data_dir``.
    redis_url : str, optional
        ``REDIS_URL``; None: no Redis (default: the environment's ``REDIS_URL`` when `use_env`).
    """

    def __init__(self, data_dir: Path | str, *, redis_url: str | None = None, use_env: bool = True) -> None:
        self.root = Path(data_dir) / "trading"
        url = redis_url if redis_url is not None else (os.environ.get("REDIS_URL") if use_env else None)
        self.redis = RedisSink(url) if url else None

    def path_for(self, ts_ms: int) -> Path:
        """The JSONL file of the UTC day of `ts_ms`."""
        return self.root / _day(ts_ms) / "events.jsonl"

    def append(self, event: Event) -> None:
        """Append one event: one line, one ``write`` call, under the file's lock."""
        line = (json.dumps(event.to_json(), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        path = self.path_for(event.ts_ms)
        path.parent.mkdir(parents=True, exist_ok=True)
        with fileio.lock_for(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        if self.redis is not None:
            self.redis.add(event)

    def extend(self, events: Iterable[Event]) -> None:
        for e in events:
            self.append(e)


def read_events(data_dir: Path | str, *, kinds: Iterable[str] | None = None, strategy: str | None = None) -> pd.DataFrame:
    """Read every event of ``<data_dir>/trading/*/events.jsonl`` into a DataFrame (time order).

    Columns :data:`EVENT_COLUMNS` (``data`` holds the dicts). A last line without its newline (a
    writer killed mid-line on another filesystem) is skipped with one WARNING; any other unreadable
    line is reported the same way, naming file and line.
    """
    rows = []
    for path in sorted((Path(data_dir) / "trading").glob("*/events.jsonl")):
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                logger.warning("%s line %d: not a complete JSON line; skipped", path, n)
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    if kinds is not None:
        frame = frame[frame["kind"].isin(list(kinds))]
    if strategy is not None:
        frame = frame[frame["strategy"] == strategy]
    return frame.sort_values("ts_ms", kind="stable").reset_index(drop=True)
