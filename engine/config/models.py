"""The typed, frozen records the config loaders return (code reads ``cfg.runtime.data_dir``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from engine.strategy.exits import Costs, ExitPlan


@dataclass(frozen=True)
class RuntimeConfig:
    """The ``runtime`` block of config.yaml after env overrides; paths are absolute."""

    data_dir: Path
    reports_dir: Path
    logs_dir: Path
    public_dir: Path
    strategies_file: Path
    urls_dir: Path
    metrics_dir: Path
    tf_list: tuple[str, ...]
    age_mult: float
    topN: int
    watchlist_rank: str
    backfill_limit: int
    risk_mode: str
    exec_enabled: bool
    paper_trading: bool
    html_host: str
    html_port: int
    exchange: str
    quote: str
    data_source: str
    loop_interval_s: int
    strategy_ttl_hours: float
    gap_policy: str
    exchange_timeout_ms: int
    sample: str
    retention_days: float


@dataclass(frozen=True)
class PromotionRules:
    """Thresholds of one risk_mode, applied to out-of-sample metrics."""

    min_profit_factor: float
    max_drawdown_pct: float
    min_sharpe: float
    min_trades: int
    min_win_rate_pct: float
    min_deflated_sharpe: float
    max_p_value_vs_random: float
    max_pbo: float
    require_holdout: bool


@dataclass(frozen=True)
class AppConfig:
    """config.yaml as a whole."""

    runtime: RuntimeConfig
    promotion: Mapping[str, PromotionRules]
    path: Path

    @property
    def rules(self) -> PromotionRules:
        """The promotion rules of the active ``runtime.risk_mode``."""
        return self.promotion[self.runtime.risk_mode]


@dataclass(frozen=True)
class EntrySet:
    """One entry set of entries_config.json: its signal, default parameters and effective risk rules
    (top-level ``risk`` block + the set's override), parsed once at load into a typed
    :class:`~engine.strategy.exits.ExitPlan` and :class:`~engine.strategy.exits.Costs`."""

    name: str
    signal: str
    params: Mapping[str, Any]
    description: str
    enabled: bool
    exit_plan: ExitPlan
    costs: Costs


@dataclass(frozen=True)
class EntriesConfig:
    """entries_config.json: entry sets by name."""

    entry_sets: Mapping[str, EntrySet]
    path: Path
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def enabled(self) -> list[EntrySet]:
        """Return the enabled entry sets in file order."""
        return [e for e in self.entry_sets.values() if e.enabled]


@dataclass(frozen=True)
class WalkForward:
    n_splits: int
    scheme: str
    train_ratio: float
    train_bars: int | None
    test_bars: int | None
    embargo_bars: int
    final_holdout_bars: int = 0  # most recent bars never searched (schema: walk_forward.final_holdout_bars)


@dataclass(frozen=True)
class OptunaConfig:
    """The ``optuna`` block: trials per study, batching, sampler, seed and parameter spaces.

    ``space[entry_set][param]`` is ``{"type": "int"|"float", "low", "high", "log", "step"?}`` or
    ``{"type": "categorical", "choices": [...]}`` (validated: ranges inside the signal's
    parameter ranges, ``low < high``, ``log`` only with ``low > 0`` and without a step).
    """

    n_trials: int
    batch_size: int
    timeout_s: float | None
    sampler: str
    seed: int
    pruner: str
    space: Mapping[str, Any]


@dataclass(frozen=True)
class Constraints:
    min_trades: int
    max_drawdown_pct: float


@dataclass(frozen=True)
class Chance:
    """The ``chance`` block: ``n_twins`` random-entry twins per row, drawn with ``seed``."""

    n_twins: int
    seed: int


@dataclass(frozen=True)
class BacktestConfig:
    """backtest_config.json: what to search and how to score it."""

    mode: str
    objective: str
    initial_cash_quote: float
    grid: Mapping[str, Mapping[str, list]]
    optuna: OptunaConfig
    walk_forward: WalkForward
    constraints: Constraints
    path: Path
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    costs: Costs | None = None  # overrides the entry sets' costs in a search; None keeps theirs
    workers: int | None = None
    chance: Chance | None = None  # the ``chance`` block; load_backtest always sets it

    def costs_for(self, entry_set: EntrySet) -> Costs:
        """Return the :class:`engine.strategy.exits.Costs` the search uses for `entry_set`: the
        ``costs`` block of backtest_config.json when present, else the entry set's own."""
        return self.costs if self.costs is not None else entry_set.costs


@dataclass(frozen=True)
class Settings:
    """Everything a cycle is configured by: config.yaml, entries_config.json and backtest_config.json.

    Built by :func:`engine.config.load_settings` and passed explicitly into
    :func:`engine.cycle.run_once` (no stage reads a config file behind its caller's back).
    :meth:`reload` re-reads the same files with the same overrides (the loop does it each cycle).

    Attributes
    ----------
    app : AppConfig
        config.yaml with environment and `overrides` applied.
    entries : EntriesConfig
        Entry sets and their exit plans and costs.
    backtest : BacktestConfig
        The search.
    overrides : mapping
        Runtime keys set by the caller (a CLI flag such as ``maintainer --rank spread``): they win
        over the file and the environment, and survive every reload.
    """

    app: AppConfig
    entries: EntriesConfig
    backtest: BacktestConfig
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> RuntimeConfig:
        """Shortcut for ``app.runtime``."""
        return self.app.runtime

    def reload(self) -> Settings:
        """Return the settings read again from the same three files, with the same overrides.

        Raises
        ------
        ConfigError
            If a file became invalid (the caller keeps the previous settings).
        """
        from engine.config import load_settings  # loaders live in the package __init__, which imports this module

        return load_settings(self.app.path, self.entries.path, self.backtest.path, overrides=self.overrides)
