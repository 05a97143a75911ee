"""SCALP engine: candles → signals → simulated trades → metrics → search → promotion → execution.

Packages follow the two flows (DESIGN.md, "engine/ layout"): ``data`` and ``exchange`` (candles in),
``strategy`` (what a strategy is), ``backtest`` (scoring), ``research`` (search and choice),
``promotion``/``states``/``cycle`` (the loop), ``publish`` (the dashboard server), ``execution`` and
``desk`` (orders). This module re-exports the most used names, loaded on first use so that
``import engine`` stays cheap (a CLI's ``--help`` imports no numba or pandas).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "load_config": "engine.config", "load_entries": "engine.config", "load_backtest": "engine.config",
    "Clock": "engine.clock", "clock_for_run": "engine.clock",
    "EngineError": "engine.errors", "ConfigError": "engine.errors", "DataError": "engine.errors",
    "ExitPlan": "engine.strategy.exits", "Costs": "engine.strategy.exits",
    "run_backtest": "engine.backtest", "run_grid": "engine.backtest", "run_signals": "engine.backtest",
    "read_candles": "engine.data", "load_sample": "engine.data", "resample_candles": "engine.data",
    "search_entry_set": "engine.research", "run_research": "engine.research", "deflated_sharpe": "engine.research",
    "run_once": "engine.cycle", "check_lookahead": "engine.backtest.lookahead",
    "refresh_watchlist": "engine.data.universe", "backfill_pair": "engine.data.backfill",
    "make_exchange": "engine.exchange",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time names load on first use
    from engine.backtest import run_backtest, run_grid, run_signals
    from engine.backtest.lookahead import check_lookahead
    from engine.clock import Clock, clock_for_run
    from engine.config import load_backtest, load_config, load_entries
    from engine.cycle import run_once
    from engine.data import load_sample, read_candles, resample_candles
    from engine.data.backfill import backfill_pair
    from engine.data.universe import refresh_watchlist
    from engine.errors import ConfigError, DataError, EngineError
    from engine.exchange import make_exchange
    from engine.research import deflated_sharpe, run_research, search_entry_set
    from engine.strategy.exits import Costs, ExitPlan


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
