"""SCALP engine: candles → signals → simulated trades → metrics → search → promotion → execution.

Import what you need from the modules named after the data flow (``engine.datastore``,
``engine.backtest``, ``engine.optimize``, ``engine.promotion`` …); this package re-exports the
most used names lazily so that ``import engine`` stays cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "engine.config", "load_entries": "engine.config", "load_backtest": "engine.config",
    "Clock": "engine.clock", "EngineError": "engine.errors", "ConfigError": "engine.errors",
    "DataError": "engine.errors", "ExitPlan": "engine.exits", "Costs": "engine.exits",
    "run_backtest": "engine.backtest", "run_grid": "engine.backtest", "read_candles": "engine.datastore",
    "load_sample": "engine.datastore", "resample_candles": "engine.datastore",
    "run_signals": "engine.backtest", "search_entry_set": "engine.optimize", "run_research": "engine.research",
    "run_once": "engine.cycle", "check_lookahead": "engine.lookahead", "deflated_sharpe": "engine.stats",
    "refresh_watchlist": "engine.universe", "backfill_pair": "engine.backfill",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
