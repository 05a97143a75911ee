"""What the notebooks share, tested like the rest of the engine: the first cell's setup (repo, packages,
data folder, plotly renderer, dry run), candles from any source, engine results as tables, and figures.

``setup`` is imported eagerly and needs only the standard library (it installs the requirements);
the other names load on first use (PEP 562), after it ran.
"""
from importlib import import_module

from engine.notebook.env import NotebookEnv, setup

_EXPORTS = {"load_candles": "data", "CANDLE_SOURCES": "data", "data_source_of": "data", "close_ms": "data",
            "select_entry_sets": "tables", "indicator_frame": "tables", "compare_entry_sets": "tables",
            "folds_frame": "tables", "in_vs_out_frame": "tables", "judgement_frame": "tables",
            "promotion_by_risk_mode": "tables", "plan_frame": "tables", "last_signal_close_ms": "tables",
            "candles_figure": "figures", "equity_figure": "figures", "twins_figure": "figures",
            "in_vs_out_figure": "figures"}
__all__ = ["CANDLE_SOURCES", "NotebookEnv", "candles_figure", "close_ms", "compare_entry_sets", "data_source_of",
           "equity_figure", "folds_frame", "in_vs_out_figure", "in_vs_out_frame", "indicator_frame",
           "judgement_frame", "last_signal_close_ms", "load_candles", "plan_frame", "promotion_by_risk_mode",
           "select_entry_sets", "setup", "twins_figure"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"engine.notebook.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'engine.notebook' has no attribute {name!r}")
