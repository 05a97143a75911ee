"""The promoted-strategy record and ``engine/config/strategies.yml``, its one reader and writer.

A :class:`PromotedStrategy` is what promotion admits and what execution (and the dashboard) reads:
the entry set with its chosen parameters, the exit plan and costs it was scored with, its
out-of-sample metrics, when it was promoted and when it expires, and the inputs it traces back
to (config id, candle period, bars). Times are ISO 8601 UTC in the file and epoch ms in memory.

The file (written by :func:`save_strategies`)::

    # comment header
    updated_at: '2021-05-03T00:00:00Z'
    strategies:
    - pair: BTCUSDT
      symbol: BTC/USDT
      timeframe: 5m
      entry_set: ema_cross
      signal: ema_cross
      params: {fast: 9, slow: 21}
      exit_plan: {tp_ladder: [[0.9, 50.0], …], sl_pct: -0.5, …}   # ExitPlan.to_dict()
      costs: {fee_bps: 10.0, slippage_bps: 2.0}
      metrics: {n_trades: 40, sharpe: 2.1, …}                       # out-of-sample; null = undefined
      in_sample: {…}
      risk_mode: aggressive
      promoted_at: '2021-05-03T00:00:00Z'
      expires_at: '2021-05-04T00:00:00Z'
      config_id: 3f9a2c1b
      period: {first_ms: 1617321600000, last_ms: 1619999700000}
      bars: 8928
      curve: curves/BTCUSDT_5m_ema_cross.json                       # relative to reports_dir
      n_configs_tried: 48
      deflated_sharpe: 0.71
"""
from __future__ import annotations

import difflib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.clock import iso_ms
from engine.errors import ConfigError
from engine.fileio import json_safe, write_yaml
from engine.markets import folder_to_pair, pair_to_folder, timeframe_to_ms
from engine.records import Fields, Period, display_path, read_yaml_document
from engine.strategy.exits import COST_KEYS, Costs, ExitPlan
from engine.types import RISK_MODES

logger = logging.getLogger(__name__)

STRATEGIES_HEADER = (
    "# Promoted strategies, written by jobs/promote.py (and the maintainer). Each entry records the\n"
    "# risk_mode that admitted it, promoted_at and expires_at (ISO 8601 UTC).\n"
)
#: Keys of a strategy entry, in the order they are written.
STRATEGY_KEYS = ("pair", "symbol", "timeframe", "entry_set", "signal", "params", "exit_plan", "costs", "metrics",
                 "in_sample", "risk_mode", "promoted_at", "expires_at", "config_id", "period", "bars", "curve",
                 "n_configs_tried", "deflated_sharpe")
#: Keys an entry must have (a hand-written entry may leave out the rest).
STRATEGY_REQUIRED = ("pair", "timeframe", "entry_set", "signal", "params", "promoted_at", "expires_at", "risk_mode")
# written by earlier releases beside the keys above; read and ignored (the ISO times rule)
_EARLIER_KEYS = frozenset({"promoted_at_ms", "expires_at_ms", "data_source", "ambiguity"})


