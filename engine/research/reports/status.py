"""The cycle's status (status.json) and the records every report shares: stage errors, clock
readings, recorded gaps, and the words for a data source."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.clock import Clock, ClockKind, iso_ms
from engine.fileio import json_safe
from engine.records import Fields
from engine.states import PairState
from engine.types import DataSource

#: Stages a :class:`StageError` names.
Stage = Literal["setup", "housekeeping", "watchlist", "backfill", "lookahead", "research", "promotion", "paper", "status", "config"]
STAGES: tuple[str, ...] = ("setup", "housekeeping", "watchlist", "backfill", "lookahead", "research", "promotion", "paper", "status", "config")


def describe_source(source: DataSource | None, exchanges: tuple[str, ...] = ()) -> str:
    """Return the words for a data source: ``"binance"``, ``"offline sample"``,
    ``"offline: stored binance candles kept, sample for the rest"``, ``"unknown"``."""
    names = ", ".join(exchanges)
    if source is DataSource.EXCHANGE:
        return names or "exchange"
    if source is DataSource.SAMPLE:
        return "offline sample"
    if source is DataSource.STORED:
        return f"offline: stored {names or 'exchange'} candles kept, sample for the rest"
    if source is DataSource.LOCAL:
        return "local data"
    return "unknown"


@dataclass(frozen=True)
class StageError:
    """One failure of one stage, for one (pair, timeframe) or for the whole stage.

    Attributes
    ----------
    stage : "watchlist" | "backfill" | "research" | "promotion" | "paper" …
    message : str
        What went wrong, as logged (the EngineError's message).
    pair, timeframe : str or None
        None when the stage failed as a whole (the watchlist).
    """

    stage: Stage
    message: str
    pair: str | None = None
    timeframe: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return ``{"pair", "timeframe", "stage", "message"}``."""
        return {"pair": self.pair, "timeframe": self.timeframe, "stage": self.stage, "message": self.message}

    @classmethod
    def from_json(cls, f: Fields) -> StageError:
        return cls(f.str("stage", choices=STAGES), f.str("message", optional=True, default=""),
                   f.str("pair", optional=True), f.str("timeframe", optional=True))


@dataclass(frozen=True)
class ClockReading:
    """What a clock showed when a report was written: ``kind`` ("wall" | "replay"), ``now_ms``
    (epoch ms UTC) and ``label`` (words for the dashboard, :attr:`engine.clock.Clock.label`)."""

    kind: ClockKind
    now_ms: int
    label: str

    @classmethod
    def of(cls, clock: Clock) -> ClockReading:
        """Read `clock` now."""
        return cls(clock.kind, clock.now_ms(), clock.label)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "now_ms": self.now_ms, "label": self.label}

    @classmethod
    def from_json(cls, f: Fields) -> ClockReading:
        return cls(f.str("kind", choices=("wall", "replay")), f.int("now_ms"),
                   f.str("label", optional=True, default=""))


@dataclass(frozen=True)
class Gap:
    """A recorded exchange gap: ``from_ms``/``to_ms`` the open times of the first and last
    missing candle, ``n_missing`` candles, ``source`` the exchange that has none."""

    pair: str
    timeframe: str
    from_ms: int
    to_ms: int
    n_missing: int
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"pair": self.pair, "timeframe": self.timeframe, "from_ms": self.from_ms, "to_ms": self.to_ms,
                "n_missing": self.n_missing, "source": self.source}

    @classmethod
    def from_json(cls, f: Fields) -> Gap:
        return cls(f.str("pair"), f.str("timeframe"), f.int("from_ms"), f.int("to_ms"), f.int("n_missing"),
                   f.str("source", optional=True))


