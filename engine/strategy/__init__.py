"""What a strategy is, shared by the backtest and execution: indicators and signal rules
(kernels), entry signal sets, the exit plan (:class:`ExitPlan`, the one exit model) and costs."""
from engine.strategy.exits import Costs, ExitPlan, format_tp_ladder, parse_tp_ladder
from engine.strategy.signals import SIGNALS, evaluate, get_signal, validate_params

__all__ = ["SIGNALS", "Costs", "ExitPlan", "evaluate", "format_tp_ladder", "get_signal", "parse_tp_ladder",
           "validate_params"]