@dataclass(frozen=True)
class PromotedStrategy:
    """One promoted strategy: what to trade, how to exit, why it was admitted, until when.

    Attributes
    ----------
    pair : str
        Folder name, ``"BTCUSDT"``; `symbol` is the ccxt symbol ``"BTC/USDT"``.
    timeframe : str
        ``1m 5m 15m 1h 4h 1d``.
    entry_set, signal : str
        The entry set of entries_config.json and its signal.
    params : dict
        Signal parameters chosen by the search (last walk-forward fold).
    exit_plan : ExitPlan
        The exit rules the backtest scored: the same object the order-plan builder turns into
        orders. An entry without ``exit_plan`` gets the product defaults, ``ExitPlan()``.
    costs : Costs
        Fees and slippage the backtest assumed (``Costs()`` when absent).
    metrics, in_sample : dict
        Out-of-sample (what promotion judged) and in-sample metrics; NaN = undefined.
    risk_mode : str
        The rule set that admitted it, one of :data:`engine.types.RISK_MODES`.
    promoted_at_ms, expires_at_ms : int
        Epoch ms UTC on the cycle's clock (the replay clock offline).
    config_id : str or None
        Config id of the research run; with `period` and `bars` it traces the numbers back.
    period : Period or None
        First and last candle (open time, ms) the research used; `bars` how many.
    curve : str or None
        The out-of-sample curve file, relative to ``reports_dir`` (``curves/<PAIR>_<TF>_<SET>.json``).
    n_configs_tried : int or None
        Configurations the search evaluated; `deflated_sharpe` the deflated Sharpe ratio (NaN =
        undefined).
    """

    pair: str
    timeframe: str
    entry_set: str
    signal: str
    params: dict[str, Any]
    risk_mode: str
    promoted_at_ms: int
    expires_at_ms: int
    exit_plan: ExitPlan = field(default_factory=ExitPlan)
    costs: Costs = field(default_factory=Costs)
    metrics: dict[str, float] = field(default_factory=dict)
    in_sample: dict[str, float] = field(default_factory=dict)
    config_id: str | None = None
    period: Period | None = None
    bars: int | None = None
    curve: str | None = None
    n_configs_tried: int | None = None
    deflated_sharpe: float = math.nan

    @property
    def symbol(self) -> str:
        """The ccxt symbol, ``"BTC/USDT"`` (the folder name when its quote is not recognised)."""
        try:
            return folder_to_pair(self.pair)
        except ConfigError:
            return self.pair

    @property
    def key(self) -> tuple[str, str]:
        """``(pair, timeframe)``: at most one promoted strategy per key."""
        return (self.pair, self.timeframe)

    def is_expired(self, now_ms: int) -> bool:
        """True once `now_ms` (epoch ms UTC, the cycle's clock) reaches ``expires_at_ms``."""
        return self.expires_at_ms <= now_ms

    def to_json(self) -> dict[str, Any]:
        """Return the file form (keys :data:`STRATEGY_KEYS`, times ISO 8601 UTC, NaN → null)."""
        return json_safe({
            "pair": self.pair, "symbol": self.symbol, "timeframe": self.timeframe, "entry_set": self.entry_set,
            "signal": self.signal, "params": dict(self.params), "exit_plan": self.exit_plan.to_dict(),
            "costs": self.costs.to_dict(), "metrics": dict(self.metrics), "in_sample": dict(self.in_sample),
            "risk_mode": self.risk_mode, "promoted_at": iso_ms(self.promoted_at_ms),
            "expires_at": iso_ms(self.expires_at_ms), "config_id": self.config_id,
            "period": self.period.to_json() if self.period else None, "bars": self.bars, "curve": self.curve,
            "n_configs_tried": self.n_configs_tried, "deflated_sharpe": self.deflated_sharpe,
        })

    @classmethod
    def from_json(cls, item: Any, *, file: str = "strategies.yml", path: str = "strategies[0]") -> PromotedStrategy:
        """Build the record from its file form.

        Raises
        ------
        ConfigError
            ``<file> → <path>.<key> = <value>: expected …`` for a missing required key, an
            unknown key (with "did you mean"), a bad timeframe or risk_mode, a time that is not
            ISO 8601, an invalid exit plan or costs.
        """
        f = Fields(item, file, path, error=ConfigError)
        for key in f.data:
            if key not in STRATEGY_KEYS and key not in _EARLIER_KEYS:
                close = difflib.get_close_matches(str(key), STRATEGY_KEYS, n=1)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise ConfigError(f'{f.where()}: unknown key "{key}".{hint}')
        for key in STRATEGY_REQUIRED:
            if key not in f.data:
                raise ConfigError(f"{f.where()}: missing key {key!r}")
        timeframe = f.str("timeframe")
        try:
            timeframe_to_ms(timeframe)
        except ConfigError:
            f.fail("timeframe", timeframe, "one of 1m 5m 15m 1h 4h 1d")
        pair = f.str("pair")
        try:
            pair = pair_to_folder(pair)
        except ConfigError:
            f.fail("pair", pair, "a pair such as BTCUSDT or BTC/USDT")
        return cls(
            pair=pair, timeframe=timeframe, entry_set=f.str("entry_set"), signal=f.str("signal"),
            params=f.mapping("params", optional=True), risk_mode=f.str("risk_mode", choices=RISK_MODES),
            promoted_at_ms=f.iso_ms("promoted_at"), expires_at_ms=f.iso_ms("expires_at"),
            exit_plan=read_exit_plan(f, "exit_plan") if f.has("exit_plan") else ExitPlan(),
            costs=read_costs(f.fields("costs")) if f.has("costs") else Costs(),
            metrics=f.metrics("metrics", optional=True), in_sample=f.metrics("in_sample", optional=True),
            config_id=f.str("config_id", optional=True),
            period=Period.from_fields(f.fields("period")) if f.has("period") else None,
            bars=f.int("bars", optional=True), curve=f.str("curve", optional=True),
            n_configs_tried=f.int("n_configs_tried", optional=True),
            deflated_sharpe=f.float("deflated_sharpe", optional=True),
        )


