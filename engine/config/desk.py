"""Schema and loader of ``engine/config/desk.yaml``: the testnet desk's limits, usage store and profiles.

The file (every key, its type, range, default and unit in :data:`DESK_YAML`)::

    limits:
      run:     {max_notional_quote: 200, max_trades: 20, max_duration_minutes: 240}
      day:     {max_notional_quote: 1000, max_trades: 100}        # per UTC day, all runs together
      symbols: {allowed: [BTC/USDT, ETH/USDT]}                    # null = every symbol
    usage:     {dir: null, retention_days: 30}                    # null dir = <data_dir>/desk/usage
    sessions:  {auto_report: true, warmup_bars: 500}
    profiles:
      quick_smoke:
        strategy: sma_cross        # an entry set of entries_config.json, or "promoted"
        symbol: BTC/USDT
        timeframe: 1m
        duration_minutes: 15
        max_notional_quote: 30
        max_trades: 3
        exchange: null             # null = runtime.exchange
        params: {}                 # overrides of the entry set's parameters
        description: one line

``SCALP_DESK_CONFIG`` names another file. Validation runs in two passes like every config file:
structure (:func:`engine.config.schema.check`: types, ranges, unknown keys with a "did you mean"),
then relations (symbols are pairs, a session lasts at least one candle, the symbol allow-list is not
empty). Whether a profile's strategy exists is checked when the profile is resolved
(:mod:`engine.desk.profiles`), against entries_config.json and the promoted strategies.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.config import CONFIG_DIR, ENV_PREFIX, _display, _read_yaml, _resolve_path
from engine.config.schema import Block, Key, _fail, check
from engine.errors import ConfigError
from engine.markets import TIMEFRAME_MS, folder_to_pair, pair_to_folder

DESK_YAML_PATH = CONFIG_DIR / "desk.yaml"
#: The strategy name that makes a profile trade the promoted strategy of its symbol × timeframe.
PROMOTED = "promoted"

PROFILE = Block(
    doc="one session profile: what a session trades, for how long, with how much",
    keys={
        "strategy": Key("str", None, f'an entry set of entries_config.json, or "{PROMOTED}" (the promoted strategy '
                                     "of the profile's symbol × timeframe in runtime.strategies_file)", required=True),
        "symbol": Key("str", None, "pair traded, e.g. BTC/USDT", required=True),
        "timeframe": Key("str", None, "candle timeframe of the strategy", choices=tuple(TIMEFRAME_MS), required=True),
        "duration_minutes": Key("int", None, "session length in minutes", lo=1, hi=7 * 24 * 60, required=True),
        "max_notional_quote": Key("float", None, "most the session's entries may spend together, quote currency",
                                  lo=0.0, required=True),
        "max_trades": Key("int", None, "most trades (entries) the session may open", lo=0, required=True),
        "exchange": Key("str", None, "ccxt exchange id of a testnet run; null = runtime.exchange", nullable=True),
        "params": Key("dict", {}, "overrides of the entry set's signal parameters (not with strategy: promoted)"),
        "description": Key("str", "", "one line for --list and the report", nullable=True),
    },
)

DESK_YAML = Block(
    keys={
        "limits": Block(doc="testnet limits; they add to the execution guards (execution.env), never replace them", keys={
            "run": Block(doc="limits of one session", keys={
                "max_notional_quote": Key("float", 200.0, "most one session's entries may spend, quote currency", lo=0.0),
                "max_trades": Key("int", 20, "most trades (entries) one session may open", lo=0),
                "max_duration_minutes": Key("int", 240, "longest session, minutes", lo=1, hi=7 * 24 * 60),
            }),
            "day": Block(doc="limits of one UTC day, all sessions together", keys={
                "max_notional_quote": Key("float", 1000.0, "most the day's entries may spend, quote currency", lo=0.0),
                "max_trades": Key("int", 100, "most trades (entries) of the day", lo=0),
            }),
            "symbols": Block(doc="which pairs a session may trade", keys={
                "allowed": Key("list", None, "allow-list of pairs (BTC/USDT); null = every pair", nullable=True),
            }),
        }),
        "usage": Block(doc="where the per-day usage files live and how long they are kept", keys={
            "dir": Key("path", None, "folder of usage_YYYY-MM-DD.json; null = <runtime.data_dir>/desk/usage; "
                                     "relative to the repo root", nullable=True),
            "retention_days": Key("int", 30, "days a usage file is kept after its day", lo=1, hi=3650),
        }),
        "sessions": Block(doc="how sessions run and report", keys={
            "auto_report": Key("bool", True, "write a markdown report after every session"),
            "warmup_bars": Key("int", 500, "candles before the session window that warm the indicators up", lo=0,
                               hi=100_000),
        }),
        "profiles": Block(each=PROFILE, doc="session profiles by name", required=True),
    }
)


@dataclass(frozen=True)
class RunLimits:
    """Limits of one session (quote currency, counts of entries, minutes)."""

    max_notional_quote: float
    max_trades: int
    max_duration_minutes: int


@dataclass(frozen=True)
class DayLimits:
    """Limits of one UTC day, every session of the day together."""

    max_notional_quote: float
    max_trades: int


@dataclass(frozen=True)
class DeskLimits:
    """The testnet limits: per run, per UTC day, and the symbol allow-list (None = every pair)."""

    run: RunLimits
    day: DayLimits
    allowed_symbols: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"run": vars(self.run).copy(), "day": vars(self.day).copy(),
                "allowed_symbols": None if self.allowed_symbols is None else list(self.allowed_symbols)}


@dataclass(frozen=True)
class SessionProfile:
    """One session profile of desk.yaml (see :data:`PROFILE` for the meaning of each field).

    ``symbol`` is the ccxt symbol (``BTC/USDT``); ``exchange`` None means ``runtime.exchange``.
    """

    name: str
    strategy: str
    symbol: str
    timeframe: str
    duration_minutes: int
    max_notional_quote: float
    max_trades: int
    exchange: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def is_promoted(self) -> bool:
        """True when the profile trades the promoted strategy of its symbol × timeframe."""
        return self.strategy == PROMOTED

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "symbol": self.symbol, "timeframe": self.timeframe,
                "duration_minutes": self.duration_minutes, "max_notional_quote": self.max_notional_quote,
                "max_trades": self.max_trades, "exchange": self.exchange, "params": dict(self.params),
                "description": self.description}


@dataclass(frozen=True)
class DeskConfig:
    """desk.yaml as a whole; ``usage_dir`` None means ``<runtime.data_dir>/desk/usage``."""

    limits: DeskLimits
    usage_dir: Path | None
    usage_retention_days: int
    auto_report: bool
    warmup_bars: int
    profiles: Mapping[str, SessionProfile]
    path: Path


def _symbol(value: Any, file: str, where: str) -> str:
    try:
        return folder_to_pair(pair_to_folder(value))
    except ConfigError:
        raise _fail(file, where, value, "a pair like BTC/USDT") from None


def load_desk_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> DeskConfig:
    """Load and validate desk.yaml (default ``engine/config/desk.yaml``, or ``$SCALP_DESK_CONFIG``).

    Raises
    ------
    ConfigError
        Naming the file, the key path, the value found and what was expected: not YAML (with the
        line), an unknown key (with a "did you mean"), a wrong type or range, a symbol that is not a
        pair, an empty allow-list, a session shorter than one candle of its timeframe.
    """
    env = os.environ if env is None else env
    path = Path(path or env.get(ENV_PREFIX + "DESK_CONFIG") or DESK_YAML_PATH)
    file = _display(path)
    if path.is_dir():
        raise ConfigError(f"{file}: is a folder, expected the desk.yaml file")
    doc = _read_yaml(path)
    if doc is None:
        raise ConfigError(f"{file}: the file is empty; expected the limits, usage, sessions and profiles blocks "
                          "(engine/config/desk.yaml in the repo shows them)")
    c = check(doc, DESK_YAML, file)
    lim = c["limits"]
    allowed = lim["symbols"]["allowed"]
    if allowed is not None:
        if not allowed:
            raise _fail(file, "limits.symbols.allowed", allowed, "at least one pair, or null for every pair")
        allowed = tuple(_symbol(s, file, f"limits.symbols.allowed[{i}]") for i, s in enumerate(allowed))
    limits = DeskLimits(RunLimits(**lim["run"]), DayLimits(**lim["day"]), allowed)
    profiles = {}
    for name, p in c["profiles"].items():
        where = f"profiles.{name}"
        tf_minutes = TIMEFRAME_MS[p["timeframe"]] // 60_000
        if p["duration_minutes"] < tf_minutes:
            raise _fail(file, f"{where}.duration_minutes", p["duration_minutes"],
                        f"at least one {p['timeframe']} candle ({tf_minutes} minutes)")
        if p["strategy"] == PROMOTED and p["params"]:
            raise ConfigError(f"{file} → {where}.params: a promoted strategy trades its own parameters; "
                              f"remove params or name an entry set instead of {PROMOTED!r}")
        profiles[name] = SessionProfile(name=name, strategy=p["strategy"], symbol=_symbol(p["symbol"], file, f"{where}.symbol"),
                                        timeframe=p["timeframe"], duration_minutes=p["duration_minutes"],
                                        max_notional_quote=p["max_notional_quote"], max_trades=p["max_trades"],
                                        exchange=p["exchange"], params=dict(p["params"]),
                                        description=p["description"] or "")
    if not profiles:
        raise ConfigError(f"{file} → profiles: empty; expected at least one session profile")
    usage = c["usage"]
    return DeskConfig(limits=limits, usage_dir=None if usage["dir"] is None else _resolve_path(usage["dir"]),
                      usage_retention_days=usage["retention_days"], auto_report=c["sessions"]["auto_report"],
                      warmup_bars=c["sessions"]["warmup_bars"], profiles=profiles, path=path)