@dataclass(frozen=True)
class CycleStatus:
    """status.json: what the last maintainer cycle did and saw.

    Attributes
    ----------
    started_at_ms, finished_at_ms : int
        Wall-clock times of the cycle (epoch ms UTC); ``next_run_ms`` when the loop runs next
        (None after a single run). The JSON groups them under ``cycle`` with ``started_at``
        (ISO) and ``duration_s``.
    clock : ClockReading
        The cycle's "now" (wall clock, or the replay clock on the bundled sample).
    data_source : DataSource
        EXCHANGE (live), SAMPLE (offline on the bundled sample) or STORED (offline, stored
        exchange candles kept); ``exchanges`` the ccxt ids involved (empty for the sample).
    risk_mode : str
        The promotion rule set in force.
    timeframes, pairs : tuple of str
        What the cycle covered; ``states`` the state of each pair × timeframe.
    errors : tuple of StageError
    gaps : tuple of Gap
        Recorded exchange gaps of the covered pairs and timeframes.
    n_rows, n_candidates, n_promoted, n_active : int
        Summary rows, candidates, newly promoted, and active strategies after expiry.
    config_problem : str or None
        A config file that failed validation while the loop runs (file, key, problem): the loop
        keeps the last good settings and the dashboard shows this until the file is fixed.
    """

    started_at_ms: int
    finished_at_ms: int
    clock: ClockReading
    data_source: DataSource
    risk_mode: str
    timeframes: tuple[str, ...]
    pairs: tuple[str, ...]
    states: tuple[PairState, ...] = ()
    errors: tuple[StageError, ...] = ()
    gaps: tuple[Gap, ...] = ()
    exchanges: tuple[str, ...] = ()
    next_run_ms: int | None = None
    n_rows: int = 0
    n_candidates: int = 0
    n_promoted: int = 0
    n_active: int = 0
    config_problem: str | None = None

    @property
    def duration_s(self) -> float:
        """Wall time of the cycle in seconds."""
        return (self.finished_at_ms - self.started_at_ms) / 1000.0

    @property
    def source_text(self) -> str:
        """:func:`describe_source` of this cycle."""
        return describe_source(self.data_source, self.exchanges)

    def to_json(self) -> dict[str, Any]:
        return json_safe({
            "cycle": {"started_at_ms": self.started_at_ms, "finished_at_ms": self.finished_at_ms,
                      "started_at": iso_ms(self.started_at_ms), "duration_s": self.duration_s,
                      "next_run_ms": self.next_run_ms},
            "clock": self.clock.to_json(), "data_source": self.data_source.value, "exchanges": list(self.exchanges),
            "risk_mode": self.risk_mode, "timeframes": list(self.timeframes), "pairs": list(self.pairs),
            "states": [s.to_json() for s in self.states], "errors": [e.to_json() for e in self.errors],
            "gaps": [g.to_json() for g in self.gaps], "n_rows": self.n_rows, "n_candidates": self.n_candidates,
            "n_promoted": self.n_promoted, "n_active": self.n_active, "config_problem": self.config_problem})

    @classmethod
    def from_json(cls, f: Fields) -> CycleStatus:
        cycle = f.fields("cycle")
        return cls(
            started_at_ms=cycle.int("started_at_ms"), finished_at_ms=cycle.int("finished_at_ms"),
            next_run_ms=cycle.int("next_run_ms", optional=True), clock=ClockReading.from_json(f.fields("clock")),
            data_source=f.enum("data_source", DataSource), exchanges=f.strs("exchanges", optional=True),
            risk_mode=f.str("risk_mode"), timeframes=f.strs("timeframes"), pairs=f.strs("pairs"),
            states=tuple(PairState.from_json(s) for s in f.items("states")),
            errors=tuple(StageError.from_json(e) for e in f.items("errors")),
            gaps=tuple(Gap.from_json(g) for g in f.items("gaps")),
            n_rows=f.int("n_rows"), n_candidates=f.int("n_candidates", optional=True, default=0),
            n_promoted=f.int("n_promoted"), n_active=f.int("n_active"),
            config_problem=f.str("config_problem", optional=True))