def read_exit_plan(f: Fields, key: str) -> ExitPlan:
    """Return the :class:`ExitPlan` at `key` of `f` (``ExitPlan.to_dict()`` form).

    Raises
    ------
    The reader's error (:class:`Fields`), naming the file and key: not a mapping, an unknown
    exit rule (with "did you mean") or a value out of range.
    """
    try:
        return ExitPlan.from_dict(f.mapping(key), where=f.where(key))
    except ConfigError as e:
        if f.error is ConfigError:
            raise
        raise f.error(str(e)) from e


def read_costs(f: Fields) -> Costs:
    """Return the :class:`Costs` of a ``{"fee_bps", "slippage_bps"}`` mapping (both required).

    Raises
    ------
    The reader's error (:class:`Fields`): unknown key, missing key or a negative number.
    """
    for key in f.data:
        if key not in COST_KEYS:
            f.fail(key, f.data[key], f"only {' and '.join(COST_KEYS)}")
    return Costs(**{key: f.float(key, minimum=0.0) for key in COST_KEYS})


def load_strategies(path: Path | str) -> list[PromotedStrategy]:
    """Return the promoted strategies of a strategies.yml (a missing or empty file means none).

    Raises
    ------
    ConfigError
        Naming the file, the key path, the value found and what was expected: not YAML, no
        ``strategies`` list, an unknown top-level key, or an invalid entry
        (:meth:`PromotedStrategy.from_json`).
    """
    path = Path(path)
    if not path.exists():
        return []
    doc = read_yaml_document(path, error=ConfigError)
    file = display_path(path)
    if doc is None:
        return []
    f = Fields(doc, file, error=ConfigError)
    for key in f.data:
        if key not in ("strategies", "updated_at"):
            close = difflib.get_close_matches(str(key), ["strategies", "updated_at"], n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise ConfigError(f'{file}: unknown key "{key}".{hint}')
    items = f.list("strategies", optional=True)
    return [PromotedStrategy.from_json(item, file=file, path=f"strategies[{i}]") for i, item in enumerate(items)]


def save_strategies(path: Path | str, strategies: Iterable[PromotedStrategy], now_ms: int) -> Path:
    """Write strategies.yml atomically, sorted by (pair, timeframe), ``updated_at`` = `now_ms`.

    Takes the file's lock (:func:`engine.fileio.lock_for`; re-entrant, so a caller that holds it
    for a read-modify-write may call this).
    """
    ordered = sorted(strategies, key=lambda s: s.key)
    return write_yaml(Path(path), {"updated_at": iso_ms(now_ms), "strategies": [s.to_json() for s in ordered]},
                      header=STRATEGIES_HEADER)


def drop_expired(strategies: Iterable[PromotedStrategy], now_ms: int
                 ) -> tuple[list[PromotedStrategy], list[PromotedStrategy]]:
    """Split `strategies` into (kept, expired) at `now_ms` (epoch ms UTC, the cycle's clock)."""
    kept, expired = [], []
    for s in strategies:
        (expired if s.is_expired(now_ms) else kept).append(s)
    return kept, expired


def active_keys(strategies: Iterable[PromotedStrategy], now_ms: int) -> set[tuple[str, str]]:
    """Return the (pair, timeframe) keys with a promoted strategy unexpired at `now_ms`."""
    return {s.key for s in strategies if not s.is_expired(now_ms)}
