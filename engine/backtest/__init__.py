"""Scoring: the simulation kernel, run_backtest / run_grid around it, metrics and the lookahead check.

The fill rules are written once, in the docstring of :func:`engine.backtest.kernel_nb.simulate_nb`.
"""
from engine.backtest.api import BacktestResult, check_candles, run_backtest, run_grid, run_signals, run_single_csv

__all__ = ["BacktestResult", "check_candles", "run_backtest", "run_grid", "run_signals", "run_single_csv"]
